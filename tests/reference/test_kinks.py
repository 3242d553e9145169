"""The documented conventions at kinks (docs/spec.md, "Gradients"), pinned with hand-computed values.

Each case uses dyadic numbers (exact in binary floating point) so that the tie really is a tie.
One object cell, S = 1, C = 1, target box (0.5, 0.5, 0.25, 0.25) in the raw frame.
"""

from __future__ import annotations

import numpy as np
import pytest

from yolov1_loss.reference import LossSpec, loss, loss_and_grad

TARGET_BOX = (0.5, 0.5, 0.25, 0.25)
BASE = dict(S=1, C=1, iou_frame="raw", wh_mode="linear", noobj_scope="predictor", conf_target="iou", iou_grad="through")


def one_cell(boxes, confidences, spec, target_box=TARGET_BOX):
    """pred (1, 1, 1, 1 + 5B) with class score 0, target with an object of class 0."""
    cell = [0.0]
    for box, c in zip(boxes, confidences):
        cell += [c, *box]
    pred = np.array(cell, dtype=float).reshape(1, 1, 1, -1)
    target = np.array([1.0, 1.0, *target_box]).reshape(1, 1, 1, -1)
    return pred, target


def box_grad(grads, b):
    """(d/dc, d/dx, d/dy, d/dw, d/dh) of predictor b, from a (1, 1, 1, 1 + 5B) gradient."""
    return grads.reshape(-1)[1 + 5 * b : 6 + 5 * b]


def test_equal_predictors_the_lowest_index_is_responsible():
    spec = LossSpec(B=2, **BASE)
    box = (0.5, 0.5, 0.5, 0.5)
    _, grads = loss_and_grad(*one_cell([box, box], [0.75, 0.25], spec), spec)
    # Predictor 0 answers for coord and obj; predictor 1 pays noobj only: d(ĉ_1²)/dĉ_1 = 0.5.
    assert np.any(box_grad(grads.coord, 0)[1:] != 0)
    assert np.all(box_grad(grads.coord, 1) == 0)
    assert np.all(box_grad(grads.obj, 1) == 0)
    assert box_grad(grads.noobj, 1)[0] == 0.5
    assert box_grad(grads.noobj, 0)[0] == 0


def test_touching_boxes_the_clamp_passes_the_gradient():
    # Predictor's right edge 0.375 meets the target's left edge 0.375: overlap width 0, height 0.25.
    spec = LossSpec(B=1, iou_eps=0.0, **BASE)
    c = 0.5
    parts, grads = loss_and_grad(*one_cell([(0.25, 0.5, 0.25, 0.25)], [c], spec), spec)
    union = 0.25 * 0.25 * 2
    assert parts.obj == c**2  # IoU = 0
    # The right edge is the min (1), the left edge not the max (0): d overlap / dx = 1, so
    # d IoU / dx = height / union and d IoU / dw = (1/2) height / union.
    d_iou = np.array([0.25 / union, 0.0, 0.5 * 0.25 / union, 0.0])
    np.testing.assert_allclose(box_grad(grads.obj, 0)[1:], 2 * (0 - c) * d_iou, rtol=1e-15)


def test_equal_edges_split_the_gradient_half_and_half():
    # Prediction = target: every edge ties, so d overlap / dx = 1/2 - 1/2 = 0 and
    # d overlap / dw = (1/2 + 1/2) / 2 = 1/2.
    eps = 1e-6
    spec = LossSpec(B=1, iou_eps=eps, **BASE)
    c = 0.5
    parts, grads = loss_and_grad(*one_cell([TARGET_BOX], [c], spec), spec)
    side = 0.25
    inter, union = side * side, side * side + eps
    iou = inter / union
    assert parts.obj == pytest.approx((iou - c) ** 2, rel=1e-15)
    # d IoU / dw = d inter/dw (union + inter)/union² − d area/dw · inter/union², d inter/dw = side/2.
    d_w = (side / 2) * (union + inter) / union**2 - side * inter / union**2
    expected = 2 * (iou - c) * np.array([0.0, 0.0, d_w, d_w])
    np.testing.assert_allclose(box_grad(grads.obj, 0)[1:], expected, rtol=1e-12)


def test_zero_size_signed_sqrt_has_zero_slope():
    spec = LossSpec(B=1, **{**BASE, "wh_mode": "signed_sqrt"})
    parts, grads = loss_and_grad(*one_cell([(0.5, 0.5, 0.0, 0.25)], [0.5], spec), spec)
    assert parts.coord == pytest.approx(0.25, abs=1e-5)  # (√0.25 − 0)², g(0) = 0
    assert box_grad(grads.coord, 0)[3] == 0  # g'(0) = 0
    assert box_grad(grads.obj, 0)[4] == 0  # |w h| at w = 0: no area gradient, and no overlap


def test_zero_size_sqrt_has_an_infinite_slope():
    spec = LossSpec(B=1, **{**BASE, "wh_mode": "sqrt"})
    _, grads = loss_and_grad(*one_cell([(0.5, 0.5, 0.0, 0.25)], [0.5], spec), spec)
    # d/dŵ (√w − √ŵ)² = −(√w − √ŵ)/√ŵ → −∞ as ŵ → 0⁺, as IEEE arithmetic and autograd give.
    assert box_grad(grads.coord, 0)[3] == -np.inf


def test_both_ious_zero_the_first_predictor_answers_and_no_iou_gradient_flows():
    spec = LossSpec(B=2, **BASE)
    far = [(2.0, 2.0, 0.25, 0.25), (-1.0, 0.5, 0.25, 0.25)]
    parts, grads = loss_and_grad(*one_cell(far, [0.5, 0.5], spec), spec)
    assert parts.obj == 0.25  # responsible = predictor 0, IoU 0
    # Only coord moves the boxes: −2 (t − p) per coordinate of predictor 0.
    assert np.all(box_grad(grads.obj, 0)[1:] == 0)
    np.testing.assert_allclose(box_grad(grads.coord, 0)[1:], -2 * (np.array(TARGET_BOX) - far[0]))
    assert np.all(box_grad(grads.coord, 1) == 0)


def test_darknet_fallback_takes_the_nearest_box_when_every_iou_is_zero():
    spec = LossSpec.preset("darknet", S=1, C=1, iou_frame="raw", wh_mode="linear")
    far = [(3.0, 3.0, 0.25, 0.25), (-0.5, 0.5, 0.25, 0.25)]  # distances 3.54 and 1.0
    parts = loss(*one_cell(far, [0.0, 0.0], spec), spec)
    assert parts.coord == pytest.approx(0.5 * 1.0)  # loss_scale 0.5 × (x − x̂_1)² = 1
    beyond_cap = [(30.0, 0.5, 0.25, 0.25), (25.0, 0.5, 0.25, 0.25)]  # both distances ≥ 20
    parts = loss(*one_cell(beyond_cap, [0.0, 0.0], spec), spec)
    assert parts.coord == pytest.approx(0.5 * 29.5**2)  # predictor 0


def test_darknet_fallback_ties_go_to_the_lowest_index():
    spec = LossSpec.preset("darknet", S=1, C=1, iou_frame="raw", wh_mode="linear")
    mirrored = [(1.5, 0.5, 0.25, 0.25), (-0.5, 0.5, 0.25, 0.25)]  # both at distance 1
    parts, grads = loss_and_grad(*one_cell(mirrored, [0.0, 0.0], spec), spec)
    assert box_grad(grads.coord, 0)[1] == pytest.approx(0.5 * -2 * (0.5 - 1.5))
    assert np.all(box_grad(grads.coord, 1) == 0)
