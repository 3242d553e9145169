"""Intersection over union of centre-size boxes, with its gradient with respect to the first box.

Conventions at kinks (docs/spec.md, "Gradients", those of autograd on the natural formula):
min/max of two equal edges send half the gradient to each; the clamp of an overlap at exactly 0
passes the gradient; the derivative of |v| at 0 is 0; where the union is 0 the IoU is 0 and so
is its gradient.
"""

from __future__ import annotations

import numpy as np


def edges(centre, size):
    """(low, high) edges of intervals given as centre and size: centre ∓ size / 2."""
    return centre - size / 2, centre + size / 2


def _overlap_1d(p_centre, p_size, t_centre, t_size):
    """Length of the overlap of two intervals given as centre and size, along one axis.

    Returns (overlap, d overlap / d p_centre, d overlap / d p_size), all of the broadcast shape.
    """
    p_lo, p_hi = edges(p_centre, p_size)
    t_lo, t_hi = edges(t_centre, t_size)
    raw = np.minimum(p_hi, t_hi) - np.maximum(p_lo, t_lo)
    # How much of the prediction's edge reaches min(...) / max(...): all, none, or half on a tie.
    d_hi = np.where(p_hi < t_hi, 1.0, np.where(p_hi == t_hi, 0.5, 0.0))
    d_lo = np.where(p_lo > t_lo, 1.0, np.where(p_lo == t_lo, 0.5, 0.0))
    passes = raw >= 0  # clamp(min=0) passes the gradient at exactly 0
    # p_hi = c + s/2 and p_lo = c - s/2, and raw = min(p_hi, .) - max(p_lo, .):
    d_centre = np.where(passes, d_hi - d_lo, 0.0)
    d_size = np.where(passes, (d_hi + d_lo) / 2, 0.0)
    return np.maximum(raw, 0.0), d_centre, d_size


def iou_and_grad(pbox: np.ndarray, tbox: np.ndarray, eps: float):
    """IoU of boxes ``pbox`` (..., 4) with ``tbox`` (broadcastable), both as (x, y, w, h).

    ``union = |w_p h_p| + |w_t h_t| - inter + eps``; IoU = inter / union, 0 where union is 0.
    Returns (iou (...), d iou / d pbox (..., 4)).
    """
    px, py, pw, ph = np.moveaxis(pbox, -1, 0)
    tx, ty, tw, th = np.moveaxis(tbox, -1, 0)
    iw, diw_dx, diw_dw = _overlap_1d(px, pw, tx, tw)
    ih, dih_dy, dih_dh = _overlap_1d(py, ph, ty, th)
    inter = iw * ih
    union = np.abs(pw * ph) + np.abs(tw * th) - inter + eps
    defined = union > 0
    u = np.where(defined, union, 1.0)
    iou = np.where(defined, inter / u, 0.0)
    # iou = inter / (A_p + A_t - inter + eps): inter appears above and below the bar.
    d_inter = np.where(defined, (u + inter) / u**2, 0.0)
    d_area_p = np.where(defined, -inter / u**2, 0.0)
    s = np.sign(pw * ph)  # d|v|/dv, 0 at 0
    grad = np.stack(
        [
            d_inter * diw_dx * ih,
            d_inter * dih_dy * iw,
            d_inter * diw_dw * ih + d_area_p * s * ph,
            d_inter * dih_dh * iw + d_area_p * s * pw,
        ],
        axis=-1,
    )
    return iou, grad
