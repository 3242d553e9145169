"""Checks of the inputs that need no host-device synchronisation, and the canonical 4-D views.

Shapes, dtypes and devices are known without looking at the values, so they are always
checked. The value checks of the spec (docs/spec.md, "Refused inputs") are the reference's own, run on CPU copies
when the caller asks for them (``validate=True``): they have to read the values.
"""

from __future__ import annotations

import torch
from torch import Tensor

from yolov1_loss.reference import LossSpec
from yolov1_loss.reference.validate import check_inputs


def _check_tensor(x, name: str) -> None:
    if not isinstance(x, Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")


def as_cells(x: Tensor, name: str, channels: int, spec: LossSpec) -> Tensor:
    """``x`` as (N, S, S, channels): itself if 4-D, a view (or copy) if flat; else a ValueError
    worded like the reference's."""
    S = spec.S
    if x.shape[1:] == (S, S, channels):  # 4-D (torch.Size is a tuple)
        return x
    if x.dim() == 2 and x.shape[1] == S * S * channels:
        return x.reshape(x.shape[0], S, S, channels)
    raise ValueError(
        f"{name}: expected shape (N, {S}, {S}, {channels}) or (N, {S * S * channels}) "
        f"for S={S}, B={spec.B}, C={spec.C}, got {tuple(x.shape)}"
    )


def _host_copy(x: Tensor):
    return x.detach().to("cpu", torch.float64).numpy()


def canonical_inputs(pred, target, spec: LossSpec, validate: bool = False) -> tuple[Tensor, Tensor]:
    """(pred (N, S, S, C + 5B), target (N, S, S, C + 5)) as views of the inputs where possible.

    Always refuses (ValueError): non-tensors, non-floating dtypes, tensors on different devices,
    wrong shapes for S, B, C and differing batch sizes. With ``validate=True`` also runs
    ``reference.validate.check_inputs`` on CPU copies (NaN or infinity, objectness not 0 or 1,
    negative sizes under the square-root modes), whose messages name the image and cell; that
    reads the values, so on a GPU it waits for them.
    """
    # What a training step passes, in one test (each shape read once and compared entry by entry:
    # a slice of a shape is a new object, and this runs on every call): the checks below say what
    # is wrong otherwise.
    if not validate and isinstance(pred, Tensor) and isinstance(target, Tensor):
        S, p_shape, t_shape = spec.S, pred.shape, target.shape
        if (
            len(p_shape) == len(t_shape) == 4
            and p_shape[0] == t_shape[0]
            and p_shape[1] == p_shape[2] == t_shape[1] == t_shape[2] == S
            and p_shape[3] == spec.pred_channels
            and t_shape[3] == spec.target_channels
            and pred.dtype.is_floating_point
            and target.dtype.is_floating_point
            and (pred.is_cpu and target.is_cpu or pred.device == target.device)  # (a device costs a µs)
        ):
            return pred, target
    _check_tensor(pred, "pred")
    _check_tensor(target, "target")
    if pred.device != target.device:
        raise ValueError(f"pred is on {pred.device} but target is on {target.device}; put them on one device")
    if validate:
        check_inputs(_host_copy(pred), _host_copy(target), spec)
    pred4 = as_cells(pred, "pred", spec.pred_channels, spec)
    target4 = as_cells(target, "target", spec.target_channels, spec)
    if pred4.shape[0] != target4.shape[0]:
        raise ValueError(f"pred has {pred4.shape[0]} images but target has {target4.shape[0]}")
    return pred4, target4
