"""The loss and its hand-derived gradient in vectorized torch: the fused path on devices with no
compiled kernel (and on the CPU where numba does not import).

One call evaluates the terms (:func:`torch_impl.terms.evaluate`, no autograd) and the gradient of
a weighted sum of them, ``Σ_k w_k · term_k``, with the spec's conventions at the kinks (the same
derivation as ``reference/``). Each term's weight is a number, one number per image, or absent
(see :data:`Weights`); per-image weights serve the backward pass of a single component.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from reference import LossSpec
from reference.spec import SIGNED_SQRT_EPS
from torch_impl.boxes import BoxIoU, Overlap
from torch_impl.dtypes import compute_dtype
from torch_impl.terms import Evaluation, evaluate, inside_eps_root, pick

# The weights of (coord, obj, noobj, cls): each a number, an (N,) tensor (one per image), or
# None for a term left out altogether (not even 0 · its gradient, which is NaN where that is ∞).
Weight = float | Tensor | None
Weights = tuple[Weight, Weight, Weight, Weight]


def overlap_grad(o: Overlap) -> tuple[Tensor, Tensor]:
    """(d length / d p_centre, d length / d p_size) of an :class:`Overlap`.

    The prediction's edge reaches min(...) / max(...) fully, not at all, or half on a tie; the
    clamp passes the gradient where the raw overlap is exactly 0.
    """
    dt = o.raw.dtype
    d_hi = (o.p_hi < o.t_hi).to(dt) + 0.5 * (o.p_hi == o.t_hi).to(dt)
    d_lo = (o.p_lo > o.t_lo).to(dt) + 0.5 * (o.p_lo == o.t_lo).to(dt)
    passes = o.raw >= 0
    return torch.where(passes, d_hi - d_lo, 0.0), torch.where(passes, (d_hi + d_lo) / 2, 0.0)


def iou_grad(iou: BoxIoU, pbox: Tensor) -> Tensor:
    """d IoU / d pbox, (..., 4), for the boxes ``pbox`` (..., 4) that gave ``iou``.

    IoU = inter / (A_p + A_t − inter + ε): inter appears above and below the bar; d|v|/dv is 0 at 0.
    """
    _, _, pw, ph = pbox.unbind(-1)
    u = iou.union
    d_inter = torch.where(iou.defined, (u + iou.inter) / u**2, 0.0)
    d_area = torch.where(iou.defined, -iou.inter / u**2, 0.0)
    dx_centre, dx_size = overlap_grad(iou.x)
    dy_centre, dy_size = overlap_grad(iou.y)
    iw, ih = iou.x.length, iou.y.length
    s = torch.sign(pw * ph)
    return torch.stack(
        [
            d_inter * dx_centre * ih,
            d_inter * dy_centre * iw,
            d_inter * dx_size * ih + d_area * s * ph,
            d_inter * dy_size * iw + d_area * s * pw,
        ],
        dim=-1,
    )


def frame_chain(box: Tensor, spec: LossSpec) -> Tensor:
    """d(IoU-frame box) / d(predicted box), per coordinate, (..., 4)."""
    k = spec.iou_frame_scale
    x, y, w, h = box.unbind(-1)
    if spec.wh_mode == "sqrt_output":
        sizes = (2 * w, 2 * h)
    else:
        sizes = (torch.ones_like(w), torch.ones_like(h))
    return torch.stack([torch.full_like(x, k), torch.full_like(y, k), *sizes], dim=-1)


def pred_size_slope(v: Tensor, spec: LossSpec) -> Tensor:
    """g'(v) for a predicted size v, by wh_mode. Under 'sqrt', g'(0) = +inf (IEEE)."""
    if spec.wh_mode in ("linear", "sqrt_output"):
        return torch.ones_like(v)
    if spec.wh_mode == "sqrt":
        return 0.5 / torch.sqrt(v)
    if spec.signed_sqrt_eps == "outside":
        return torch.where(v == 0, 0.0, 0.5 / torch.sqrt(torch.abs(v) + SIGNED_SQRT_EPS))
    # g = sign(v)·√|v + ε|: g' = sign(v)·sign(v + ε) / (2√|v + ε|), 0 where v = 0 or v = −ε.
    root = inside_eps_root(v)
    defined = root > 0
    slope = torch.sign(v) * torch.sign(v + SIGNED_SQRT_EPS) * 0.5 / torch.where(defined, root, 1.0)
    return torch.where(defined, slope, 0.0)


def _weigh(value: Tensor, weight: float | Tensor) -> Tensor:
    """``value`` (N, ...) times a weight: a number, or one per image (N,)."""
    if isinstance(weight, Tensor):
        return value * weight.reshape(-1, *(1 for _ in value.shape[1:]))
    return value * weight


def _only_responsible(value: Tensor, r: Tensor, B: int) -> Tensor:
    """Spread (N, S, S, ...) to (N, S, S, B, ...): the value at predictor r, 0 at the others."""
    at_r = torch.arange(B, device=r.device) == r[..., None]
    at_r = at_r.reshape(*at_r.shape, *(1 for _ in value.shape[3:]))
    return torch.where(at_r, value.unsqueeze(3), 0.0)


class CellGrad(NamedTuple):
    """A term's gradient by piece of the prediction cell; None where it is 0."""

    p: Tensor | None = None  # (N, S, S, C) class scores
    conf: Tensor | None = None  # (N, S, S, B) confidences
    box: Tensor | None = None  # (N, S, S, B, 4) boxes


def coord_grad(ev: Evaluation, spec: LossSpec) -> CellGrad:
    """d coord / d pred: −2 (t − g(p̂)) g'(p̂) at the responsible predictor's box."""
    _, _, w, h = ev.box_r.unbind(-1)
    ones = torch.ones_like(w)
    slopes = torch.stack([ones, ones, pred_size_slope(w, spec), pred_size_slope(h, spec)], dim=-1)
    d_box_r = torch.where(ev.has_object[..., None], -2 * ev.coord_diff * slopes, 0.0)
    return CellGrad(box=_only_responsible(d_box_r, ev.r, spec.B))


def obj_grad(ev: Evaluation, spec: LossSpec) -> CellGrad:
    """d obj / d pred: at ĉ_r, and at the box through c* = IoU_r under iou_grad='through'."""
    diff = torch.where(ev.has_object, ev.obj_diff, 0.0)
    d_conf = _only_responsible(-2 * diff, ev.r, spec.B)
    if spec.conf_target == "iou" and spec.iou_grad == "through":
        d_iou = iou_grad(ev.iou, ev.pbox) * frame_chain(ev.box, spec)
        d_box_r = 2 * diff[..., None] * pick(d_iou, ev.r)
        return CellGrad(conf=d_conf, box=_only_responsible(d_box_r, ev.r, spec.B))
    return CellGrad(conf=d_conf)


def noobj_grad(ev: Evaluation, spec: LossSpec) -> CellGrad:
    """d noobj / d pred: 2 ĉ_b at the predictors that pay it."""
    return CellGrad(conf=ev.pays_noobj * 2 * ev.conf)


def cls_grad(ev: Evaluation, spec: LossSpec) -> CellGrad:
    """d cls / d pred: −2 (q − p) in object cells."""
    return CellGrad(p=torch.where(ev.has_object[..., None], -2 * ev.cls_diff, 0.0))


TERM_GRADS = (coord_grad, obj_grad, noobj_grad, cls_grad)


def _accumulate(total: Tensor | None, piece: Tensor | None, weight: float | Tensor) -> Tensor | None:
    if piece is None:
        return total
    piece = _weigh(piece, weight)
    return piece if total is None else total + piece


def gradient(ev: Evaluation, spec: LossSpec, weights: Weights) -> Tensor:
    """d(Σ_k w_k · Σ_cells term_k) / d pred, (N, S, S, C + 5B), from an :class:`Evaluation`."""
    total = CellGrad()
    for term_grad, weight in zip(TERM_GRADS, weights):
        if weight is not None:
            piece = term_grad(ev, spec)
            total = CellGrad(*(_accumulate(t, p, weight) for t, p in zip(total, piece)))
    p = torch.zeros_like(ev.cls_diff) if total.p is None else total.p
    conf = torch.zeros_like(ev.conf) if total.conf is None else total.conf
    box = torch.zeros_like(ev.box) if total.box is None else total.box
    return torch.cat([p, torch.cat([conf[..., None], box], dim=-1).flatten(-2)], dim=-1)


def _empty_cells_noobj(conf: Tensor, empty: Tensor) -> tuple[Tensor, Tensor]:
    """Σ_b ĉ_b² over the cells without an object, and its gradient by ĉ: (N, S·S) and (N, S·S, B)."""
    return torch.where(empty, conf**2, 0.0).sum(dim=-1), torch.where(empty, 2 * conf, 0.0)


def loss_and_grad(pred: Tensor, target: Tensor, spec: LossSpec, weights: Weights) -> tuple[Tensor, Tensor]:
    """Each image's unweighted, unscaled (coord, obj, noobj, cls, Σ_k w_k · term_k), (N, 5), and
    d(Σ_k w_k · term_k)/d pred (N, S, S, C + 5B). Weights as :data:`Weights`; those left out (None)
    are left out of the weighted sum too.

    ``pred`` (N, S, S, C + 5B) and ``target`` (N, S, S, C + 5) of any floating dtype; the work
    and both results are in the compute dtype (float64 for float64, else float32).

    The object cells are gathered first (a host-device synchronisation on a GPU, which is why
    CUDA tensors go to the Triton kernel): the cells without an object only pay Σ_b ĉ_b².
    """
    dt = compute_dtype(pred.dtype)
    n_images, cells_per_image, C = pred.shape[0], spec.S * spec.S, spec.C
    with torch.no_grad():
        pred_cells = pred.reshape(-1, spec.pred_channels).to(dt)  # (N·S·S, C + 5B)
        target_cells = target.reshape(-1, spec.target_channels).to(dt)
        has_object = target_cells[:, C] == 1
        objects = has_object.nonzero().squeeze(1)  # (M,) flat cell indices
        image = objects // cells_per_image

        object_pred = pred_cells.index_select(0, objects)[:, None, None]
        ev = evaluate(object_pred, target_cells.index_select(0, objects)[:, None, None], spec)
        object_weights = tuple(w[image] if isinstance(w, Tensor) else w for w in weights)
        conf = pred_cells[:, C::5].reshape(n_images, cells_per_image, spec.B)  # every confidence
        noobj, d_conf = _empty_cells_noobj(conf, ~has_object.reshape(n_images, cells_per_image, 1))

        terms = torch.zeros((n_images, 5), dtype=dt, device=pred.device)  # the fifth: Σ_k w_k term_k
        terms[:, 2] = noobj.sum(dim=-1)
        terms[:, :4].index_add_(0, image, torch.stack(ev.per_cell, dim=-1).reshape(-1, 4))
        grad = torch.zeros((n_images, cells_per_image, spec.pred_channels), dtype=dt, device=pred.device)
        if weights[2] is not None:
            grad[..., C::5] = _weigh(d_conf, weights[2])
        grad = grad.reshape(-1, spec.pred_channels)
        grad.index_copy_(0, objects, gradient(ev, spec, object_weights).reshape(-1, spec.pred_channels))
        for k, weight in enumerate(weights):
            if weight is not None:
                terms[:, 4] += _weigh(terms[:, k], weight)
        return terms, grad.reshape(pred.shape)
