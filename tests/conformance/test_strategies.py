"""The strategies and the example builder: valid inputs, and hard cases that are what they claim."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from yolov1_loss.conformance.inputs import strategies
from yolov1_loss.conformance.inputs.example import (
    CELL_CASES,
    Example,
    Frame,
    Recipe,
    build,
    encode_target,
    exact_encoding_exists,
)
from yolov1_loss.conformance.suite import profiles
from yolov1_loss.reference import PRESETS, LossSpec, loss
from yolov1_loss.reference.loss import iou_frame, ious, split_cells
from yolov1_loss.reference.spec import DISTANCE_CAP
from yolov1_loss.reference.validate import check_inputs

CI = settings.get_profile(profiles.CI)  # the suite's own (not Hypothesis's built-in "ci", 100 examples)


def _cells(ex: Example):
    """The object cells' predictor boxes (M, B, 4) and target boxes (M, 4), as stored."""
    C, B = ex.spec.C, ex.spec.B
    boxes = ex.pred[ex.has_object][:, C:].reshape(-1, B, 5)[..., 1:]
    return boxes, ex.target[ex.has_object][:, C + 1 :]


def _one_case(case: str, preset: str = "paper", **grid) -> Example:
    spec = LossSpec.preset(preset, **{"S": 3, "B": 3, "C": 2, **grid})
    return build(Recipe(spec, images=2, occupancy="full", cases=(case,), seed=5))


def _edges(spec, ex, dtype):
    """Frame edges (lo, hi) per axis of predictors (M, B) and targets (M, 1), computed in dtype
    both ways an implementation may scale centres (x·(1/S) and x/S)."""
    boxes, tbox = (a.astype(dtype) for a in _cells(ex))
    out = []
    for scale in (lambda x: x * dtype(1.0 / spec.S), lambda x: x / dtype(spec.S)):
        if spec.iou_frame == "raw":
            scale = lambda x: x  # noqa: E731
        for axis in (0, 1):
            size = boxes[..., 2 + axis] ** 2 if spec.wh_mode == "sqrt_output" else boxes[..., 2 + axis]
            p = scale(boxes[..., axis]), size
            t = scale(tbox[:, None, axis]), tbox[:, None, 2 + axis]
            out.append(((p[0] - p[1] / 2, p[0] + p[1] / 2), (t[0] - t[1] / 2, t[0] + t[1] / 2)))
    return out


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("case", CELL_CASES)
def test_every_case_in_every_preset_is_accepted_by_the_oracle(preset, case):
    ex = _one_case(case, preset)
    check_inputs(ex.pred, ex.target, ex.spec)  # raises on refused inputs
    assert ex.has_object.all()


def test_tie_gives_identical_predictor_boxes():
    boxes, _ = _cells(_one_case("tie"))
    assert (boxes == boxes[:, :1]).all()


@pytest.mark.parametrize("preset", ["paper", "article", "motokimura"])
def test_exact_puts_the_encoded_target_in_one_predictor(preset):
    ex = _one_case("exact", preset)
    boxes, tbox = _cells(ex)
    frame = Frame(ex.spec)
    encoded = np.concatenate([tbox[:, :2], frame.stored_size(tbox[:, 2:])], axis=-1)
    assert ((boxes == encoded[:, None]).all(-1).sum(-1) >= 1).all()


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("S", [3, 7])
def test_touching_edges_meet_exactly_in_float64_and_float32_whichever_way_x_is_scaled(preset, S):
    ex = _one_case("touching", preset, S=S)
    for dtype in (np.float64, np.float32):
        meets = np.zeros(_cells(ex)[0].shape[:2], dtype=bool)
        for (p_lo, p_hi), (t_lo, t_hi) in _edges(ex.spec, ex, dtype):
            meets |= (p_lo == t_hi) | (p_hi == t_lo)
        assert meets.any(axis=-1).all()


def test_nested_predictors_share_the_target_centre_and_sometimes_an_edge():
    ex = _one_case("nested", B=1)
    boxes, tbox = _cells(ex)
    assert (boxes[:, 0, :2] == tbox[:, :2]).all()
    (p_lo, p_hi), (t_lo, t_hi) = _edges(ex.spec, ex, np.float64)[0]
    inside_or_around = ((p_lo >= t_lo) & (p_hi <= t_hi)) | ((p_lo <= t_lo) & (p_hi >= t_hi))
    assert inside_or_around.all()


@pytest.mark.parametrize("case", ["disjoint", "near_cap"])
def test_disjoint_and_near_cap_give_zero_iou_everywhere(case):
    for preset in PRESETS:
        ex = _one_case(case, preset)
        _, cells, _ = split_cells(ex.pred, ex.target, ex.spec)
        assert (ious(cells, ex.spec)[0] == 0).all()


def test_near_cap_distances_straddle_20_and_hit_it_exactly():
    distances = []
    for seed in range(6):
        spec = LossSpec.preset("darknet", S=4, B=4, C=1)
        ex = build(Recipe(spec, images=2, occupancy="full", cases=("near_cap",), seed=seed))
        _, cells, _ = split_cells(ex.pred, ex.target, ex.spec)
        pbox, tbox, _ = iou_frame(cells, ex.spec)
        distances.append(np.linalg.norm(pbox - tbox[:, None], axis=-1).ravel())
    distances = np.concatenate(distances)
    assert (distances >= DISTANCE_CAP - 0.25 - 1e-9).all()
    assert (distances < DISTANCE_CAP).any() and (distances > DISTANCE_CAP).any() and (distances == DISTANCE_CAP).any()


def test_zero_and_negative_sizes_appear_and_respect_what_each_mode_refuses():
    assert (_cells(_one_case("zero_size"))[0][..., 2:] == 0).any()
    assert (_cells(_one_case("negative_size", "article"))[0][..., 2:] < 0).any()
    refused_negative = _one_case("negative_size", "motokimura")  # wh_mode='sqrt'
    assert (_cells(refused_negative)[0][..., 2:] >= 0).all() and (_cells(refused_negative)[0][..., 2:] == 0).any()


def test_the_hard_recipes_meet_every_case_in_every_preset():
    met = {(r.spec.preset_name(), case) for r in strategies.hard_recipes() if r.occupancy == "full" for case in r.cases}
    assert {(p, c) for p in PRESETS for c in CELL_CASES} <= met
    assert any(r.spec.C > 20 for r in strategies.hard_recipes())
    assert any(r.images == 0 for r in strategies.hard_recipes())
    assert any(r.spec.preset_name() is None for r in strategies.hard_recipes())


def test_hard_recipes_for_one_dialect_use_only_it():
    spec = LossSpec.preset("motokimura", S=5, B=1, C=3)
    assert {r.spec for r in strategies.hard_recipes(spec)} == {spec}


@settings(CI)
@given(strategies.examples())
def test_drawn_examples_are_valid_inputs(example):
    check_inputs(example.pred, example.target, example.spec)
    assert example.pred.shape == (example.images, example.spec.S, example.spec.S, example.spec.pred_channels)
    assert np.isfinite(loss(example.pred, example.target, example.spec).total).all()


@settings(CI)
@given(strategies.recipes())
def test_a_recipe_rebuilds_from_its_repr_to_the_same_arrays(recipe):
    again = eval(repr(recipe), {"Recipe": Recipe, "LossSpec": LossSpec})
    assert again == recipe
    assert np.array_equal(build(again).pred, build(recipe).pred)
    assert np.array_equal(build(again).target, build(recipe).target)


def test_hypothesis_prints_an_example_as_the_recipe_that_rebuilds_it():
    # Hypothesis prints every explicit example it runs and every falsifying one; field by field
    # that was a wall of arrays (and a fifth of a check's time).
    from hypothesis.vendor.pretty import pretty

    recipe = Recipe(LossSpec(S=3), images=2, seed=4)
    assert pretty(build(recipe)) == f"build({recipe!r})"


@settings(CI)
@given(strategies.specs(presets=["article"], random_knobs=False, S=7))
def test_specs_can_be_pinned_to_a_preset_and_grid(spec):
    assert spec.preset_name() == "article" and spec.S == 7


@settings(CI)
@given(strategies.knob_combinations())
def test_knob_combinations_make_valid_specs(knobs):
    assert LossSpec(**knobs).knobs() == {**LossSpec().knobs(), **knobs}


@settings(CI)
@given(strategies.examples(specs=strategies.specs().filter(exact_encoding_exists)))
def test_the_exact_encoding_has_zero_oracle_loss(example):
    ex = encode_target(example)
    parts = loss(ex.pred, ex.target, ex.spec)
    assert np.abs(parts.total).max(initial=0) <= 1e-20 * (1 + np.abs(ex.target).max(initial=0) ** 2)
