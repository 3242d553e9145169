"""The YOLOv1 loss and its hand-derived gradient, in float64 NumPy (docs/spec.md, "The loss of one cell").

The loss has four terms, one function each: :func:`coord`, :func:`obj` and :func:`cls` over
the cells that hold an object, :func:`noobj` over every cell. Each returns its per-cell value
and its gradient with respect to the prediction; :func:`loss_and_grad` weighs, reduces and
scales them. Nothing here loops over images or cells in Python.
"""

from __future__ import annotations

from collections import namedtuple
from typing import NamedTuple

import numpy as np

from yolov1_loss.reference.boxes import iou_and_grad
from yolov1_loss.reference.spec import DISTANCE_CAP, SIGNED_SQRT_EPS, LossSpec
from yolov1_loss.reference.validate import check_inputs

COMPONENTS = ("coord", "obj", "noobj", "cls")
OUTPUT_NAMES = (*COMPONENTS, "total")  # what a loss gives: the four components and the weighted total

Components = namedtuple("Components", [*COMPONENTS, "total"])
Components.__doc__ = "One value (or array) per component of the loss, and the weighted total."

LossParts = namedtuple("LossParts", [*COMPONENTS, "total", "per_cell"])
LossParts.__doc__ = """The loss after reduction and loss_scale: the four unweighted components, the
weighted total (floats, or arrays of shape (N,) under reduction='none'), and ``per_cell``, a
:class:`Components` of (N, S, S) arrays: each cell's contribution, so that every component is
the sum of its per-cell array (over each image's cells under reduction='none')."""


class Cells(NamedTuple):
    """The cells that hold an object (o = 1), M of them, gathered from the batch."""

    p: np.ndarray  # (M, C) predicted class scores
    conf: np.ndarray  # (M, B) predicted confidences ĉ_b
    box: np.ndarray  # (M, B, 4) predicted (x̂, ŷ, ŵ, ĥ) per predictor
    q: np.ndarray  # (M, C) target class values
    tbox: np.ndarray  # (M, 4) target (x, y, w, h)


class CellGrad(NamedTuple):
    """A gradient over the object cells, split like :class:`Cells`'s prediction."""

    p: np.ndarray  # (M, C)
    conf: np.ndarray  # (M, B)
    box: np.ndarray  # (M, B, 4)


def _zero_grad(cells: Cells) -> CellGrad:
    return CellGrad(np.zeros_like(cells.p), np.zeros_like(cells.conf), np.zeros_like(cells.box))


def _pick(per_predictor: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The responsible predictor's row: (M, B, ...) → (M, ...)."""
    return per_predictor[np.arange(len(r)), r]


def _only_responsible(per_cell_grad: np.ndarray, r: np.ndarray, B: int) -> np.ndarray:
    """Spread a gradient of the responsible predictor, (M, ...), to (M, B, ...), zero elsewhere."""
    out = np.zeros((len(r), B, *per_cell_grad.shape[1:]))
    out[np.arange(len(r)), r] = per_cell_grad
    return out


# --- sizes: how w, h enter the squared error (f, g) and the IoU -------------------------------


def target_size_term(w: np.ndarray, spec: LossSpec) -> np.ndarray:
    """f(w): √w under the square-root wh_modes, √max(w, ε) under 'clamped_sqrt', w under 'linear'."""
    if spec.wh_mode == "clamped_sqrt":
        return np.sqrt(np.maximum(w, spec.sqrt_clamp_eps))
    return w if spec.wh_mode == "linear" else np.sqrt(w)


def pred_size_term(v: np.ndarray, spec: LossSpec) -> tuple[np.ndarray, np.ndarray]:
    """g(v) and g'(v) for a predicted size v, by wh_mode."""
    if spec.wh_mode in ("linear", "sqrt_output"):
        return v, np.ones_like(v)
    if spec.wh_mode == "sqrt":
        with np.errstate(divide="ignore"):  # g'(0) is +inf, as IEEE and autograd have it
            return np.sqrt(v), 0.5 / np.sqrt(v)
    if spec.wh_mode == "clamped_sqrt":
        # g = √max(v, ε): g' = 1 / (2√v) where v ≥ ε (at v = ε the gradient passes, as torch's
        # clamp has it), 0 below, where the clamp holds g at √ε.
        clamped = np.maximum(v, spec.sqrt_clamp_eps)
        return np.sqrt(clamped), np.where(v >= spec.sqrt_clamp_eps, 0.5 / np.sqrt(clamped), 0.0)
    eps = SIGNED_SQRT_EPS
    if spec.signed_sqrt_eps == "outside":
        root = np.sqrt(np.abs(v) + eps)  # g = sign(v)·√(|v| + ε); for v ≠ 0, g' = 1 / (2√(|v| + ε))
        return np.sign(v) * root, np.where(v == 0, 0.0, 0.5 / root)
    # g = sign(v)·√|v + ε|; g' = sign(v)·sign(v + ε) / (2√|v + ε|): negative on (-ε, 0).
    # Where v = 0 (sign) or v = -ε (abs), the derivative of that factor is 0 by convention.
    root = np.sqrt(np.abs(v + eps))
    slope = np.sign(v) * np.sign(v + eps) * 0.5 / np.where(root > 0, root, 1.0)
    return np.sign(v) * root, np.where(root > 0, slope, 0.0)


def iou_frame(cells: Cells, spec: LossSpec):
    """Boxes as the IoU sees them, and d(frame box)/d(predicted box) per coordinate.

    Frame 'image' divides x, y by S; under 'sqrt_output' the predicted size is v².
    Returns (pbox (M, B, 4), tbox (M, 4), chain (M, B, 4)).
    """
    k = spec.iou_frame_scale
    x, y, w, h = np.moveaxis(cells.box, -1, 0)
    if spec.wh_mode == "sqrt_output":
        sizes, d_sizes = (w**2, h**2), (2 * w, 2 * h)
    else:
        sizes, d_sizes = (w, h), (np.ones_like(w), np.ones_like(h))
    pbox = np.stack([k * x, k * y, *sizes], axis=-1)
    chain = np.stack([np.full_like(x, k), np.full_like(y, k), *d_sizes], axis=-1)
    tx, ty, tw, th = np.moveaxis(cells.tbox, -1, 0)
    tbox = np.stack([k * tx, k * ty, tw, th], axis=-1)
    return pbox, tbox, chain


def ious(cells: Cells, spec: LossSpec) -> tuple[np.ndarray, np.ndarray]:
    """IoU of every predictor with its cell's target, (M, B), and d IoU / d box, (M, B, 4)."""
    pbox, tbox, chain = iou_frame(cells, spec)
    iou, d_iou = iou_and_grad(pbox, tbox[:, None, :], spec.iou_eps)
    return iou, d_iou * chain


def responsible(cells: Cells, iou: np.ndarray, spec: LossSpec) -> np.ndarray:
    """Index r of the responsible predictor per object cell, (M,).

    The highest IoU, ties to the lowest index. Under 'max_iou_else_min_rmse', a cell whose IoUs
    are all 0 takes the predictor nearest the target (Euclidean distance of (x, y, w, h) in the
    IoU frame) among those nearer than DISTANCE_CAP (20), ties to the lowest index; if none is, predictor 0.
    """
    r = np.argmax(iou, axis=-1)  # argmax returns the first of equal maxima
    if spec.responsible == "max_iou_else_min_rmse":
        pbox, tbox, _ = iou_frame(cells, spec)
        distance = np.linalg.norm(pbox - tbox[:, None, :], axis=-1)
        eligible = np.where(distance < DISTANCE_CAP, distance, np.inf)
        nearest = np.argmin(eligible, axis=-1)  # 0 when every distance is inf
        r = np.where(iou.max(axis=-1, initial=0.0) > 0, r, nearest)
    return r


# --- the four terms -------------------------------------------------------------------------


def coord(cells: Cells, r: np.ndarray, spec: LossSpec) -> tuple[np.ndarray, CellGrad]:
    """(x − x̂_r)² + (y − ŷ_r)² + (f(w) − g(ŵ_r))² + (f(h) − g(ĥ_r))², per object cell."""
    x, y, w, h = np.moveaxis(_pick(cells.box, r), -1, 0)
    gw, dgw = pred_size_term(w, spec)
    gh, dgh = pred_size_term(h, spec)
    tx, ty, tw, th = np.moveaxis(cells.tbox, -1, 0)
    diff = np.stack([tx - x, ty - y, target_size_term(tw, spec) - gw, target_size_term(th, spec) - gh], -1)
    d_pred_terms = np.stack([np.ones_like(x), np.ones_like(y), dgw, dgh], -1)
    with np.errstate(invalid="ignore"):  # 0·inf under 'sqrt' at ŵ = 0 = w is nan, as in autograd
        d_box_r = -2 * diff * d_pred_terms
    grad = _zero_grad(cells)._replace(box=_only_responsible(d_box_r, r, spec.B))
    return (diff**2).sum(axis=-1), grad


def obj(cells: Cells, r: np.ndarray, iou: np.ndarray, d_iou: np.ndarray, spec: LossSpec):
    """(c* − ĉ_r)² per object cell, c* = IoU_r or 1 (conf_target)."""
    c_r = _pick(cells.conf, r)
    c_star = _pick(iou, r) if spec.conf_target == "iou" else np.ones_like(c_r)
    diff = c_star - c_r
    grad = _zero_grad(cells)._replace(conf=_only_responsible(-2 * diff, r, spec.B))
    if spec.conf_target == "iou" and spec.iou_grad == "through":
        d_box_r = 2 * diff[:, None] * _pick(d_iou, r)
        grad = grad._replace(box=_only_responsible(d_box_r, r, spec.B))
    return diff**2, grad


def cls(cells: Cells) -> tuple[np.ndarray, CellGrad]:
    """Σ_k (q_k − p_k)² per object cell."""
    diff = cells.q - cells.p
    return (diff**2).sum(axis=-1), _zero_grad(cells)._replace(p=-2 * diff)


def noobj(conf: np.ndarray, pays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Σ_b pays_b · ĉ_b² per cell: (N, S, S) and d/dĉ (N, S, S, B).

    ``pays`` (N, S, S, B): 1 for every predictor of an empty cell; ρ = spec.noobj_object_factor
    for the non-responsible predictors of object cells (0 under noobj_scope='cell', 1 under
    'predictor', λ_noobj_object / λ_noobj under 'own_weight'); 0 for the responsible ones.
    """
    return (pays * conf**2).sum(axis=-1), pays * 2 * conf


# --- assembly -------------------------------------------------------------------------------


def split_cells(pred: np.ndarray, target: np.ndarray, spec: LossSpec):
    """The object mask (N, S, S), the object cells, and every cell's confidences (N, S, S, B)."""
    C, B = spec.C, spec.B
    boxes = pred[..., C:].reshape(*pred.shape[:3], B, 5)
    has_object = target[..., C] == 1
    cells = Cells(
        p=pred[has_object][:, :C],
        conf=boxes[has_object][..., 0],
        box=boxes[has_object][..., 1:],
        q=target[has_object][:, :C],
        tbox=target[has_object][:, C + 1 :],
    )
    return has_object, cells, boxes[..., 0]


def _to_grid(has_object: np.ndarray, value: np.ndarray, grad: CellGrad, pred_shape):
    """Scatter an object-cell term back to the grid: (N, S, S) values and a pred-shaped gradient."""
    per_cell = np.zeros(has_object.shape)
    per_cell[has_object] = value
    full = np.zeros(pred_shape)
    full[has_object] = _cell_pred(grad.p, grad.conf, grad.box)
    return per_cell, full


def _cell_pred(p: np.ndarray, conf: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Lay out (…, C), (…, B), (…, B, 4) as canonical prediction cells (…, C + 5B)."""
    boxes = np.concatenate([conf[..., None], box], axis=-1)
    return np.concatenate([p, boxes.reshape(*conf.shape[:-1], 5 * conf.shape[-1])], axis=-1)


def _evaluate(pred, target, spec: LossSpec):
    """Per-cell values (N, S, S) and pred-shaped gradients of the four unreduced terms."""
    pred, target = check_inputs(pred, target, spec)
    has_object, cells, conf = split_cells(pred, target, spec)
    iou, d_iou = ious(cells, spec)
    r = responsible(cells, iou, spec)

    pays = np.broadcast_to(~has_object[..., None], conf.shape).astype(np.float64)
    pays[has_object] = spec.noobj_object_factor * (np.arange(spec.B) != r[:, None])
    noobj_cells, d_conf = noobj(conf, pays)
    zero = np.zeros(has_object.shape + (spec.C,))
    noobj_grad = _cell_pred(zero, d_conf, np.zeros(conf.shape + (4,)))

    terms = {
        "coord": _to_grid(has_object, *coord(cells, r, spec), pred.shape),
        "obj": _to_grid(has_object, *obj(cells, r, iou, d_iou, spec), pred.shape),
        "noobj": (noobj_cells, noobj_grad),
        "cls": _to_grid(has_object, *cls(cells), pred.shape),
    }
    return terms, pred.shape[0]


def _reduce(per_cell: np.ndarray, spec: LossSpec):
    per_image = per_cell.sum(axis=(1, 2))
    return per_image if spec.reduction == "none" else float(per_image.sum())


def _parts(terms, n_images: int, spec: LossSpec) -> LossParts:
    scale = spec.reduction_scale(n_images)
    per_cell = {name: scale * terms[name][0] for name in COMPONENTS}
    weights = dict(zip(COMPONENTS, spec.weights()))
    per_cell["total"] = sum(weights[name] * per_cell[name] for name in COMPONENTS)
    per_cell = Components(**per_cell)
    reduced = {name: _reduce(value, spec) for name, value in per_cell._asdict().items()}
    return LossParts(**reduced, per_cell=per_cell)


def loss(pred, target, spec: LossSpec | None = None) -> LossParts:
    """The YOLOv1 loss of ``pred`` (N, S, S, C + 5B) or flat, against ``target`` (N, S, S, C + 5) or flat.

    Computed in float64 whatever the input dtype; inputs are never modified. Components are
    unweighted, the total weighted; all after reduction and loss_scale. Raises ValueError for
    the inputs of docs/spec.md, "Refused inputs", naming the image and cell.
    """
    spec = spec or LossSpec()
    terms, n_images = _evaluate(pred, target, spec)
    return _parts(terms, n_images, spec)


def loss_and_grad(pred, target, spec: LossSpec | None = None) -> tuple[LossParts, Components]:
    """:func:`loss`, and the gradient of each component and of the total with respect to ``pred``.

    Gradients have ``pred``'s shape (4-D or flat) and are float64. Under reduction='none' they
    are the gradient of the per-image values' sum.
    """
    spec = spec or LossSpec()
    terms, n_images = _evaluate(pred, target, spec)
    scale = spec.reduction_scale(n_images)
    shape = np.shape(pred)
    grads = {name: (scale * terms[name][1]).reshape(shape) for name in COMPONENTS}
    weights = dict(zip(COMPONENTS, spec.weights()))
    grads["total"] = sum(weights[name] * grads[name] for name in COMPONENTS)
    return _parts(terms, n_images, spec), Components(**grads)
