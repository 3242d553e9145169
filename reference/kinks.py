"""How far a point is from the kinks of the loss, where its gradient is a convention, not a limit.

Finite differences, and comparisons of other implementations' gradients with the oracle's, are
meaningful only a margin away from every kink (docs/spec.md, "Gradients"): a tie between predictors' IoUs
(the responsible predictor switches), coinciding box edges, an overlap of exactly zero, a zero
predicted size, and, under darknet's fallback, ties of its distance rule and its cap of 20.
"""

from __future__ import annotations

import numpy as np

from yolov1_loss.reference.boxes import edges
from yolov1_loss.reference.loss import iou_frame, ious, split_cells
from yolov1_loss.reference.spec import DISTANCE_CAP, SIGNED_SQRT_EPS, LossSpec
from yolov1_loss.reference.validate import check_inputs


def _gap_to_runner_up(values: np.ndarray) -> np.ndarray:
    """(M, B) → (M,): the best value minus the second best (inf with one predictor)."""
    if values.shape[-1] < 2:
        return np.full(values.shape[:-1], np.inf)
    top2 = -np.sort(-values, axis=-1)[..., :2]
    return top2[..., 0] - top2[..., 1]


def kink_margins(pred, target, spec: LossSpec) -> np.ndarray:
    """(N, S, S): each object cell's distance from the point to its nearest kink of the loss.

    Distances are in the units of the inputs (IoU units for an IoU tie); inf in the cells
    without an object, which are smooth (only ĉ² terms).
    """
    pred, target = check_inputs(pred, target, spec)
    has_object, cells, _ = split_cells(pred, target, spec)
    margins = np.full(has_object.shape, np.inf)
    if len(cells.box) == 0:
        return margins
    iou, _ = ious(cells, spec)
    pbox, tbox, _ = iou_frame(cells, spec)
    # A tie of IoUs that are all 0 moves nothing: r stays put until an overlap appears, and
    # that is the zero-overlap kink below.
    iou_gap = np.where(iou.max(axis=-1) > 0, _gap_to_runner_up(iou), np.inf)
    distances = [iou_gap, np.abs(cells.box[..., 2:]).min(axis=-1)]
    for axis in (0, 1):
        p_lo, p_hi = edges(pbox[..., axis], pbox[..., axis + 2])
        t_lo, t_hi = edges(tbox[:, None, axis], tbox[:, None, axis + 2])
        overlap = np.minimum(p_hi, t_hi) - np.maximum(p_lo, t_lo)
        distances += [np.abs(p_lo - t_lo), np.abs(p_hi - t_hi), np.abs(overlap)]
    if spec.wh_mode == "signed_sqrt" and spec.signed_sqrt_eps == "inside":
        distances.append(np.abs(cells.box[..., 2:] + SIGNED_SQRT_EPS).min(axis=-1))
    if spec.wh_mode == "clamped_sqrt":  # where max(v, ε) switches
        distances.append(np.abs(cells.box[..., 2:] - spec.sqrt_clamp_eps).min(axis=-1))
    if spec.responsible == "max_iou_else_min_rmse":
        distance = np.linalg.norm(pbox - tbox[:, None, :], axis=-1)
        distances += [np.abs(distance - DISTANCE_CAP), _gap_to_runner_up(-distance)]
    m = len(cells.box)
    margins[has_object] = np.min([np.reshape(d, (m, -1)).min(axis=1) for d in distances], axis=0)
    return margins


def kink_margin(pred, target, spec: LossSpec) -> float:
    """The smallest distance, over the object cells, from the point to a kink of the loss (see
    :func:`kink_margins`); inf where no cell holds an object."""
    return float(kink_margins(pred, target, spec).min(initial=np.inf))
