"""Backward for any upstream gradient, and torch.autograd.gradcheck.

Under reduction='none' each output is (N,); image n's gradient lives in image n's rows only, so
with upstream gradients u_k (N,) on every output k at once, the expected gradient of image n is
Σ_k u_k[n] · (the reference's gradient of output k)[n]. Under 'sum' and 'mean' the upstream
gradients are random numbers. Both exercise the fused path's second mode (a component differentiated
on its own re-runs the backend with per-image weights) as well as its usual one (the total alone).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yolov1_loss import reference
from yolov1_loss.reference import LossSpec

from ..reference.inputs import random_inputs, smooth_inputs
from .helpers import IMPLEMENTATIONS, OUTPUT_NAMES, relative_error, run, skip_unless_available

TOL = 1e-10  # float64, as in test_reference_float64


def _backward(impl, pred, target, spec, upstream: dict) -> np.ndarray:
    kind, device = impl
    skip_unless_available(kind, device)
    p = torch.tensor(pred, device=device, requires_grad=True)
    parts = run(kind, p, torch.tensor(target, device=device), spec)
    outputs = [getattr(parts, name) for name in upstream]
    torch.autograd.backward(outputs, [torch.as_tensor(u, device=device) for u in upstream.values()])
    return p.grad.cpu().numpy()


def _expected(ref_grads, upstream: dict, n_images: int) -> np.ndarray:
    expected = 0
    for name, u in upstream.items():
        per_image = np.reshape(u, (-1, 1, 1, 1)) if np.ndim(u) else u
        expected = expected + per_image * getattr(ref_grads, name)
    return expected


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("preset", ["article", "darknet"])
@pytest.mark.parametrize("outputs", [OUTPUT_NAMES, ("total",), ("obj",), ("coord", "total")], ids="+".join)
def test_reduction_none_with_random_upstream_gradients(impl, preset, outputs):
    spec = LossSpec.preset(preset, S=2, B=2, C=3, reduction="none")
    rng = np.random.default_rng(17)
    pred, target = random_inputs(rng, spec, 3)
    upstream = {name: rng.uniform(-2, 2, size=3) for name in outputs}
    _, ref_grads = reference.loss_and_grad(pred, target, spec)
    actual = _backward(impl, pred, target, spec, upstream)
    assert relative_error(actual, _expected(ref_grads, upstream, 3)) <= TOL


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_scalar_reductions_with_random_upstream_gradients(impl, reduction):
    spec = LossSpec.preset("ml_collection", S=2, B=3, C=2, reduction=reduction)
    rng = np.random.default_rng(23)
    pred, target = random_inputs(rng, spec, 3)
    upstream = {name: np.float64(rng.uniform(-2, 2)) for name in OUTPUT_NAMES}
    _, ref_grads = reference.loss_and_grad(pred, target, spec)
    actual = _backward(impl, pred, target, spec, upstream)
    assert relative_error(actual, _expected(ref_grads, upstream, 3)) <= TOL


@pytest.mark.parametrize("path", ["autograd", "fused"])
@pytest.mark.parametrize("preset", reference.PRESETS)
@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_gradcheck(path, preset, reduction):
    # Away from kinks (margin 1e-3 ≫ gradcheck's step 1e-6), in float64. iou_grad='through':
    # a detached c* (the default of three presets) is by design not the derivative of the value.
    spec = LossSpec.preset(preset, S=2, B=2, C=2, reduction=reduction, iou_grad="through")
    pred, target = smooth_inputs(np.random.default_rng(29), spec, 2)
    p = torch.tensor(pred, requires_grad=True)
    t = torch.tensor(target)
    assert torch.autograd.gradcheck(lambda x: tuple(run(path, x, t, spec)), (p,))
