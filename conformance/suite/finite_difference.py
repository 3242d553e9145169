"""Directional derivatives: an implementation's gradient against central differences of its own values.

Along a direction u over the cells away from kinks, ⟨∇L, u⟩ must equal (L(x + hu) − L(x − hu)) / 2h
up to the difference's own error. A mismatch is traced to one element by bisecting u's support.
"""

from __future__ import annotations

import numpy as np

from yolov1_loss.conformance.inputs.example import Example
from yolov1_loss.conformance.suite.tolerances import bisect, element_fields
from yolov1_loss.conformance.user_loss.implementation import Implementation

# The step, relative to 1 + the cell's largest input, and the margin from kinks (relative
# likewise) a cell needs to take part: far more than the step times any slope of the kink
# quantities (IoUs, edges, sizes, distances) in these examples.
STEP = 1e-6
MARGIN = 1e-3
# The central difference's own error: truncation (step², relative to the directional
# derivative's terms) and rounding (ε·|L|/step). Calibrated on the oracle, whose gradient is
# exact: see tests/conformance/test_calibration.py.
RTOL = 1e-5
ROUNDING = 1e-13


def direction(ex: Example, support: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random direction over ``support`` (N, S, S) cells, each element scaled
    by 1 + its cell's largest input."""
    rng = np.random.default_rng(0)
    scale = 1.0 + np.maximum(np.abs(ex.pred).max(axis=-1), np.abs(ex.target).max(axis=-1))
    return rng.standard_normal(ex.pred.shape) * (scale * support)[..., None]


def without_detached_boxes(ex: Example, u: np.ndarray, name: str) -> np.ndarray:
    """``u`` for output ``name``. Where the IoU target is detached, the gradient of obj (and so of
    the total) deliberately ignores how c* = IoU moves with the box: there the direction leaves
    the object cells' boxes alone."""
    spec = ex.spec
    if name not in ("obj", "total") or spec.conf_target != "iou" or spec.iou_grad != "detached":
        return u
    boxes = u[..., spec.C :].reshape(*u.shape[:3], spec.B, 5).copy()
    boxes[..., 1:] *= ~ex.has_object[..., None, None]
    return np.concatenate([u[..., : spec.C], boxes.reshape(*u.shape[:3], 5 * spec.B)], axis=-1)


def mismatch(impl: Implementation, ex: Example, grads: dict, name: str, u: np.ndarray) -> tuple:
    """(⟨∇name, u⟩, the central difference of name along u, the tolerance between them)."""
    values = [impl.evaluate(ex.pred + sign * STEP * u, ex.target, ex.spec).values[name].sum() for sign in (1.0, -1.0)]
    with np.errstate(invalid="ignore"):  # a NaN or infinite gradient at a kink is off the support
        terms = np.where(u != 0, grads[name] * u, 0.0)
    analytic = float(terms.sum())
    central = float((values[0] - values[1]) / (2 * STEP))
    tolerance = RTOL * float(np.abs(terms).sum()) + ROUNDING * (abs(values[0]) + abs(values[1])) / STEP
    return analytic, central, tolerance


def disagrees(impl, ex, grads, name, u) -> bool:
    analytic, central, tolerance = mismatch(impl, ex, grads, name, u)
    return not abs(analytic - central) <= tolerance


def locate(impl: Implementation, ex: Example, grads: dict, name: str, u: np.ndarray):
    """A deferred search for one element whose partial derivative disagrees with its difference."""

    def along(elements: np.ndarray) -> np.ndarray:
        only = np.zeros(u.size)
        only[elements] = u.reshape(-1)[elements]
        return only.reshape(u.shape)

    def search() -> dict:
        element = bisect(np.flatnonzero(u), lambda elements: disagrees(impl, ex, grads, name, along(elements)))
        if element is None:
            return {}
        index = tuple(int(i) for i in np.unravel_index(element, u.shape))
        _, central, tolerance = mismatch(impl, ex, grads, name, along(np.array([element])))
        if not (np.isfinite(central) and np.isfinite(tolerance)):
            return {
                "actual": float(grads[name][index]),
                "note": f"the loss is not finite a step of {STEP:g} away along this element",
                **element_fields(ex.spec, index),
            }
        return {
            "expected": central / u[index],
            "actual": float(grads[name][index]),
            "tolerance": tolerance / abs(u[index]),
            **element_fields(ex.spec, index),
        }

    return search
