"""The numba kernel beyond its agreement with the reference (tested with the other paths): one
compiled specialisation per dtype whatever the dialect, a machine where numba cannot write its
cache, and the fallback to vectorized torch where numba does not import."""

from __future__ import annotations

import sys

import numba
import numpy as np
import pytest
import torch

from yolov1_loss import reference, torch_impl
from yolov1_loss.reference import PRESETS, LossSpec
from yolov1_loss.torch_impl import cpu_kernel, fused, yolov1_loss

from ..reference.inputs import random_inputs, random_spec


def test_one_compiled_kernel_per_dtype_serves_every_dialect():
    # Every knob reaches the kernel as a number of one type, so new dialects, grids, batch sizes,
    # strides and per-image weights (a component's backward) never compile it again.
    specs = [LossSpec.preset(name, S=2, B=3, C=2) for name in PRESETS]
    specs += [random_spec(np.random.default_rng(4000 + k)) for k in range(4)]
    for spec in specs:
        pred, target = random_inputs(np.random.default_rng(5), spec, 3)
        for dtype in (torch.float32, torch.float64):
            p = torch.tensor(pred, dtype=dtype).transpose(1, 2).requires_grad_()  # non-contiguous
            parts = yolov1_loss(p, torch.tensor(target, dtype=dtype).transpose(1, 2), spec)
            torch.autograd.backward([parts.total.sum(), parts.obj.sum()])
    assert len(cpu_kernel.cells_kernel.signatures) == 2


def _square(x):
    return x * x


def test_without_a_writable_cache_directory_the_kernel_compiles_in_each_process(monkeypatch):
    # As on a read-only install with no writable home: numba finds no directory for its cache
    # (simulated: it checks each candidate with ensure_cache_path, which raises OSError when the
    # directory cannot be written). numba.njit(cache=True) then raises RuntimeError; cached_jit
    # compiles without the cache instead.
    from numba.core import caching

    def unwritable(locator):
        raise OSError("read-only file system")

    monkeypatch.setattr(caching._CacheLocator, "ensure_cache_path", unwritable)
    with pytest.raises(RuntimeError, match="cannot cache"):
        numba.njit(cache=True)(_square)
    assert cpu_kernel.cached_jit(_square)(3.0) == 9.0


@pytest.fixture
def fresh_cpu_backend():
    """cpu_backend chooses afresh in the test, and again after it."""
    fused.cpu_backend.cache_clear()
    yield
    fused.cpu_backend.cache_clear()


def test_without_numba_the_cpu_falls_back_to_vectorized_torch_with_a_warning(monkeypatch, fresh_cpu_backend):
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba raises ImportError
    monkeypatch.delitem(sys.modules, "yolov1_loss.torch_impl.cpu_kernel")
    monkeypatch.delattr(torch_impl, "cpu_kernel")
    with pytest.warns(RuntimeWarning, match="numba does not import.*vectorized torch"):
        assert fused.cpu_backend() is fused.VECTORIZED

    spec = LossSpec.preset("darknet", S=2, B=2, C=3)
    pred, target = random_inputs(np.random.default_rng(9), spec, 2)
    p = torch.tensor(pred, requires_grad=True)
    parts = yolov1_loss(p, torch.tensor(target), spec)
    parts.total.backward()
    ref_parts, ref_grads = reference.loss_and_grad(pred, target, spec)
    # float64 rounding, as in test_reference_float64
    assert parts.total.item() == pytest.approx(ref_parts.total, rel=1e-10)
    np.testing.assert_allclose(p.grad.numpy(), ref_grads.total, rtol=0, atol=1e-10 * np.abs(ref_grads.total).max())


def test_each_spec_gets_its_own_kernel_arguments_however_many_come_and_go():
    # The kernel's arguments for a spec's own weights are kept by the spec's identity: specs made and dropped one
    # after another (CPython reuses a freed object's id at once), more than the cache keeps, all
    # with the same weights, must each be computed in their own dialect.
    presets = list(PRESETS)
    weights = dict(lambda_coord=5.0, lambda_obj=1.0, lambda_noobj=0.5, lambda_class=1.0)
    for k in range(3 * cpu_kernel.SPEC_ARGUMENTS_KEPT):
        spec = LossSpec.preset(presets[k % len(presets)], S=2, B=2, C=3, **weights)
        pred, target = random_inputs(np.random.default_rng(k), spec, 1)
        total = yolov1_loss(torch.tensor(pred), torch.tensor(target), spec, path="fused").total
        expected = reference.loss(pred, target, spec).total
        assert float(total) == pytest.approx(float(expected), rel=1e-12), (k, spec)
