"""The oracle check that gates timing: it passes the right losses and flags wrong values and wrong gradients."""

from __future__ import annotations

import pytest
import torch

from yolov1_loss.benchmarks.contenders import NAIVE, REFERENCE, compiled, disagreement, steps, user_contender
from yolov1_loss.benchmarks.inputs import make_batch
from yolov1_loss.benchmarks.naive import naive_loss
from yolov1_loss.reference import LossSpec

SPEC = LossSpec.preset("ml_collection", S=4, B=2, C=3)


class GradientTimesThree(torch.autograd.Function):
    """The right forward, a backward three times too large: a gradient-only bug."""

    @staticmethod
    def forward(ctx, total):
        return total.clone()

    @staticmethod
    def backward(ctx, grad):
        return 3 * grad


def naive(pred, target):
    return naive_loss(pred, target, SPEC)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_the_naive_baseline_agrees_in_every_timed_dtype(dtype):
    pred, target = make_batch(SPEC, 4, dtype=dtype)
    assert disagreement(NAIVE, NAIVE.build(SPEC), pred, target, SPEC) is None


def test_the_oracle_agrees_with_itself():
    pred, target = make_batch(SPEC, 4)
    assert disagreement(REFERENCE, REFERENCE.build(SPEC), pred, target, SPEC) is None


def test_a_compiled_contender_names_a_backend_other_than_inductor():
    # Their agreement with the oracle is asserted by the benchmark suite (benchmarks/), which builds them.
    assert compiled(NAIVE).name == "torch.compile(naive)"
    assert compiled(NAIVE, backend="aot_eager").name == "torch.compile(naive)[aot_eager]"


def test_a_wrong_weight_is_flagged_on_the_total():
    wrong = user_contender("wrong", lambda p, t: naive_loss(p, t, SPEC.replace(lambda_noobj=1.0)))
    pred, target = make_batch(SPEC, 4)
    assert disagreement(wrong, wrong.build(SPEC), pred, target, SPEC).startswith("total ")


def test_a_gradient_only_bug_is_flagged_with_the_entry():
    wrong = user_contender("grad bug", lambda p, t: GradientTimesThree.apply(naive_loss(p, t, SPEC)))
    pred, target = make_batch(SPEC, 4)
    message = disagreement(wrong, wrong.build(SPEC), pred, target, SPEC)
    assert message.startswith("d total / d pred[")


def test_a_loss_that_returns_no_scalar_is_refused():
    wrong = user_contender("per image", lambda p, t: (p - p).sum(dim=(1, 2, 3)))
    pred, target = make_batch(SPEC, 4)
    with pytest.raises(ValueError, match="one-element tensor"):
        disagreement(wrong, wrong.build(SPEC), pred, target, SPEC)


def test_backward_steps_run_the_forward_in_setup_and_start_from_no_gradient():
    calls = []
    contender = user_contender("counted", lambda p, t: calls.append("forward") or naive(p, t))
    pred, target = make_batch(SPEC, 2)
    step, setup = steps(contender, contender.build(SPEC), pred, target, SPEC, "backward")
    args = setup()
    assert calls == ["forward"]
    step(*args)
    assert calls == ["forward"]  # the timed part is the backward alone


def test_the_oracle_has_no_separate_backward_and_no_bfloat16():
    assert REFERENCE.refuses(SPEC, "cpu", torch.float32, "backward")
    assert REFERENCE.refuses(SPEC, "cpu", torch.bfloat16, "forward")
    assert REFERENCE.refuses(SPEC, "cpu", torch.float32, "forward+backward") is None


def test_the_naive_baseline_refuses_other_dialects():
    assert "only the 'ml_collection' dialect" in NAIVE.refuses(
        LossSpec.preset("paper"), "cpu", torch.float32, "forward"
    )
