"""What the HTML report draws, computed while the loss can still be called: one image of an
example, each term's per-cell values from the loss and the oracle, and the gradient's difference
per cell and channel group.

A cell's value of a term is the term on the example with every other cell emptied
(:func:`conformance.suite.tolerances.only_cell`: an emptied cell adds nothing in any dialect), so
the loss is called once per cell of the image (S² calls) and once more for its gradient. A
difference within the check's own tolerance (:func:`conformance.suite.tolerances.value_tolerance`,
:func:`conformance.suite.comparison.grad_mismatch`) is drawn, and stored, as 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from yolov1_loss import reference
from yolov1_loss.conformance.inputs.example import Example, Recipe, build
from yolov1_loss.conformance.suite.comparison import at_image, comparable_elements, grad_mismatch, oracle_responsible
from yolov1_loss.conformance.suite.tolerances import differs, only_cell, value_tolerance
from yolov1_loss.conformance.user_loss.implementation import ImplementationError
from yolov1_loss.reference.loss import COMPONENTS, OUTPUT_NAMES, iou_frame, split_cells


@dataclass
class Term:
    """One output's per-cell values on the image, (S, S) each; ``loss`` None where the loss does
    not give that output."""

    loss: np.ndarray | None
    oracle: np.ndarray
    tolerance: np.ndarray

    @property
    def difference(self) -> np.ndarray | None:
        """(S, S) loss − oracle where they differ beyond the tolerance, else 0 (NaN where the
        loss's value is not finite and the oracle's is)."""
        if self.loss is None:
            return None
        beyond = differs(self.loss, self.oracle, self.tolerance)
        with np.errstate(invalid="ignore"):
            return np.where(beyond, self.loss - self.oracle, 0.0)


@dataclass
class Picture:
    """One image of an example and what the page draws of it."""

    title: str  # 'the failing example of gradients_match_oracle', 'one example'
    spec: reference.LossSpec
    image: int
    pred: np.ndarray  # (S, S, C + 5B) the image's prediction, canonical
    target: np.ndarray  # (S, S, C + 5)
    responsible: np.ndarray  # (S, S) the oracle's responsible predictor, -1 in empty cells
    loss_responsible: np.ndarray  # (S, S) the loss's where its coord gradient tells it, else -1
    terms: dict = field(default_factory=dict)  # output name -> Term
    gradient: dict | None = None  # channel group name -> (S, S) loss − oracle beyond tolerance
    notes: list = field(default_factory=list)  # what could not be drawn, and why
    failure: object = None  # the ConformanceFailure drawn, None for an ordinary example

    @property
    def exposes_terms(self) -> bool:
        """Whether the loss gives any component besides the total."""
        return any(self.terms[name].loss is not None for name in COMPONENTS if name in self.terms)


def channel_groups(spec) -> dict:
    """Channel group name -> the canonical prediction channels in it: the class scores, then per
    predictor b its confidence and its box (x, y, w, h)."""
    groups = {"class scores": list(range(spec.C))}
    for b in range(spec.B):
        first = spec.C + 5 * b
        groups[f"predictor {b} confidence"] = [first]
        groups[f"predictor {b} box"] = list(range(first + 1, first + 5))
    return groups


def group_extremes(per_element: np.ndarray, spec) -> dict:
    """(S, S, C + 5B) → group name -> (S, S): in each cell, the element of the group furthest
    from 0, with its sign (NaN where one is NaN)."""
    out = {}
    for name, channels in channel_groups(spec).items():
        block = per_element[..., channels]
        order = np.argmax(np.nan_to_num(np.abs(block), nan=np.inf), axis=-1)
        out[name] = np.take_along_axis(block, order[..., None], axis=-1)[..., 0]
    return out


def drawn_boxes(pred: np.ndarray, target: np.ndarray, spec) -> tuple:
    """Boxes of one image in image coordinates (fractions of the image, (cx, cy, w, h)), as the
    IoU sees them (:func:`reference.loss.iou_frame`: sizes squared under 'sqrt_output'), drawn
    at the scale that puts a centre in its cell: x and y are offsets in the cell (column j, row
    i), a size is divided by S·k, k the frame's scale of x and y.

    Returns (cells (M, 2) the object cells' (i, j), target boxes (M, 4), predicted boxes (M, B, 4)).
    """
    has_object, cells, _ = split_cells(pred[None], target[None], spec)
    where = np.argwhere(has_object[0])
    pbox, tbox, _ = iou_frame(cells, spec)
    k = spec.iou_frame_scale
    offset = where[:, ::-1].astype(float)  # (column, row) of each object cell
    t = np.concatenate([(offset + cells.tbox[:, :2]) / spec.S, tbox[:, 2:] / (spec.S * k)], axis=-1)
    p = np.concatenate([(offset[:, None, :] + cells.box[..., :2]) / spec.S, pbox[..., 2:] / (spec.S * k)], axis=-1)
    return where, t, p


def loss_responsible(coord_grad: np.ndarray | None, has_object: np.ndarray, spec) -> np.ndarray:
    """(S, S): in each object cell, the one predictor whose box gets a gradient of the loss's
    coord output (``coord_grad`` (S, S, C + 5B), None where the loss gives no coord), which the
    coord term reaches alone; -1 where that is not one predictor, or unknown."""
    out = np.full(has_object.shape, -1)
    if coord_grad is None:
        return out
    boxes = coord_grad[..., spec.C :].reshape(*has_object.shape, spec.B, 5)[..., 1:]
    reached = np.abs(np.nan_to_num(boxes, nan=1.0)).sum(axis=-1) > 0  # (S, S, B)
    one = has_object & (reached.sum(axis=-1) == 1)
    out[one] = np.argmax(reached, axis=-1)[one]
    return out


def _per_cell(impl, ex: Example, image: int) -> dict:
    """Output name -> (S, S) of the loss's value with every other cell emptied (absent: an output
    the loss does not give)."""
    S = ex.spec.S
    out = {}
    for i in range(S):
        for j in range(S):
            alone = only_cell(ex, (image, i, j))
            values = impl.evaluate(alone.pred, alone.target, alone.spec).values
            for name in OUTPUT_NAMES:
                if name in values:
                    out.setdefault(name, np.zeros((S, S)))[i, j] = at_image(values[name], image)
    return out


def _tolerances(ex: Example, dtype: str, image: int) -> dict:
    """Output name -> (S, S): the check's tolerance of that output with every other cell emptied."""
    S = ex.spec.S
    out = {name: np.zeros((S, S)) for name in OUTPUT_NAMES}
    for i in range(S):
        for j in range(S):
            alone = only_cell(ex, (image, i, j))
            for name in OUTPUT_NAMES:
                out[name][i, j] = at_image(value_tolerance(alone, dtype, name), image)
    return out


def picture(impl, example: Example, image: int, title: str) -> Picture:
    """What the page draws of image ``image`` of ``example`` (before rounding) for ``impl``: its
    terms cell by cell from the loss and the oracle, and the gradient of the total's difference."""
    ex = example.rounded(impl.dtype)
    spec = ex.spec
    has_object = ex.has_object[image]
    responsible = np.where(has_object, oracle_responsible(ex)[image], -1)
    shown = Picture(title, spec, image, ex.pred[image], ex.target[image], responsible, np.full(has_object.shape, -1))
    oracle = reference.loss(ex.pred, ex.target, spec).per_cell._asdict()
    tolerances = _tolerances(ex, impl.dtype, image)
    try:
        given = _per_cell(impl, ex, image)
    except ImplementationError as err:
        shown.notes.append(f"the loss raised on a cell of this image, so its values are not drawn: {err}")
        given = {}
    for name in OUTPUT_NAMES:
        shown.terms[name] = Term(given.get(name), oracle[name][image], tolerances[name])
    if given and not shown.exposes_terms:
        shown.notes.append("the loss gives only a total, so the terms cannot be told apart: the gradient shows where")
    if impl.has_gradient:
        _gradient(shown, impl, ex, image)
    else:
        shown.notes.append("the loss has no gradient to compare")
    return shown


def _gradient(shown: Picture, impl, ex: Example, image: int) -> None:
    """The gradient of the total's difference per channel group, and the loss's responsible
    predictors where its coord gradient tells them, onto ``shown``."""
    try:
        actual = impl.evaluate(ex.pred, ex.target, ex.spec, grads="all").grads
    except ImplementationError as err:
        shown.notes.append(f"the loss's gradient could not be taken on this example: {err}")
        return
    expected = reference.loss_and_grad(ex.pred, ex.target, ex.spec)[1]._asdict()
    mask = comparable_elements(ex, impl.dtype, impl.project)
    _, beyond = grad_mismatch(ex, impl.dtype, actual["total"], expected, "total", mask)
    with np.errstate(invalid="ignore"):
        difference = np.where(beyond, actual["total"] - expected["total"], 0.0)
    shown.gradient = group_extremes(difference[image], ex.spec)
    if mask is not None:
        shown.notes.append("cells near a kink of the loss are not compared, as in the check: their gradient shows 0")
    coord = actual.get("coord")
    has_object = ex.has_object[image]
    shown.loss_responsible = loss_responsible(None if coord is None else coord[image], has_object, ex.spec)


def failure_picture(impl, failure) -> Picture | None:
    """The picture of a failure's example, on the image it names (else image 0); None where the
    failure has no example."""
    if failure.example is None:
        return None
    image = failure.located()["image"] or 0
    shown = picture(impl, failure.example, image, f"the failing example of {failure.property}")
    shown.failure = failure
    return shown


def example_picture(impl, spec) -> Picture:
    """The picture of one ordinary example of ``spec`` (a third of the cells hold objects)."""
    return picture(impl, build(Recipe(spec, seed=0)), 0, "one example")


def pictures(report, impl) -> list:
    """The pictures a page of ``report`` draws, for ``impl`` (held to ``report.spec``): one per
    failure that has an example, else one ordinary example; none without a dialect."""
    if report.spec is None:
        return []
    if not report.failures:
        return [example_picture(impl, report.spec)]
    found = [failure_picture(impl, failure) for failure in report.failures]
    return [p for p in found if p is not None]
