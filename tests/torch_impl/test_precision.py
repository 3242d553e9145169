"""float32 and the half types against the float64 reference, with calibrated tolerances.

The reference runs on the inputs as the lower precision holds them (rounded to it and back), so
only the arithmetic's rounding is measured. Errors are relative to max(max |expected|, 1) per
array: the inputs are O(1), so a value or gradient near 0 (from cancellation, e.g. c* ≈ ĉ) carries
absolute, not relative, rounding error.

Calibration (float32): over 80 random knob combinations × 3 draws of smooth inputs (a kink margin
of 1e-3, far above float32 rounding, so no decision flips), both paths, the worst error was
5.3 ε₃₂ for values and 12.8 ε₃₂ for gradients (ε₃₂ = 2⁻²³). The tolerance, 64 ε₃₂, is 5× the
worst. Half types are computed in float32 and rounded to their dtype at the end, at most twice
(the Triton kernel stores its gradient in the half type, and backward rounds its product with
the upstream gradient again): at most their ε, relative to each entry, so to the array's largest.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yolov1_loss import reference
from yolov1_loss.reference import PRESETS, LossSpec

from ..reference.inputs import random_spec, smooth_inputs
from .helpers import (
    IMPLEMENTATIONS,
    OUTPUT_NAMES,
    assert_matches_reference,
    dtype_rounded,
    run,
    skip_unless_available,
    values_and_grads,
)

FLOAT32_TOL = 64 * torch.finfo(torch.float32).eps
SPECS = [LossSpec.preset(name, S=3, B=2, C=4) for name in PRESETS] + [
    random_spec(np.random.default_rng(2000 + k)) for k in range(5)
]
SPEC_IDS = dict(ids=lambda s: s.preset_name() or "random")


def compare(impl, spec: LossSpec, dtype: torch.dtype, seed: int, tol: float) -> dict:
    pred, target = smooth_inputs(np.random.default_rng(seed), spec, 2)
    pred, target = dtype_rounded(pred, dtype), dtype_rounded(target, dtype)
    ref_parts, ref_grads = reference.loss_and_grad(pred, target, spec)
    values, grads = values_and_grads(impl, pred, target, spec, dtype=dtype)
    assert_matches_reference(values, grads, ref_parts, ref_grads, tol, floor=1.0)
    return values


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("spec", SPECS, **SPEC_IDS)
def test_float32(impl, spec):
    compare(impl, spec, torch.float32, seed=11, tol=FLOAT32_TOL)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_half_types_are_computed_in_float32_and_returned_in_their_dtype(impl, dtype):
    spec = LossSpec.preset("article", S=2, B=2, C=3)
    compare(impl, spec, dtype, seed=5, tol=torch.finfo(dtype).eps + FLOAT32_TOL)

    kind, device = impl
    pred, target = smooth_inputs(np.random.default_rng(5), spec, 2)
    p = torch.tensor(pred, dtype=dtype, device=device, requires_grad=True)
    parts = run(kind, p, torch.tensor(target, dtype=dtype, device=device), spec)
    parts.total.backward()
    assert all(getattr(parts, name).dtype == dtype for name in OUTPUT_NAMES)
    assert p.grad.dtype == dtype


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_float32_prediction_with_a_float64_target(impl):
    spec = LossSpec.preset("paper", S=2, B=2, C=3)
    kind, device = impl
    skip_unless_available(kind, device)
    pred, target = smooth_inputs(np.random.default_rng(8), spec, 2)
    p = torch.tensor(pred, dtype=torch.float32, device=device)
    mixed = run(kind, p, torch.tensor(target, dtype=torch.float64, device=device), spec)
    same = run(kind, p, torch.tensor(target, dtype=torch.float32, device=device), spec)
    assert mixed.total.dtype == torch.float32
    assert torch.equal(mixed.total, same.total)
