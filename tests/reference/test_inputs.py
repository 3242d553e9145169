"""Refused inputs (docs/spec.md, "Refused inputs"), the shapes and dtypes accepted, and that inputs stay unchanged."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from yolov1_loss.reference import LossSpec, loss, loss_and_grad

from .inputs import random_inputs

SPEC = LossSpec.preset("article", S=4, B=2, C=3)


@pytest.fixture
def inputs():
    return random_inputs(np.random.default_rng(0), SPEC, n_images=2)


def refuses(pred, target, spec, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        loss(pred, target, spec)


def test_wrong_rank(inputs):
    pred, target = inputs
    refuses(pred[0], target, SPEC, "pred: expected shape (N, 4, 4, 13) or (N, 208) for S=4, B=2, C=3, got (4, 4, 13)")


def test_wrong_last_dimension(inputs):
    pred, target = inputs
    refuses(
        pred,
        target[..., :-1],
        SPEC,
        "target: expected shape (N, 4, 4, 8) or (N, 128) for S=4, B=2, C=3, got (2, 4, 4, 7)",
    )
    refuses(pred.reshape(2, -1)[:, :-1], target, SPEC, "got (2, 207)")


def test_batch_sizes_differ(inputs):
    pred, target = inputs
    refuses(pred, target[:1], SPEC, "pred has 2 images but target has 1")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_prediction(inputs, bad):
    pred, target = inputs
    pred[1, 2, 3, 3 + 5 + 4] = bad  # predictor 1's h
    refuses(pred, target, SPEC, f"pred[1, 2, 3]: predictor 1 h is {bad}; inputs must be finite")


def test_non_finite_target(inputs):
    pred, target = inputs
    target[0, 1, 0, 2] = np.nan
    refuses(pred, target, SPEC, "target[0, 1, 0]: class 2 is nan; inputs must be finite")


def test_objectness_not_binary(inputs):
    pred, target = inputs
    target[0, 3, 3, 3] = 0.7
    refuses(pred, target, SPEC, "target[0, 3, 3]: objectness must be 0 or 1, got 0.7")


@pytest.mark.parametrize("wh_mode", ["signed_sqrt", "sqrt_output", "sqrt"])
def test_negative_target_size_under_a_square_root(inputs, wh_mode):
    pred, target = inputs
    spec = SPEC.replace(wh_mode=wh_mode)
    pred[..., 3:] = np.abs(pred[..., 3:])
    target[1, 2, 2, 3] = 1
    target[1, 2, 2, 3 + 3] = -0.25
    refuses(
        pred,
        target,
        spec,
        f"target[1, 2, 2]: w must be >= 0 under wh_mode={wh_mode!r} (its square root is taken), got -0.25",
    )


def test_negative_target_size_is_fine_when_linear_or_in_an_empty_cell(inputs):
    pred, target = inputs
    target[1, 2, 2, 3:] = [1, 0.5, 0.5, 0.3, -0.25]
    loss(pred, target, SPEC.replace(wh_mode="linear"))
    target[1, 2, 2, 3] = 0
    loss(pred, target, SPEC)


def test_negative_predicted_size_under_sqrt(inputs):
    pred, target = inputs
    spec = SPEC.replace(wh_mode="sqrt")
    pred[..., 3:] = np.abs(pred[..., 3:])
    target[0, 1, 2, 3] = 1
    pred[0, 1, 2, 3 + 5 + 3] = -0.5  # predictor 1's w
    refuses(
        pred,
        target,
        spec,
        "pred[0, 1, 2]: predictor 1 w must be >= 0 under wh_mode='sqrt' (its square root is taken), got -0.5",
    )


def test_non_numeric_input(inputs):
    _, target = inputs
    refuses([["a"]], target, SPEC, "pred: cannot be read as an array of real numbers")


@pytest.mark.parametrize("which", ["pred", "target"])
def test_complex_input_is_refused_not_cut_to_its_real_part(inputs, which):
    pred, target = inputs
    given = {"pred": pred, "target": target}
    given[which] = given[which] + 0j  # (NumPy's float64 conversion would drop 0j with only a warning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning on the way to the refusal
        refuses(
            given["pred"], given["target"], SPEC, f"{which}: complex values (dtype complex128); inputs must be real"
        )
    with pytest.raises(ValueError, match=f"^{which}: complex values"):
        loss_and_grad(given["pred"].tolist(), given["target"].tolist(), SPEC)  # nested lists of complex too


@pytest.mark.parametrize(
    "name", ["lambda_coord", "lambda_obj", "lambda_noobj", "lambda_class", "lambda_noobj_object", "loss_scale"]
)
def test_a_negative_weight_or_scale_is_refused_on_every_path(name):
    message = f"LossSpec.{name} must be >= 0, got -0.5"
    with pytest.raises(ValueError, match=re.escape(message)):
        LossSpec(**{name: -0.5})
    with pytest.raises(ValueError, match=re.escape(message)):
        LossSpec.preset("darknet", **{name: -0.5})
    with pytest.raises(ValueError, match=re.escape(message)):
        LossSpec().replace(**{name: -0.5})


@pytest.mark.parametrize("name", ["lambda_coord", "lambda_obj", "lambda_class", "lambda_noobj_object", "loss_scale"])
def test_a_zero_weight_or_scale_is_accepted(name):
    assert getattr(LossSpec(**{name: 0}), name) == 0.0


def test_empty_batch_is_zero_loss_and_empty_gradient():
    for reduction in ("sum", "mean", "none"):
        spec = SPEC.replace(reduction=reduction)
        parts, grads = loss_and_grad(np.zeros((0, 4, 4, 13)), np.zeros((0, 4, 4, 8)), spec)
        expected_shape = (0,) if reduction == "none" else ()
        assert np.shape(parts.total) == expected_shape and np.all(np.asarray(parts.total) == 0)
        assert grads.total.shape == (0, 4, 4, 13)


def test_inputs_are_never_modified(inputs):
    pred, target = inputs
    before = pred.copy(), target.copy()
    loss_and_grad(pred, target, SPEC)
    np.testing.assert_array_equal(pred, before[0])
    np.testing.assert_array_equal(target, before[1])


def test_flat_inputs_give_flat_gradients_and_the_same_values(inputs):
    pred, target = inputs
    parts, grads = loss_and_grad(pred, target, SPEC)
    flat_parts, flat_grads = loss_and_grad(pred.reshape(2, -1), target.reshape(2, -1), SPEC)
    assert flat_parts.total == parts.total
    assert flat_grads.total.shape == (2, 4 * 4 * 13)
    np.testing.assert_array_equal(flat_grads.total, grads.total.reshape(2, -1))


def test_float32_input_is_computed_in_float64(inputs):
    pred, target = inputs
    pred32 = pred.astype(np.float32)
    parts, grads = loss_and_grad(pred32, target, SPEC)
    assert grads.total.dtype == np.float64
    assert parts.total == loss(pred32.astype(np.float64), target, SPEC).total


def test_unknown_knob_value_and_preset():
    with pytest.raises(ValueError, match="LossSpec.reduction must be one of 'sum', 'mean', 'none', got 'avg'"):
        LossSpec(reduction="avg")
    with pytest.raises(ValueError, match="unknown preset 'yolo'; presets are paper, darknet, article"):
        LossSpec.preset("yolo")
    with pytest.raises(ValueError, match="unknown LossSpec field"):
        LossSpec.preset("paper", lambda_box=2)
    with pytest.raises(ValueError, match="LossSpec.S must be an integer >= 1, got 0"):
        LossSpec(S=0)
    with pytest.raises(ValueError, match="LossSpec.iou_eps must be >= 0"):
        LossSpec(iou_eps=-1e-6)
    with pytest.raises(ValueError, match="LossSpec.loss_scale must be a finite number"):
        LossSpec(loss_scale=float("nan"))


def test_replace_refuses_an_unknown_field():
    with pytest.raises(ValueError, match="unknown LossSpec field.*lambda_box"):
        LossSpec().replace(lambda_box=2)
