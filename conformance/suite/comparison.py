"""The comparisons properties make, and the located failures they raise.

A :class:`Run` is one property checking one implementation on one drawn example. It compares
values output by output (coord, obj, noobj, cls, total) and, when they part, defers the search
for the first cell where they do (bisecting the cells with the same two functions that gave
the values); it compares gradients element by element and reports the worst.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from yolov1_loss import reference
from yolov1_loss.conformance.inputs.example import Example
from yolov1_loss.conformance.suite.failure import ConformanceFailure
from yolov1_loss.conformance.suite.tolerances import (
    comparable_cells,
    differs,
    element_fields,
    first_differing_cell,
    grad_tolerance,
    only_cell,
    value_tolerance,
    worst_element,
)
from yolov1_loss.conformance.user_loss.implementation import OUTPUT_NAMES, Evaluation, Implementation
from yolov1_loss.reference.loss import COMPONENTS, ious, responsible, split_cells

Outputs = Callable[[Example], dict]  # an example → {output name: value (() or (N,))}


def fmt(value) -> str:
    """A value or per-image vector, with 10 significant digits."""
    value = np.asarray(value)
    return f"{float(value):.10g}" if value.ndim == 0 else np.array2string(value, precision=10)


def at_image(value, image: int) -> float:
    """A scalar output, or image ``image``'s entry of a per-image one."""
    value = np.asarray(value)
    return float(value if value.ndim == 0 else value[image])


def oracle_values(ex: Example) -> dict:
    parts = reference.loss(ex.pred, ex.target, ex.spec)
    return {name: np.asarray(getattr(parts, name)) for name in OUTPUT_NAMES}


def grad_size(grads: dict, spec, name: str) -> np.ndarray:
    """The size of the terms of the gradient of ``name``: |∇name|, or Σ_k |λ_k ∇_k| for the total."""
    if name != "total":
        return np.abs(grads[name])
    weights = dict(zip(COMPONENTS, spec.weights()))
    with np.errstate(invalid="ignore"):  # 0 · inf where a weight is 0: NaN, a tolerance no finite error passes
        return sum(abs(weights[k]) * np.abs(grads[k]) for k in weights if k in grads)


def comparable_elements(ex: Example, dtype: str, project: bool) -> np.ndarray | None:
    """(N, S, S, 1) bool: where a gradient is compared with the oracle's (None: everywhere), from
    :func:`~conformance.suite.tolerances.comparable_cells`."""
    comparable = comparable_cells(ex, dtype, project)
    return None if comparable is None else comparable[..., None]


def grad_mismatch(ex: Example, dtype: str, actual, expected: dict, name: str, mask=None) -> tuple:
    """The gradient of output ``name``, ``actual``, against ``expected`` (every output's gradient
    there is, for the size of the total's terms) on ``ex`` in ``dtype``: (each element's
    tolerance, the elements beyond it, where ``mask``)."""
    size = grad_size(expected, ex.spec, name)
    tolerance = np.broadcast_to(grad_tolerance(ex, dtype, name, size), np.shape(expected[name]))
    bad = differs(actual, expected[name], tolerance)
    return tolerance, bad if mask is None else bad & mask


def oracle_responsible(example: Example) -> np.ndarray:
    """(N, S, S): the oracle's responsible predictor in each object cell (0 in the others)."""
    has_object, cells, _ = split_cells(example.pred, example.target, example.spec)
    out = np.zeros(has_object.shape, dtype=int)
    out[has_object] = responsible(cells, ious(cells, example.spec)[0], example.spec)
    return out


# The parts of a prediction, each element in one by its cell's kind, its predictor (the oracle's
# responsible one or another) and its channel, and the term whose gradient reaches each (None: no
# term reads them). The names are blame's (dialects.blame.PARTS).
PART_TERMS = {
    "the class scores of empty cells": None,
    "the boxes of empty cells": None,
    "the boxes of the other predictors": None,
    "coord (centres)": "coord",
    "coord (sizes)": "coord",
    "obj": "obj",
    "noobj (empty cells)": "noobj",
    "noobj (object cells)": "noobj",
    "cls": "cls",
}


def _parts(spec, k, has_object, responsible) -> dict:
    """Part name (:data:`PART_TERMS`) → whether channel ``k`` lies in it, in a cell that holds an
    object or not (``has_object``) whose responsible predictor is ``responsible`` (arrays that
    broadcast, or one element's)."""
    is_class = k < spec.C
    predictor = np.where(is_class, -1, (k - spec.C) // 5)
    field_ = np.where(is_class, -1, (k - spec.C) % 5)
    mine = predictor == responsible
    centre, size, conf = (field_ == 1) | (field_ == 2), (field_ == 3) | (field_ == 4), field_ == 0
    box = centre | size
    has = has_object
    return {
        "the class scores of empty cells": ~has & is_class,
        "the boxes of empty cells": ~has & box,
        "the boxes of the other predictors": has & ~mine & box,
        "coord (centres)": has & mine & centre,
        "coord (sizes)": has & mine & size,
        "obj": has & mine & conf,
        "noobj (empty cells)": ~has & conf,
        "noobj (object cells)": has & ~mine & conf,
        "cls": has & is_class,
    }


def part_masks(example: Example, responsible: np.ndarray | None = None) -> dict:
    """Part name (:data:`PART_TERMS`) → its (N, S, S, C + 5B) bool mask, under ``example.spec``
    (``responsible``: :func:`oracle_responsible` of ``example``, where the caller has it)."""
    responsible = oracle_responsible(example) if responsible is None else responsible
    k = np.arange(example.spec.pred_channels)
    return _parts(example.spec, k, example.has_object[..., None], responsible[..., None])


def part_of(example: Example, index) -> str:
    """The part (:data:`PART_TERMS`) holding prediction element ``index`` (n, i, j, k), under
    ``example.spec`` (the oracle's responsible predictor found in its cell alone)."""
    n, i, j, k = index
    has = np.asarray(example.has_object[n, i, j])
    responsible = oracle_responsible(only_cell(example, (n, i, j)))[n, i, j] if has else 0
    parts = _parts(example.spec, np.asarray(k), has, responsible)
    return next(name for name, inside in parts.items() if inside)


def term_of_element(example: Example, index) -> str | None:
    """The term whose gradient reaches prediction element (n, i, j, k), its part's
    (:data:`PART_TERMS`): class scores are cls's; in an empty cell, and for the other
    predictors' confidences, noobj; the responsible predictor's confidence obj's, its box coord's
    (and obj's, where the gradient flows through the IoU); None for the other predictors' boxes,
    which no term reaches."""
    term = PART_TERMS[part_of(example, index)]
    spec = example.spec
    if term == "coord" and spec.conf_target == "iou" and spec.iou_grad == "through":
        return "coord or obj"
    return term


def responsible_note(example: Example, cell) -> tuple:
    """The oracle's responsible predictor in ``cell`` (n, i, j) and a note listing the IoUs;
    (None, None) if the cell holds no object."""
    if not example.has_object[cell]:
        return None, None
    alone = only_cell(example, cell)
    _, cells, _ = split_cells(alone.pred, alone.target, example.spec)
    iou = ious(cells, example.spec)[0]
    r = int(responsible(cells, iou, example.spec)[0])
    listed = ", ".join(f"{v:.6g}" for v in iou[0])
    return r, f"the oracle makes predictor {r} responsible (IoUs with the target: {listed})"


@dataclass
class Run:
    """One property on one implementation and drawn example; ``ex`` is the example rounded to
    the implementation's dtype, which every comparison uses."""

    prop: str
    impl: Implementation
    example: Example
    ex: Example = field(init=False)

    def __post_init__(self):
        self.ex = self.example.rounded(self.impl.dtype)

    @property
    def grads_wanted(self) -> str:
        return "all" if self.impl.has_gradient else "none"

    def evaluate(self, ex: Example | None = None, **options) -> Evaluation:
        ex = self.ex if ex is None else ex
        return self.impl.evaluate(ex.pred, ex.target, ex.spec, **options)

    def values(self, ex: Example | None = None, **options) -> dict:
        return self.evaluate(ex, **options).values

    def fail(self, message: str, **fields) -> ConformanceFailure:
        return ConformanceFailure(self.prop, message, implementation=self.impl, example=self.example, **fields)

    def check_values(
        self, actual_on: Outputs, expected_on: Outputs, what: str, *, actual=None, expected=None, dtype=None
    ):
        """Raise for the first output whose value differs: ``actual_on(ex)`` against
        ``expected_on(ex)`` (``actual``/``expected``: those already computed on ``ex``)."""
        dtype = dtype or self.impl.dtype
        actual = actual_on(self.ex) if actual is None else actual
        expected = expected_on(self.ex) if expected is None else expected
        for name in OUTPUT_NAMES:
            if name in actual and name in expected:
                if differs(actual[name], expected[name], value_tolerance(self.ex, dtype, name)).any():
                    finite = bool(np.all(np.isfinite(actual[name])))
                    raise self.fail(
                        f"{name} is {fmt(actual[name])}, {what} {fmt(expected[name])}",
                        component=name,
                        locate=self._locate(name, actual_on, expected_on, dtype, finite),
                    )

    def _locate(self, name: str, actual_on: Outputs, expected_on: Outputs, dtype: str, finite: bool = True):
        """A deferred search for the first cell where output ``name`` differs (where the output
        is not finite: the first cell whose own contribution is not)."""

        def differs_on(sub: Example) -> bool:
            return bool(differs(actual_on(sub)[name], expected_on(sub)[name], value_tolerance(sub, dtype, name)).any())

        def nonfinite_on(sub: Example) -> bool:
            return not np.all(np.isfinite(actual_on(sub)[name]))

        def locate() -> dict:
            cell = None if finite else first_differing_cell(self.ex, nonfinite_on)
            cell = cell or first_differing_cell(self.ex, differs_on)
            if cell is None:
                return {}
            n, i, j = cell
            alone = only_cell(self.ex, cell)
            predictor, note = responsible_note(self.ex, cell)
            return {
                "image": n,
                "cell": (i, j),
                "predictor": predictor,
                "note": note,
                "actual": at_image(actual_on(alone)[name], n),
                "expected": at_image(expected_on(alone)[name], n),
                "tolerance": at_image(value_tolerance(alone, dtype, name), n),
            }

        return locate

    def check_grads(self, actual: dict, expected: dict, what: str, *, mask=None, dtype=None):
        """Raise for the first output whose gradient differs (where ``mask``), at its worst element."""
        dtype = dtype or self.impl.dtype
        for name in OUTPUT_NAMES:
            if name not in actual or name not in expected:
                continue
            tolerance, bad = grad_mismatch(self.ex, dtype, actual[name], expected, name, mask)
            index = worst_element(actual[name], expected[name], tolerance, mask)
            if index is not None:
                count = int(bad.sum())
                which = f"{count} elements; shown: the one furthest beyond its tolerance" if count > 1 else "1 element"
                raise self.fail(
                    f"d {name} / d pred differs from {what} at {which}",
                    component=name,
                    term=term_of_element(self.ex, index),
                    expected=float(expected[name][index]),
                    actual=float(actual[name][index]),
                    tolerance=float(tolerance[index]),
                    **element_fields(self.ex.spec, index),
                )
