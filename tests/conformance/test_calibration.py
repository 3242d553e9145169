"""Calibration of the suite's tolerances (conformance.suite.tolerances.RTOL, conformance.suite.finite_difference).

Correct implementations must sit far inside them: a correct torch loss written independently
of the oracle, and the project's torch_impl, against the oracle (in float64, and in float32 on
inputs rounded to float32); and the oracle's exact gradient against central differences. Each
test measures the worst error as a fraction of its tolerance over the hard recipes and a set of
random dialects, and asserts a margin (the tolerance is at least 30 times the worst error seen;
10 times for central differences, whose error is itself an estimate). Measured when set: values
and gradients within ~1e-4 of the tolerance in float64 and ~2e-2 in float32; central
differences ~2e-4.
"""

from __future__ import annotations

import numpy as np
import pytest

from yolov1_loss import reference
from yolov1_loss.conformance.inputs.example import Recipe, build
from yolov1_loss.conformance.inputs.strategies import CELL_CASES, LOSS_SCALES, WEIGHT_VALUES, hard_recipes
from yolov1_loss.conformance.mutants import correct_torch_loss
from yolov1_loss.conformance.suite import finite_difference as fd
from yolov1_loss.conformance.suite.comparison import grad_size
from yolov1_loss.conformance.suite.tolerances import (
    comparable_cells,
    differs,
    grad_tolerance,
    smooth_cells,
    value_tolerance,
)
from yolov1_loss.conformance.user_loss.implementation import oracle, torch_impl
from yolov1_loss.reference.spec import CHOICES, WEIGHTS, LossSpec


def _random_recipe(rng) -> Recipe:
    knobs = {name: str(rng.choice(values)) for name, values in CHOICES.items()}
    knobs.update({w: float(rng.choice(WEIGHT_VALUES)) for w in WEIGHTS}, loss_scale=float(rng.choice(LOSS_SCALES)))
    spec = LossSpec(int(rng.integers(1, 10)), int(rng.integers(1, 5)), int(rng.integers(1, 26)), **knobs)
    cases = tuple(str(case) for case in rng.choice(CELL_CASES, size=3))
    occupancy, magnitude = str(rng.choice(["mixed", "full"])), float(rng.choice([1.0, 1024.0]))
    return Recipe(spec, int(rng.integers(1, 5)), occupancy, cases, magnitude, int(rng.integers(2**31)))


RNG = np.random.default_rng(2024)
EXAMPLES = [build(r) for r in hard_recipes() + [_random_recipe(RNG) for _ in range(25)]]


def _fraction(actual, expected, tolerance) -> float:
    """The largest |actual − expected| / tolerance, counting equal values (NaN and inf too) as 0."""
    actual, expected = np.broadcast_arrays(np.asarray(actual, float), np.asarray(expected, float))
    tolerance = np.broadcast_to(tolerance, actual.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.abs(actual - expected) / tolerance
    return float(np.where(differs(actual, expected, 0.0), np.nan_to_num(ratio, nan=np.inf), 0.0).max(initial=0.0))


def _worst(impl, dtype: str) -> tuple[float, float]:
    """(values, gradients): the worst error as a fraction of the tolerance, over EXAMPLES."""
    impl = impl.with_dtype(dtype)
    worst_values = worst_grads = 0.0
    for example in EXAMPLES:
        ex = example.rounded(dtype)
        got = impl.evaluate(ex.pred, ex.target, ex.spec, grads="all")
        parts, grads = reference.loss_and_grad(ex.pred, ex.target, ex.spec)
        comparable = comparable_cells(ex, dtype, impl.project)
        mask = True if comparable is None else comparable[..., None]
        for name, value in got.values.items():
            worst_values = max(worst_values, _fraction(value, getattr(parts, name), value_tolerance(ex, dtype, name)))
            size = grad_size(grads._asdict(), ex.spec, name)
            tolerance = np.where(mask, grad_tolerance(ex, dtype, name, size), np.inf)
            worst_grads = max(worst_grads, _fraction(got.grads[name], getattr(grads, name), tolerance))
    return worst_values, worst_grads


CORRECT = [correct_torch_loss(), torch_impl("autograd"), torch_impl("fused")]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("impl", CORRECT, ids=lambda impl: impl.name)
def test_correct_implementations_sit_far_inside_the_tolerances(impl, dtype):
    worst_values, worst_grads = _worst(impl, dtype)
    assert worst_values <= 1 / 30 and worst_grads <= 1 / 30, (worst_values, worst_grads)


def test_central_differences_of_the_oracle_sit_inside_their_tolerance():
    impl, worst = oracle(), 0.0
    for ex in EXAMPLES:
        grads = impl.evaluate(ex.pred, ex.target, ex.spec, grads="all").grads
        u = fd.direction(ex, smooth_cells(ex, fd.MARGIN))
        for name in grads:
            analytic, central, tolerance = fd.mismatch(impl, ex, grads, name, fd.without_detached_boxes(ex, u, name))
            worst = max(worst, _fraction(central, analytic, tolerance))
    assert worst <= 1 / 10, worst
