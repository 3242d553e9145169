"""The YOLOv1 loss in PyTorch, for training: the spec of ``reference/`` with autograd and fused paths.

The fused path runs a Triton kernel on CUDA and a numba kernel on the CPU (:mod:`yolov1_loss.torch_impl.cpu_kernel`).
The CPU kernel compiles on its first call with each dtype (float32, float64): about 2-3 s here,
numba's import included; numba caches the machine code on disk, so later processes start in about
half a second.
"""

from yolov1_loss.torch_impl.api import PATHS, YoloV1Loss, fused_loss_and_grad, yolov1_loss
from yolov1_loss.torch_impl.encode import encode
from yolov1_loss.torch_impl.parts import TorchLossParts

__all__ = ["PATHS", "TorchLossParts", "YoloV1Loss", "encode", "fused_loss_and_grad", "yolov1_loss"]
