"""yolov1-loss: a trusted oracle, a conformance suite and a fast implementation of the YOLOv1 loss.

The subpackages: :mod:`yolov1_loss.reference` (the NumPy oracle), :mod:`yolov1_loss.torch_impl`
(the PyTorch loss for training), :mod:`yolov1_loss.conformance` (properties, ``check``, the pytest
plugin) and :mod:`yolov1_loss.benchmarks`. The everyday names are here too, imported on first use
(so that importing this package, as the pytest plugin does, loads neither NumPy nor torch)::

    from yolov1_loss import LossSpec, loss, loss_and_grad, YoloV1Loss, encode
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("yolov1-loss")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

# name -> the subpackage that defines it
_EVERYDAY = {
    "LossSpec": "reference",
    "PRESETS": "reference",
    "loss": "reference",
    "loss_and_grad": "reference",
    "YoloV1Loss": "torch_impl",
    "encode": "torch_impl",
}

__all__ = ["__version__", *_EVERYDAY]


def __getattr__(name: str):
    if name in _EVERYDAY:
        return getattr(import_module(f"{__name__}.{_EVERYDAY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
