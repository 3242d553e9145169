"""The hand-derived gradient against central finite differences, in float64.

A central difference with step h has truncation error O(h² L''') and rounding error about
ε·|L|/h (ε = 2.2e-16); with h = 1e-6 relative that is ~1e-10·|L| per coordinate. The tolerance,
1e-6 relative plus 1e-7·max(1, |L|) absolute, leaves two to three orders of magnitude of
headroom over that, while a wrong derivation is off by O(1). Points are drawn a margin of 1e-3
from every kink (reference.kinks), so the loss is smooth within the step.
"""

from __future__ import annotations

import numpy as np
import pytest

from yolov1_loss.reference import COMPONENTS, LossSpec, loss, loss_and_grad

from .inputs import preset_specs, random_spec, smooth_inputs

STEP = 1e-6


def central_difference(f, x: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """d f / d x[k] for each flat index k in ``coords``, by central differences; ``f`` returns a
    vector (every component at once), so the result is (len(coords), len(f(x)))."""
    flat = x.reshape(-1)
    out = []
    for k in coords:
        h = STEP * max(1.0, abs(flat[k]))
        up, down = flat.copy(), flat.copy()
        up[k] += h
        down[k] -= h
        out.append((f(up.reshape(x.shape)) - f(down.reshape(x.shape))) / (2 * h))
    return np.array(out).reshape(len(coords), -1)


def box_coords(spec: LossSpec, shape) -> np.ndarray:
    """Flat indices of the predicted x, y, w, h (the coordinates the IoU depends on)."""
    channel = np.arange(shape[-1])
    is_box = (channel >= spec.C) & ((channel - spec.C) % 5 != 0)
    return np.flatnonzero(np.broadcast_to(is_box, shape))


def assert_matches_finite_differences(pred, target, spec: LossSpec, coords=None):
    parts, grads = loss_and_grad(pred, target, spec)
    coords = np.arange(pred.size) if coords is None else coords
    iou_target_detached = spec.conf_target == "iou" and spec.iou_grad == "detached"
    boxes = box_coords(spec, pred.shape)

    def components(x) -> np.ndarray:  # one evaluation gives all four (sums over images under 'none')
        values = loss(x, target, spec)
        return np.array([float(np.sum(getattr(values, name))) for name in COMPONENTS])

    numeric = central_difference(components, pred, coords)
    for c, name in enumerate(COMPONENTS):
        check = np.arange(len(coords))
        if name == "obj" and iou_target_detached:
            # Finite differences see the IoU target move; the detached gradient must not.
            assert np.all(grads.obj.reshape(-1)[boxes] == 0)
            check = np.flatnonzero(~np.isin(coords, boxes))
        analytic = grads._asdict()[name].reshape(-1)[coords[check]]
        scale = max(1.0, abs(float(np.sum(getattr(parts, name)))))
        np.testing.assert_allclose(
            analytic, numeric[check, c], rtol=1e-6, atol=1e-7 * scale, err_msg=f"{name} under {spec}"
        )
    weights = (spec.lambda_coord, spec.lambda_obj, spec.lambda_noobj, spec.lambda_class)
    np.testing.assert_allclose(grads.total, sum(w * g for w, g in zip(weights, grads[:4])), rtol=1e-14, atol=1e-300)


@pytest.mark.parametrize("reduction", ["sum", "mean", "none"])
@pytest.mark.parametrize("spec", preset_specs(S=3, B=2, C=3), ids=lambda s: s.preset_name())
def test_every_preset(spec, reduction):
    spec = spec.replace(reduction=reduction)
    rng = np.random.default_rng(11)
    assert_matches_finite_differences(*smooth_inputs(rng, spec), spec)


@pytest.mark.parametrize("seed", range(40))
def test_random_knob_combinations(seed):
    rng = np.random.default_rng(seed)
    spec = random_spec(rng)
    assert_matches_finite_differences(*smooth_inputs(rng, spec, n_images=int(rng.integers(1, 3))), spec)


@pytest.mark.parametrize("S, B, C", [(1, 1, 1), (1, 3, 2), (2, 1, 5), (4, 4, 1)])
@pytest.mark.parametrize("preset", ["paper", "article", "darknet"])
def test_grid_sizes(S, B, C, preset):
    spec = LossSpec.preset(preset, S=S, B=B, C=C)
    assert_matches_finite_differences(*smooth_inputs(np.random.default_rng(S * 100 + B * 10 + C), spec), spec)


@pytest.mark.parametrize("spec", preset_specs(), ids=lambda s: s.preset_name())
def test_paper_sized_grid_on_a_sample_of_coordinates(spec):
    # S=7, B=2, C=20 has 1470 values per image: check every box value and a sample of the rest.
    rng = np.random.default_rng(3)
    pred, target = smooth_inputs(rng, spec, n_images=1)
    boxes = box_coords(spec, pred.shape)
    others = rng.choice(np.setdiff1d(np.arange(pred.size), boxes), size=60, replace=False)
    assert_matches_finite_differences(pred, target, spec, coords=np.concatenate([boxes[::3], others]))
