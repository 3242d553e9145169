"""The Implementation adapter: layouts, dtypes, outputs, gradients, upstream weights, strides."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest
import torch
from hypothesis import given, settings

from yolov1_loss import reference
from yolov1_loss.conformance.inputs.example import Recipe, build
from yolov1_loss.conformance.mutants import correct_torch_loss
from yolov1_loss.conformance.mutants.base import TorchLoss
from yolov1_loss.conformance.suite.runner import examples_for
from yolov1_loss.conformance.user_loss.implementation import (
    Implementation,
    ImplementationError,
    fixed_dialect,
    named_outputs,
    oracle,
)
from yolov1_loss.reference import LossSpec

PER_IMAGE = LossSpec.preset("paper", S=3, B=2, C=4, reduction="none")
EXAMPLE = build(Recipe(PER_IMAGE, images=3, cases=("random", "tie"), seed=11))
ONE_IMAGE = build(Recipe(LossSpec(S=3, B=2, C=4), images=1, seed=2))


def _in_layout(layout: str, framework: str) -> Implementation:
    """The oracle (numpy) or the torch base, taking inputs in ``layout``."""

    def to_canonical(pred, target, spec):
        return (
            reference.pred_to_canonical(pred, layout, spec.S, spec.B, spec.C),
            reference.target_to_canonical(target, layout, spec.S, spec.B, spec.C),
        )

    if framework == "numpy":

        def grad(pred, target, spec):
            g = reference.loss_and_grad(*to_canonical(pred, target, spec), spec)[1].total
            return reference.pred_from_canonical(g, layout, spec.S, spec.B, spec.C)

        def loss(pred, target, spec):
            return reference.loss(*to_canonical(pred, target, spec), spec)

        return Implementation(layout, loss, "numpy", layout=layout, grad=grad)
    return Implementation(layout, lambda p, t, s: TorchLoss(s)(*to_canonical(p, t, s)), layout=layout)


@pytest.mark.parametrize("framework", ["numpy", "torch"])
@pytest.mark.parametrize("layout", ["boxes-first", "darknet"])
def test_other_layouts_give_canonical_values_and_gradients(layout, framework):
    ex = EXAMPLE
    parts, grads = reference.loss_and_grad(ex.pred, ex.target, ex.spec)
    got = _in_layout(layout, framework).evaluate(ex.pred, ex.target, ex.spec, grads="total")
    np.testing.assert_allclose(got.values["total"], parts.total, rtol=1e-12)
    np.testing.assert_allclose(got.grads["total"], grads.total, rtol=1e-12, atol=1e-12)


def test_an_empty_batch_converts_in_every_layout():
    empty = EXAMPLE.select_images([])
    for layout in ("boxes-first", "darknet"):
        got = _in_layout(layout, "numpy").evaluate(empty.pred, empty.target, empty.spec, grads="total")
        assert got.values["total"].shape == (0,) and got.grads["total"].shape == empty.pred.shape


def test_float32_implementations_get_float32_tensors():
    seen = []

    def loss(pred, target, spec):
        seen.append((pred.dtype, target.dtype))
        return TorchLoss(spec)(pred, target)

    Implementation("f32", loss, dtype="float32").evaluate(EXAMPLE.pred, EXAMPLE.target, EXAMPLE.spec)
    assert seen == [(torch.float32, torch.float32)]


def test_strided_inputs_are_not_contiguous():
    seen = []

    def loss(pred, target, spec):
        seen.append((pred.is_contiguous(), target.is_contiguous()))
        return pred.sum()

    Implementation("strides", loss).evaluate(ONE_IMAGE.pred, ONE_IMAGE.target, ONE_IMAGE.spec, strided=True)
    assert seen == [(False, False)]


def test_gradients_follow_the_upstream_weights_per_image():
    weights = np.array([2.0, -1.0, 0.5])
    for impl in (oracle(), correct_torch_loss()):
        plain = impl.evaluate(EXAMPLE.pred, EXAMPLE.target, EXAMPLE.spec, grads="total")
        weighted = impl.evaluate(EXAMPLE.pred, EXAMPLE.target, EXAMPLE.spec, grads="total", upstream=weights)
        expected = weights[:, None, None, None] * plain.grads["total"]
        np.testing.assert_allclose(weighted.grads["total"], expected, rtol=1e-12)


def test_all_gradients_are_every_exposed_output():
    got = correct_torch_loss().evaluate(EXAMPLE.pred, EXAMPLE.target, EXAMPLE.spec, grads="all")
    assert set(got.grads) == {"coord", "obj", "noobj", "cls", "total"}
    _, grads = reference.loss_and_grad(EXAMPLE.pred, EXAMPLE.target, EXAMPLE.spec)
    for name, g in got.grads.items():
        np.testing.assert_allclose(g, getattr(grads, name), rtol=1e-10, atol=1e-12)


def test_keep_inputs_shows_in_place_writes():
    def loss(pred, target, spec):
        target.mul_(2.0)
        return pred.sum()

    got = Implementation("writer", loss).evaluate(ONE_IMAGE.pred, ONE_IMAGE.target, ONE_IMAGE.spec, keep_inputs=True)
    np.testing.assert_array_equal(got.inputs_after[1], 2 * ONE_IMAGE.target)
    np.testing.assert_array_equal(got.inputs_after[0], ONE_IMAGE.pred)


Parts = namedtuple("Parts", "coord obj noobj cls total")


@pytest.mark.parametrize(
    ("outputs", "names"),
    [
        (3.0, {"total"}),
        ((1.0, 2.0, 3.0), {"total"}),
        ({"loss": 3.0, "coord": 1.0}, {"total", "coord"}),
        (Parts(1.0, 2.0, 3.0, 4.0, 5.0), {"coord", "obj", "noobj", "cls", "total"}),
    ],
)
def test_named_outputs_accepts_the_usual_return_values(outputs, names):
    assert set(named_outputs(outputs)) == names


def test_named_outputs_refuses_what_is_no_loss():
    with pytest.raises(ImplementationError, match="without 'total'"):
        named_outputs({"value": 1.0})
    with pytest.raises(ImplementationError, match="empty tuple"):
        named_outputs(())


def test_a_per_image_output_must_match_the_reduction():
    impl = Implementation("scalar under none", lambda pred, target, spec: pred.sum())
    with pytest.raises(ImplementationError, match=r"shape \(\), expected \(3,\)"):
        impl.evaluate(EXAMPLE.pred, EXAMPLE.target, EXAMPLE.spec)


FIXED = LossSpec.preset("article", S=2, B=1, C=2)


def test_a_fixed_dialect_ignores_the_spec_it_is_given():
    impl = fixed_dialect(lambda pred, target: TorchLoss(FIXED)(pred, target), FIXED, name="mine")
    assert not impl.configurable
    ex = build(Recipe(FIXED, images=2, seed=4))
    other = FIXED.replace(lambda_class=100.0)
    given_other = impl.evaluate(ex.pred, ex.target, other).values["total"]
    np.testing.assert_array_equal(given_other, impl.evaluate(ex.pred, ex.target, FIXED).values["total"])


@settings(max_examples=10)
@given(examples_for(fixed_dialect(lambda pred, target: 0.0, FIXED, name="mine")))
def test_a_fixed_dialect_is_held_to_its_own_spec(example):
    assert example.spec == FIXED


def test_the_adapter_validates_its_fields():
    with pytest.raises(ValueError, match="dtype"):
        Implementation("x", lambda *a: 0.0, dtype="float16")
    with pytest.raises(ValueError, match="layout"):
        Implementation("x", lambda *a: 0.0, layout="rows-first")
