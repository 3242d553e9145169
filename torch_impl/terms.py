"""The loss's per-cell terms in torch (docs/spec.md, "The loss of one cell"), over every cell of the batch at once.

Nothing here gathers the object cells (that would need a host-device synchronisation to learn
how many there are): every term is computed for every cell and masked with ``where``. So that
no NaN can leak through the unselected branch of a ``where`` into a gradient, the boxes of the
cells without an object are replaced by 1 before any square root or division sees them.

The autograd path, and the fused path's vectorized backend, differentiate :func:`per_cell_terms`
with ``torch.autograd``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from yolov1_loss.reference import LossSpec
from yolov1_loss.reference.spec import DISTANCE_CAP, SIGNED_SQRT_EPS
from yolov1_loss.torch_impl.boxes import box_iou


def to_iou_frame(box: Tensor, spec: LossSpec, predicted: bool = True) -> Tensor:
    """Boxes (..., 4) as the IoU sees them: x, y scaled by ``spec.iou_frame_scale``; a predicted
    size squared under 'sqrt_output' (where the network outputs √w); a target size as given."""
    k = spec.iou_frame_scale
    x, y, w, h = box.unbind(-1)
    if predicted and spec.wh_mode == "sqrt_output":
        w, h = w**2, h**2
    return torch.stack([k * x, k * y, w, h], dim=-1)


def target_size_term(w: Tensor, spec: LossSpec) -> Tensor:
    """f(w): √w under the square-root wh_modes, √max(w, ε) under 'clamped_sqrt', w under 'linear'."""
    if spec.wh_mode == "clamped_sqrt":
        return torch.sqrt(torch.clamp(w, min=spec.sqrt_clamp_eps))
    return w if spec.wh_mode == "linear" else torch.sqrt(w)


def inside_eps_root(v: Tensor) -> Tensor:
    """√|v + ε|, whose derivative is taken as 0 where v + ε = 0 (the spec's convention for |·| at 0)."""
    u = torch.abs(v + SIGNED_SQRT_EPS)
    positive = u > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, u, 1.0)), 0.0)


def pred_size_term(v: Tensor, spec: LossSpec) -> Tensor:
    """g(v) for a predicted size v, by wh_mode (and signed_sqrt_eps)."""
    if spec.wh_mode in ("linear", "sqrt_output"):
        return v
    if spec.wh_mode == "sqrt":
        return torch.sqrt(v)
    if spec.wh_mode == "clamped_sqrt":  # clamp's gradient passes at v = ε, as the spec has it
        return torch.sqrt(torch.clamp(v, min=spec.sqrt_clamp_eps))
    if spec.signed_sqrt_eps == "outside":
        return torch.sign(v) * torch.sqrt(torch.abs(v) + SIGNED_SQRT_EPS)
    return torch.sign(v) * inside_eps_root(v)


def pick(per_predictor: Tensor, r: Tensor) -> Tensor:
    """The responsible predictor's entry: (N, S, S, B, ...) and r (N, S, S) → (N, S, S, ...).

    A gather, so that autograd sends the gradient to predictor r alone (a product with a
    one-hot mask would turn an infinite gradient into NaN at the other predictors).
    """
    trailing = per_predictor.shape[4:]
    index = r.reshape(*r.shape, 1, *(1 for _ in trailing)).expand(*r.shape, 1, *trailing)
    return torch.gather(per_predictor, 3, index).squeeze(3)


def responsible(iou: Tensor, pbox: Tensor, tbox: Tensor, spec: LossSpec) -> Tensor:
    """Index of the responsible predictor, (N, S, S), from the IoUs (N, S, S, B).

    The highest IoU, ties to the lowest index (``argmax`` returns the first maximum). Under
    'max_iou_else_min_rmse', a cell whose IoUs are all 0 takes the predictor nearest the target
    (Euclidean distance in the IoU frame, ``pbox`` (N, S, S, B, 4) against ``tbox`` (N, S, S, 4))
    among those nearer than DISTANCE_CAP (20), ties to the lowest index; if none is, predictor 0. The choice
    carries no gradient.
    """
    iou, pbox, tbox = iou.detach(), pbox.detach(), tbox.detach()
    r = torch.argmax(iou, dim=-1)
    if spec.responsible == "max_iou_else_min_rmse":
        distance = torch.sqrt(((pbox - tbox[..., None, :]) ** 2).sum(dim=-1))
        eligible = torch.where(distance < DISTANCE_CAP, distance, torch.inf)
        nearest = torch.argmin(eligible, dim=-1)  # 0 when every distance is inf
        r = torch.where(iou.amax(dim=-1) > 0, r, nearest)
    return r


def noobj_payers(has_object: Tensor, r: Tensor, spec: LossSpec, dtype: torch.dtype) -> Tensor:
    """(N, S, S, B) in ``dtype``: what each predictor's ĉ² counts for in noobj: 1 in an empty cell;
    in an object cell ρ = spec.noobj_object_factor for the non-responsible predictors, 0 for the
    responsible one."""
    empty = (~has_object[..., None]).expand(*has_object.shape, spec.B).to(dtype)
    if spec.noobj_object_factor == 0:
        return empty
    others = (torch.arange(spec.B, device=r.device) != r[..., None]).to(dtype)
    return torch.where(empty > 0, empty, spec.noobj_object_factor * others)


def per_cell_terms(pred: Tensor, target: Tensor, spec: LossSpec) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Every cell's (coord, obj, noobj, cls), unweighted, (N, S, S) each, for ``pred``
    (N, S, S, C + 5B) and ``target`` (N, S, S, C + 5), both in the compute dtype (float32 or
    float64); ``pred`` may require grad. Separate tensors, so that differentiating one term never
    runs through another's graph (where 0 · ∞ is NaN)."""
    C, B = spec.C, spec.B
    has_object = target[..., C] == 1
    boxes = pred[..., C:].unflatten(-1, (B, 5))
    conf = boxes[..., 0]
    box = torch.where(has_object[..., None, None], boxes[..., 1:], 1.0)
    tbox = torch.where(has_object[..., None], target[..., C + 1 :], 1.0)

    pbox, tbox_frame = to_iou_frame(box, spec), to_iou_frame(tbox, spec, predicted=False)
    iou = box_iou(pbox, tbox_frame[..., None, :], spec.iou_eps)
    r = responsible(iou, pbox, tbox_frame, spec)

    box_r = pick(box, r)
    x, y, w, h = box_r.unbind(-1)
    tx, ty, tw, th = tbox.unbind(-1)
    coord_diff = torch.stack(
        [
            tx - x,
            ty - y,
            target_size_term(tw, spec) - pred_size_term(w, spec),
            target_size_term(th, spec) - pred_size_term(h, spec),
        ],
        dim=-1,
    )
    c_r = pick(conf, r)
    if spec.conf_target == "one":
        c_star = torch.ones_like(c_r)
    else:
        c_star = pick(iou, r)
        c_star = c_star if spec.iou_grad == "through" else c_star.detach()
    obj_diff = c_star - c_r
    cls_diff = target[..., :C] - pred[..., :C]
    pays = noobj_payers(has_object, r, spec, conf.dtype)

    return (
        torch.where(has_object, (coord_diff**2).sum(dim=-1), 0.0),
        torch.where(has_object, obj_diff**2, 0.0),
        (pays * conf**2).sum(dim=-1),
        torch.where(has_object, (cls_diff**2).sum(dim=-1), 0.0),
    )


def per_image_terms(pred: Tensor, target: Tensor, spec: LossSpec) -> tuple[Tensor, ...]:
    """Each image's unweighted, unscaled (coord, obj, noobj, cls), (N,) each, differentiable by autograd."""
    return tuple(term.sum(dim=(1, 2)) for term in per_cell_terms(pred, target, spec))


def nonfinite_guard(pred: Tensor) -> Tensor:
    """(N,): 0 for each image whose prediction is finite everywhere, NaN where any of its values is
    NaN or ±∞ (a sum of 0 · v, which no finite v makes non-zero). Added to the total, so that a
    non-finite prediction anywhere, even in a channel the loss ignores or a predictor the NaN made
    lose its responsibility, gives a non-finite total, as any torch op would; it needs no
    host-device synchronisation and carries no gradient."""
    return (pred.detach().flatten(1) * 0).sum(dim=1)
