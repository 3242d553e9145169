"""At the kinks, both paths and the kernel follow the reference's conventions exactly (docs/spec.md, "Gradients").

One image holds one kink per cell (S = 4, B = 2, C = 1, mostly target box (0.5, 0.5, 0.25, 0.25)),
built from dyadic numbers so that a tie really is a tie (also after the image frame's 1/4): equal predictors, a predictor equal to
the target, touching boxes, zero sizes, every IoU zero (darknet's fallback, its ties and its cap
of 20), a zero union, ε-inside's v = −ε, and an empty cell. Each spec below runs the batch;
infinities and NaN (wh_mode='sqrt' at ŵ = 0) must sit where the reference has them. (One image,
so that the Triton interpreter runs one program per launch.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yolov1_loss import reference
from yolov1_loss.reference import PRESETS, LossSpec

from .helpers import IMPLEMENTATIONS, assert_matches_reference, dtype_rounded, values_and_grads

TARGET = (0.5, 0.5, 0.25, 0.25)
FAR = (2.0, 2.0, 0.25, 0.25)

# (name, predictor 0, predictor 1, confidences, target box or None for an empty cell)
KINKS = [
    ("equal predictors", (0.5, 0.5, 0.5, 0.5), (0.5, 0.5, 0.5, 0.5), (0.75, 0.25), TARGET),
    ("predictor equals target", TARGET, FAR, (0.5, 0.5), TARGET),
    ("touching boxes, both IoUs 0", (0.25, 0.5, 0.25, 0.25), (0.5, 0.25, 0.25, 0.25), (0.5, 0.5), TARGET),
    ("zero predicted sizes", (0.5, 0.5, 0.0, 0.25), (0.5, 0.5, 0.25, 0.0), (0.5, 0.5), TARGET),
    ("every IoU 0", FAR, (-1.0, 0.5, 0.25, 0.25), (0.5, 0.5), TARGET),
    ("fallback distances tie", (1.5, 0.5, 0.25, 0.25), (-0.5, 0.5, 0.25, 0.25), (0.0, 0.0), TARGET),
    ("fallback beyond its cap", (100.0, 0.5, 0.25, 0.25), (90.0, 0.5, 0.25, 0.25), (0.0, 0.0), TARGET),
    ("zero union", (0.5, 0.5, 0.0, 0.25), FAR, (0.5, 0.5), (0.5, 0.5, 0.0, 0.25)),
    ("one shared pair of edges", (0.5, 0.5, 0.25, 0.5), FAR, (0.25, 0.5), TARGET),
    ("empty cell", (0.5, 0.5, 0.5, 0.5), FAR, (0.0, 0.5), None),
]
# v = −ε exactly, where √|v + ε| has its kink (float64 only: in float32 the tie moves).
MINUS_EPS = ("size at minus epsilon", (0.5, 0.5, -1e-6, 0.25), TARGET, (0.5, 0.5), TARGET)
# Sizes at the clamp's ε = 1/64 (the spec below) and under it, where √max(v, ε) switches.
CLAMP = 1 / 64
AT_THE_CLAMP = ("size at the clamp", (0.5, 0.5, CLAMP, 0.25), (0.5, 0.5, -0.25, CLAMP), (0.5, 0.5), TARGET)

BASE = dict(S=4, B=2, C=1)
SPECS = [
    *(LossSpec.preset(name, **BASE) for name in PRESETS),
    LossSpec(**BASE, iou_frame="raw", wh_mode="linear", iou_grad="through", responsible="max_iou_else_min_rmse"),
    LossSpec(**BASE, iou_frame="raw", wh_mode="signed_sqrt", signed_sqrt_eps="inside", iou_grad="through"),
    LossSpec(**BASE, iou_frame="raw", wh_mode="sqrt", iou_grad="through", reduction="none"),
    LossSpec(**BASE, wh_mode="clamped_sqrt", sqrt_clamp_eps=CLAMP, noobj_scope="own_weight", lambda_noobj_object=1.0),
]


def _pred_size(v: float, spec: LossSpec) -> float:
    """A size as the prediction holds it: its square root under 'sqrt_output', where the IoU squares it."""
    return float(np.sign(v) * np.sqrt(abs(v))) if spec.wh_mode == "sqrt_output" else v


def kink_batch(spec: LossSpec, kinks) -> tuple[np.ndarray, np.ndarray]:
    """pred (1, S, S, C + 10) and target (1, S, S, C + 5), kink k in cell k (row-major), class 0
    scored 0.25; the cells left over are empty with zero predictions."""
    pred = np.zeros((1, spec.S * spec.S, spec.pred_channels))
    target = np.zeros((1, spec.S * spec.S, spec.target_channels))
    for k, (_, box0, box1, confidences, target_box) in enumerate(kinks):
        cell = [0.25]
        for (x, y, w, h), c in zip((box0, box1), confidences):
            if spec.wh_mode == "sqrt":  # negative sizes are refused there
                w, h = abs(w), abs(h)
            cell += [c, x, y, _pred_size(w, spec), _pred_size(h, spec)]
        pred[0, k] = cell
        if target_box is not None:
            target[0, k] = [1.0, 1.0, *target_box]
    shape = (1, spec.S, spec.S)
    return pred.reshape(*shape, -1), target.reshape(*shape, -1)


# wh_mode='sqrt' at ŵ = 0 divides by zero on purpose; the interpreter's NumPy says so.
QUIET = pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
SPEC_IDS = dict(ids=lambda s: s.preset_name() or f"{s.wh_mode}-{s.responsible}")


@QUIET
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("spec", SPECS, **SPEC_IDS)
def test_kinks_float64(impl, spec):
    pred, target = kink_batch(spec, [*KINKS, MINUS_EPS, AT_THE_CLAMP])
    ref_parts, ref_grads = reference.loss_and_grad(pred, target, spec)
    values, grads = values_and_grads(impl, pred, target, spec)
    assert_matches_reference(values, grads, ref_parts, ref_grads, tol=1e-10)


@QUIET
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("spec", SPECS, **SPEC_IDS)
def test_kinks_float32(impl, spec):
    # Every number but ε is exact in float32, so the ties stay ties; float32 rounding of the
    # rest is bounded as in test_float32 (64 ε₃₂ relative, the floor 1 for values near 0).
    pred, target = kink_batch(spec, [*KINKS, AT_THE_CLAMP])
    ref_parts, ref_grads = reference.loss_and_grad(dtype_rounded(pred, torch.float32), target, spec)
    values, grads = values_and_grads(impl, pred, target, spec, dtype=torch.float32)
    assert_matches_reference(values, grads, ref_parts, ref_grads, tol=64 * np.finfo(np.float32).eps, floor=1.0)


def test_each_kink_is_a_kink():
    """The cells are what they claim: the reference's kink margin of each object cell is 0."""
    from yolov1_loss.reference.kinks import kink_margin

    for spec in SPECS:
        one_cell = spec.replace(S=1)
        for kink in KINKS + [MINUS_EPS, AT_THE_CLAMP]:
            name, *_, target_box = kink
            if kink is AT_THE_CLAMP and one_cell.wh_mode != "clamped_sqrt":
                continue  # (a kink of that mode only)
            if target_box is not None and not (kink is MINUS_EPS and one_cell.wh_mode == "sqrt"):
                assert kink_margin(*kink_batch(one_cell, [kink]), one_cell) == 0, (name, spec)
