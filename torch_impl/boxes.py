"""Intersection over union of centre-size boxes in torch.

Every function is differentiable by autograd, and autograd's derivative at the kinks is the
spec's convention (docs/spec.md, "Gradients"): ``torch.minimum``/``torch.maximum`` split a tie half and half,
``clamp(min=0)`` passes the gradient at 0, ``abs`` has derivative 0 at 0, and the IoU is 0 with
zero gradient where the union is 0 (both branches of that ``where`` are finite, so no NaN leaks).
"""

from __future__ import annotations

import torch
from torch import Tensor


def edges(centre: Tensor, size: Tensor) -> tuple[Tensor, Tensor]:
    """(low, high) edges of intervals given as centre and size: centre ∓ size / 2."""
    return centre - size / 2, centre + size / 2


def overlap_1d(p_centre: Tensor, p_size: Tensor, t_centre: Tensor, t_size: Tensor) -> Tensor:
    """Overlap length of the intervals (p_centre, p_size) and (t_centre, t_size), broadcast."""
    p_lo, p_hi = edges(p_centre, p_size)
    t_lo, t_hi = edges(t_centre, t_size)
    return (torch.minimum(p_hi, t_hi) - torch.maximum(p_lo, t_lo)).clamp(min=0)


def box_iou(pbox: Tensor, tbox: Tensor, eps: float) -> Tensor:
    """IoU of ``pbox`` (..., 4) with ``tbox`` (broadcastable), both (x, y, w, h).

    ``union = |w_p h_p| + |w_t h_t| - inter + eps``; IoU = inter / union, 0 where union is 0.
    """
    px, py, pw, ph = pbox.unbind(-1)
    tx, ty, tw, th = tbox.unbind(-1)
    inter = overlap_1d(px, pw, tx, tw) * overlap_1d(py, ph, ty, th)
    union = torch.abs(pw * ph) + torch.abs(tw * th) - inter + eps
    defined = union > 0
    return torch.where(defined, inter / torch.where(defined, union, 1.0), 0.0)
