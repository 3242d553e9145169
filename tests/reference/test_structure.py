"""Structure of the oracle's answer: per-cell breakdowns, reductions, presets, layouts."""

from __future__ import annotations

import numpy as np
import pytest

from yolov1_loss import reference
from yolov1_loss.reference import COMPONENTS, LAYOUTS, PRESETS, LossSpec, loss, loss_and_grad

from .inputs import random_inputs, random_spec


@pytest.mark.parametrize("seed", range(10))
def test_each_component_is_the_sum_of_its_per_cell_breakdown(seed):
    rng = np.random.default_rng(seed)
    spec = random_spec(rng)
    parts = loss(*random_inputs(rng, spec, n_images=3), spec)
    for name in (*COMPONENTS, "total"):
        cells = getattr(parts.per_cell, name)
        assert cells.shape == (3, spec.S, spec.S)
        summed = cells.sum(axis=(1, 2)) if spec.reduction == "none" else cells.sum()
        np.testing.assert_allclose(getattr(parts, name), summed, rtol=1e-13)


def test_reductions_agree_with_one_another():
    rng = np.random.default_rng(5)
    spec = LossSpec.preset("paper", S=3)
    pred, target = random_inputs(rng, spec, n_images=4)
    per_image, grad_none = loss_and_grad(pred, target, spec.replace(reduction="none"))
    summed, grad_sum = loss_and_grad(pred, target, spec)
    mean, grad_mean = loss_and_grad(pred, target, spec.replace(reduction="mean"))
    for name in (*COMPONENTS, "total"):
        assert getattr(per_image, name).shape == (4,)
        assert getattr(summed, name) == pytest.approx(getattr(per_image, name).sum(), rel=1e-13)
        assert getattr(mean, name) == pytest.approx(getattr(summed, name) / 4, rel=1e-13)
    np.testing.assert_array_equal(grad_none.total, grad_sum.total)
    np.testing.assert_allclose(grad_mean.total, grad_sum.total / 4, rtol=1e-15)


def test_loss_scale_and_weights():
    rng = np.random.default_rng(6)
    spec = LossSpec.preset("article", S=3)
    pred, target = random_inputs(rng, spec)
    base = loss(pred, target, spec)
    scaled = loss(pred, target, spec.replace(loss_scale=0.5))
    for name in (*COMPONENTS, "total"):
        assert getattr(scaled, name) == pytest.approx(0.5 * getattr(base, name), rel=1e-14)
    weights = dict(lambda_coord=5.0, lambda_obj=1.0, lambda_noobj=0.5, lambda_class=1.0)
    expected = sum(w * getattr(base, n) for w, n in zip(weights.values(), COMPONENTS))
    assert base.total == pytest.approx(expected, rel=1e-14)


def test_presets_hold_the_spec_table():
    table = {
        "paper": ("predictor", "image", "sqrt_output", "iou", "detached", "max_iou", 0.0, "sum", 1.0),
        "darknet": ("predictor", "image", "sqrt_output", "iou", "detached", "max_iou_else_min_rmse", 0.0, "sum", 0.5),
        "article": ("cell", "raw", "signed_sqrt", "iou", "through", "max_iou", 1e-6, "sum", 1.0),
        "ml_collection": ("cell", "raw", "signed_sqrt", "one", "detached", "max_iou", 1e-6, "sum", 1.0),
        "motokimura": ("cell", "image", "sqrt", "iou", "detached", "max_iou", 0.0, "mean", 1.0),
    }
    fields = (
        "noobj_scope",
        "iou_frame",
        "wh_mode",
        "conf_target",
        "iou_grad",
        "responsible",
        "iou_eps",
        "reduction",
        "loss_scale",
    )
    assert set(PRESETS) == set(table)
    for name, row in table.items():
        spec = LossSpec.preset(name)
        assert tuple(getattr(spec, f) for f in fields) == row, name
        assert spec.signed_sqrt_eps == ("inside" if name == "ml_collection" else "outside")
        assert (spec.lambda_coord, spec.lambda_obj, spec.lambda_noobj, spec.lambda_class) == (5, 1, 0.5, 1)
        assert (spec.S, spec.B, spec.C) == (7, 2, 20)
        assert spec.preset_name() == name
    assert LossSpec() == LossSpec.preset("paper")
    assert LossSpec.preset("paper", lambda_coord=4).preset_name() is None


def test_noobj_scope_predictor_charges_the_non_responsible_predictors():
    spec = LossSpec(S=1, B=2, C=1, iou_frame="raw", wh_mode="linear")
    pred = np.array([0.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.75, 3.0, 3.0, 0.25, 0.25]).reshape(1, 1, 1, -1)
    target = np.array([1.0, 1.0, 0.5, 0.5, 0.25, 0.25]).reshape(1, 1, 1, -1)
    assert loss(pred, target, spec).noobj == 0.75**2
    assert loss(pred, target, spec.replace(noobj_scope="cell")).noobj == 0.0


def test_noobj_scope_own_weight_charges_the_non_responsible_predictors_their_own_weight():
    # Predictor 0 is the target's box (responsible); predictor 1, far off, has confidence 0.75.
    # Public code's dialect: it pays λ_noobj_object · 0.75² with λ_noobj_object = 1, while the
    # empty cells pay λ_noobj = 0.5 (here there are none).
    spec = LossSpec(S=1, B=2, C=1, iou_frame="raw", wh_mode="linear", noobj_scope="own_weight", lambda_noobj_object=1.0)
    pred = np.array([0.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.75, 3.0, 3.0, 0.25, 0.25]).reshape(1, 1, 1, -1)
    target = np.array([1.0, 1.0, 0.5, 0.5, 0.25, 0.25]).reshape(1, 1, 1, -1)
    parts, grads = loss_and_grad(pred, target, spec.replace(lambda_coord=0, lambda_obj=0, lambda_class=0))
    assert parts.total == 0.75**2  # λ_noobj_object · ĉ²
    assert parts.noobj == 0.75**2 / 0.5  # the component counts it relative to λ_noobj
    assert grads.total[0, 0, 0, 6] == 2 * 0.75  # d(1 · ĉ²)/dĉ
    with pytest.raises(ValueError, match="lambda_noobj must not be 0 under noobj_scope='own_weight'"):
        spec.replace(lambda_noobj=0)


def test_clamped_sqrt_takes_the_root_of_max_of_size_and_eps():
    # One predictor with w = −0.25 (clamped to ε) and h = 0.36 (above it), target (w, h) = (0.25, 0.04).
    eps = 1e-6
    spec = LossSpec(S=1, B=1, C=1, iou_frame="raw", wh_mode="clamped_sqrt", lambda_coord=1.0)
    pred = np.array([0.0, 1.0, 0.5, 0.5, -0.25, 0.36]).reshape(1, 1, 1, -1)
    target = np.array([0.0, 1.0, 0.5, 0.5, 0.25, 0.04]).reshape(1, 1, 1, -1)
    parts, grads = loss_and_grad(pred, target, spec)
    assert parts.coord == pytest.approx((0.5 - np.sqrt(eps)) ** 2 + (0.2 - 0.6) ** 2, rel=1e-15)
    assert grads.coord[0, 0, 0, 4] == 0.0  # below ε the clamp holds g at √ε
    assert grads.coord[0, 0, 0, 5] == pytest.approx(-2 * (0.2 - 0.6) * 0.5 / 0.6, rel=1e-15)
    # A target under ε is clamped too; sqrt refuses the negative prediction clamped_sqrt accepts.
    target[0, 0, 0, 5] = 0.0
    assert loss(pred, target, spec).coord == pytest.approx((0.5 - np.sqrt(eps)) ** 2 + (np.sqrt(eps) - 0.6) ** 2)
    with pytest.raises(ValueError, match="must be >= 0 under wh_mode='sqrt'"):
        loss(pred, target, spec.replace(wh_mode="sqrt"))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("S, B, C", [(7, 2, 20), (1, 1, 1), (3, 3, 2)])
def test_layout_round_trips(layout, S, B, C):
    rng = np.random.default_rng(0)
    pred = rng.normal(size=(2, S, S, C + 5 * B))
    target = rng.normal(size=(2, S, S, C + 5))
    moved = reference.pred_from_canonical(pred, layout, S, B, C)
    np.testing.assert_array_equal(reference.pred_to_canonical(moved, layout, S, B, C), pred)
    moved_target = reference.target_from_canonical(target, layout, S, B, C)
    np.testing.assert_array_equal(reference.target_to_canonical(moved_target, layout, S, B, C), target)


def test_layouts_put_each_value_where_the_spec_says():
    S, B, C = 2, 2, 3
    pred = np.zeros((1, S, S, C + 5 * B))
    pred[0, 1, 0, 2] = 1.0  # class 2 of cell (1, 0)
    pred[0, 1, 0, C + 5 + 3] = 2.0  # predictor 1's w
    pred[0, 1, 0, C + 5] = 3.0  # predictor 1's confidence
    boxes_first = reference.pred_from_canonical(pred, "boxes-first", S, B, C)
    assert boxes_first[0, 1, 0, 5 * B + 2] == 1.0
    assert boxes_first[0, 1, 0, 5 + 2] == 2.0
    assert boxes_first[0, 1, 0, 5 + 4] == 3.0
    conf_last = reference.pred_from_canonical(pred, "classes-first-conf-last", S, B, C)
    assert conf_last[0, 1, 0, 2] == 1.0  # the classes where they were
    assert conf_last[0, 1, 0, C + 5 + 2] == 2.0  # predictor 1's (x, y, w, h, c): w third
    assert conf_last[0, 1, 0, C + 5 + 4] == 3.0  # and the confidence last
    darknet = reference.pred_from_canonical(pred, "darknet", S, B, C)
    cell = 1 * S + 0
    assert darknet.shape == (1, S * S * (C + 5 * B))
    assert darknet[0, cell * C + 2] == 1.0
    assert darknet[0, S * S * C + cell * B + 1] == 3.0
    assert darknet[0, S * S * (C + B) + (cell * B + 1) * 4 + 2] == 2.0

    target = np.zeros((1, S, S, C + 5))
    target[0, 1, 0, C:] = [1, 0.1, 0.2, 0.3, 0.4]
    assert list(reference.target_from_canonical(target, "darknet", S, B, C)[0, cell * (C + 5) :][: C + 5]) == [
        1,
        0,
        0,
        0,
        0.1,
        0.2,
        0.3,
        0.4,
    ]
    slots = reference.target_from_canonical(target, "boxes-first", S, B, C)[0, 1, 0]
    assert list(slots[:10]) == [0.1, 0.2, 0.3, 0.4, 1] * 2
    conf_last_target = reference.target_from_canonical(target, "classes-first-conf-last", S, B, C)[0, 1, 0]
    assert list(conf_last_target[C:]) == [0.1, 0.2, 0.3, 0.4, 1]


def test_boxes_first_target_slots_must_agree():
    S, B, C = 2, 2, 1
    target = reference.target_from_canonical(np.ones((1, S, S, C + 5)), "boxes-first", S, B, C).copy()
    target[0, 1, 1, 5 + 2] = 0.5
    with pytest.raises(ValueError, match=r"boxes-first target\[0, 1, 1\]: box slot 1 differs from slot 0"):
        reference.target_to_canonical(target, "boxes-first", S, B, C)


def test_layouts_work_on_torch_tensors():
    import torch

    pred = torch.arange(2 * 3 * 3 * 12, dtype=torch.float64).reshape(2, 3, 3, 12)
    moved = reference.pred_from_canonical(pred, "darknet", 3, 2, 2)
    assert isinstance(moved, torch.Tensor)
    assert torch.equal(reference.pred_to_canonical(moved, "darknet", 3, 2, 2), pred)


def test_unknown_layout():
    with pytest.raises(ValueError, match="unknown layout 'yolo'"):
        reference.pred_to_canonical(np.zeros((1, 30)), "yolo", 1, 2, 20)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layouts_of_an_empty_batch(layout):
    S, B, C = 3, 2, 4
    pred = reference.pred_from_canonical(np.zeros((0, S, S, C + 5 * B)), layout, S, B, C)
    target = reference.target_from_canonical(np.zeros((0, S, S, C + 5)), layout, S, B, C)
    assert pred.shape[0] == 0 and target.shape[0] == 0
    assert reference.pred_to_canonical(pred, layout, S, B, C).shape == (0, S, S, C + 5 * B)
    assert reference.target_to_canonical(target, layout, S, B, C).shape == (0, S, S, C + 5)


def test_the_weights_come_in_the_order_of_their_names():
    # weights() spells its four fields out (dynamo traces that; the fused path reads it per call),
    # so it is held here to WEIGHTS, the one list of their names and order.
    from yolov1_loss.reference.spec import WEIGHTS

    spec = LossSpec(**{name: float(k + 2) for k, name in enumerate(WEIGHTS)})
    assert spec.weights() == (2.0, 3.0, 4.0, 5.0)
