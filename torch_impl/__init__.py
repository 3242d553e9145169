"""The YOLOv1 loss in PyTorch, for training: the spec of ``reference/`` with autograd and fused paths."""

from torch_impl.api import PATHS, YoloV1Loss, fused_loss_and_grad, yolov1_loss
from torch_impl.parts import TorchLossParts

__all__ = ["PATHS", "TorchLossParts", "YoloV1Loss", "fused_loss_and_grad", "yolov1_loss"]
