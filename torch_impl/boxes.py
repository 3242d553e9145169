"""Intersection over union of centre-size boxes in torch: the values, with the pieces their
hand-derived gradient needs (see :mod:`torch_impl.analytic`).

Every function is differentiable by autograd, and autograd's derivative at the kinks is the
spec's convention (section 4): ``torch.minimum``/``torch.maximum`` split a tie half and half,
``clamp(min=0)`` passes the gradient at 0, ``abs`` has derivative 0 at 0, and the IoU is 0 with
zero gradient where the union is 0 (both branches of that ``where`` are finite, so no NaN leaks).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class Overlap(NamedTuple):
    """The overlap of two intervals along one axis, and the edges it was computed from."""

    length: Tensor  # max(0, min(p_hi, t_hi) - max(p_lo, t_lo))
    raw: Tensor  # the same before the clamp (negative where the intervals are apart)
    p_lo: Tensor
    p_hi: Tensor
    t_lo: Tensor
    t_hi: Tensor


class BoxIoU(NamedTuple):
    """IoU of predicted boxes with target boxes, and its intermediate values."""

    value: Tensor  # inter / union, 0 where the union is 0
    inter: Tensor
    union: Tensor  # the union where it is > 0, else 1 (safe to divide by)
    defined: Tensor  # union > 0
    x: Overlap
    y: Overlap


def edges(centre: Tensor, size: Tensor) -> tuple[Tensor, Tensor]:
    """(low, high) edges of intervals given as centre and size: centre ∓ size / 2."""
    return centre - size / 2, centre + size / 2


def overlap_1d(p_centre: Tensor, p_size: Tensor, t_centre: Tensor, t_size: Tensor) -> Overlap:
    """Overlap of the intervals (p_centre, p_size) and (t_centre, t_size), broadcast."""
    p_lo, p_hi = edges(p_centre, p_size)
    t_lo, t_hi = edges(t_centre, t_size)
    raw = torch.minimum(p_hi, t_hi) - torch.maximum(p_lo, t_lo)
    return Overlap(raw.clamp(min=0), raw, p_lo, p_hi, t_lo, t_hi)


def box_iou(pbox: Tensor, tbox: Tensor, eps: float) -> BoxIoU:
    """IoU of ``pbox`` (..., 4) with ``tbox`` (broadcastable), both (x, y, w, h).

    ``union = |w_p h_p| + |w_t h_t| - inter + eps``; IoU = inter / union, 0 where union is 0.
    """
    px, py, pw, ph = pbox.unbind(-1)
    tx, ty, tw, th = tbox.unbind(-1)
    x = overlap_1d(px, pw, tx, tw)
    y = overlap_1d(py, ph, ty, th)
    inter = x.length * y.length
    union = torch.abs(pw * ph) + torch.abs(tw * th) - inter + eps
    defined = union > 0
    safe_union = torch.where(defined, union, 1.0)
    value = torch.where(defined, inter / safe_union, 0.0)
    return BoxIoU(value, inter, safe_union, defined, x, y)
