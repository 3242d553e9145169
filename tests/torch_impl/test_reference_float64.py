"""Both paths (and the Triton kernel) against the reference in float64: values and the gradient
of every component, for every preset and random knob combinations, S, B, C varied.

Tolerance 1e-10 relative to the largest entry of each array: float64 rounding in a few dozen
operations is ~1e-15, so this leaves five orders of magnitude, while any wrong convention or
derivation is off by O(1). The inputs are the reference tests' random draws (not kept away from
kinks: objects in about half the cells, boxes near and far from the target).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from yolov1_loss import reference
from yolov1_loss.reference import PRESETS, LossSpec

from ..reference.inputs import random_inputs, random_spec
from .helpers import IMPLEMENTATIONS, assert_matches_reference, values_and_grads

TOL = 1e-10
GRIDS = [dict(S=1, B=1, C=1), dict(S=2, B=3, C=1), dict(S=3, B=2, C=4)]
PAPER_GRID = dict(S=7, B=2, C=20)


def check(impl, spec: LossSpec, seed: int, n_images: int = 2) -> None:
    pred, target = random_inputs(np.random.default_rng(seed), spec, n_images)
    ref_parts, ref_grads = reference.loss_and_grad(pred, target, spec)
    values, grads = values_and_grads(impl, pred, target, spec)
    assert_matches_reference(values, grads, ref_parts, ref_grads, TOL)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("grid", [*GRIDS, PAPER_GRID], ids=lambda g: "S{S}B{B}C{C}".format(**g))
def test_presets(impl, preset, grid):
    check(impl, LossSpec.preset(preset, **grid), seed=zlib.crc32(f"{preset}{grid}".encode()))


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("seed", range(12))
def test_random_knobs(impl, seed):
    check(impl, random_spec(np.random.default_rng(1000 + seed)), seed)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_several_blocks_per_image(impl):
    # 12 × 12 = 144 cells: more than the kernel's 128-cell block, so partial sums are added.
    spec = LossSpec.preset("darknet", S=12, B=1, C=1)
    check(impl, spec, seed=7, n_images=1)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_no_object_anywhere(impl):
    spec = LossSpec.preset("paper", S=2, B=2, C=3)
    pred, target = random_inputs(np.random.default_rng(3), spec, 2)
    target[..., spec.C] = 0
    ref_parts, ref_grads = reference.loss_and_grad(pred, target, spec)
    values, grads = values_and_grads(impl, pred, target, spec)
    assert_matches_reference(values, grads, ref_parts, ref_grads, TOL)
    assert values["coord"] == 0 and values["noobj"] > 0
