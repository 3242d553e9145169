"""The spec oracle: the YOLOv1 loss in NumPy, float64, with hand-derived gradients."""

from yolov1_loss.reference.encode import decode, encode, encode_batch
from yolov1_loss.reference.layouts import (
    LAYOUTS,
    pred_from_canonical,
    pred_to_canonical,
    target_from_canonical,
    target_to_canonical,
)
from yolov1_loss.reference.loss import COMPONENTS, OUTPUT_NAMES, Components, LossParts, loss, loss_and_grad
from yolov1_loss.reference.spec import PRESETS, LossSpec

__all__ = [
    "COMPONENTS",
    "Components",
    "LAYOUTS",
    "LossParts",
    "LossSpec",
    "OUTPUT_NAMES",
    "PRESETS",
    "decode",
    "encode",
    "encode_batch",
    "loss",
    "loss_and_grad",
    "pred_from_canonical",
    "pred_to_canonical",
    "target_from_canonical",
    "target_to_canonical",
]
