"""The ``yolov1-loss`` command line. The loss itself lives in ``reference`` and ``torch_impl``."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("yolov1-loss")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
