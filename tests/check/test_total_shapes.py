"""A total of any single-element shape ([], [1], [1, 1]) is a total: backward runs with an upstream
gradient of the total's own shape, so that a loss written as ``total.reshape(1)`` is judged on its
gradients like any other (issue 17, item 5)."""

from __future__ import annotations

import numpy as np
import pytest

from yolov1_loss import LossSpec, YoloV1Loss
from yolov1_loss.conformance.inputs.example import Recipe, build
from yolov1_loss.conformance.suite.failure import ImplementationRaised
from yolov1_loss.conformance.suite.properties import PROPERTIES
from yolov1_loss.conformance.user_loss.implementation import fixed_dialect
from yolov1_loss.reference import loss_and_grad

from .helpers import report, run, write

SPEC = LossSpec(S=3, B=2, C=2)


def _shaped(spec: LossSpec, shape: tuple, computes: LossSpec | None = None):
    """The paper's loss on ``spec``'s grid (or ``computes``), its total reshaped to ``shape``."""
    torch_loss = YoloV1Loss(computes or spec)
    return fixed_dialect(lambda pred, target: torch_loss(pred, target).total.reshape(shape), spec, name=f"total{shape}")


@pytest.mark.parametrize("shape", [(), (1,), (1, 1)])
def test_a_single_element_total_gets_the_oracles_gradient(shape):
    ex = build(Recipe(SPEC, images=2, seed=0))
    got = _shaped(SPEC, shape).evaluate(ex.pred, ex.target, SPEC, grads="total")
    parts, grads = loss_and_grad(ex.pred, ex.target, SPEC)
    assert got.values["total"].shape == ()
    np.testing.assert_allclose(got.values["total"], parts.total, rtol=1e-12)
    np.testing.assert_allclose(got.grads["total"], grads.total, rtol=1e-10, atol=1e-12)


def test_per_image_values_of_a_one_image_batch_stay_per_image():
    spec = SPEC.replace(reduction="none")
    ex = build(Recipe(spec, images=1, seed=1))
    got = _shaped(spec, (1,)).evaluate(ex.pred, ex.target, spec, grads="total", upstream=np.array([2.0]))
    parts, grads = loss_and_grad(ex.pred, ex.target, spec)
    assert got.values["total"].shape == (1,)
    np.testing.assert_allclose(got.grads["total"], 2.0 * grads.total, rtol=1e-10, atol=1e-12)


def test_an_iou_gradient_difference_in_a_total_of_shape_1_is_caught_by_a_gradient_property():
    # The IoU target's gradient flows into the box, where the paper detaches it.
    impl = _shaped(SPEC, (1,), computes=SPEC.replace(iou_grad="through"))
    with pytest.raises(AssertionError) as raised:
        PROPERTIES["gradients_match_oracle"].check(impl, build(Recipe(SPEC, images=2, seed=0)))
    assert not isinstance(raised.value, ImplementationRaised), raised.value  # backward ran
    assert "d total / d pred differs from the oracle's" in raised.value.message


def test_a_conforming_loss_with_a_total_of_shape_1_conforms_on_its_gradients_too(tmp_path):
    source = """
        from yolov1_loss import YoloV1Loss
        _paper = YoloV1Loss()

        def loss(pred, target):
            return _paper(pred, target).total.reshape(1)
    """
    impl = write(tmp_path, "losses.py", source)
    out = tmp_path / "r.json"
    result = run("check", "--in-process", f"{impl}:loss", "--max-examples", 3, "--json", out)
    assert result.stdout.splitlines()[1] == "verdict: CONFORMS", result.stdout
    assert result.returncode == 0
    found = report(out)
    assert found["properties"]["gradients_match_oracle"] == "passed"
    assert found["grad_match"] is True
