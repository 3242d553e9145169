"""Running torch_impl's implementations on NumPy inputs and comparing them with the reference.

An implementation is a (kind, device) pair: kind 'autograd' or 'fused' is the public ``path``
(on the CPU, 'fused' runs the numba kernel); 'triton' forces the Triton kernel as the fused
path's backend (on CPU through the interpreter), and 'vectorized' the vectorized-torch backend
(the fused path's fallback where numba does not import, and on devices with no kernel).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yolov1_loss.reference import OUTPUT_NAMES, LossSpec
from yolov1_loss.torch_impl import PATHS, TorchLossParts, yolov1_loss
from yolov1_loss.torch_impl.fused import VECTORIZED, fused_loss, triton_backend
from yolov1_loss.torch_impl.inputs import canonical_inputs

IMPLEMENTATIONS = [
    pytest.param(("autograd", "cpu"), id="autograd-cpu"),
    pytest.param(("fused", "cpu"), id="fused-cpu"),
    pytest.param(("triton", "cpu"), id="triton-interpreter"),
    pytest.param(("vectorized", "cpu"), id="vectorized-cpu"),
    pytest.param(("autograd", "cuda"), id="autograd-cuda"),
    pytest.param(("fused", "cuda"), id="triton-cuda"),
]


def skip_unless_available(kind: str, device: str) -> None:
    """Skip, with the reason, an implementation this machine cannot run."""
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    if kind == "triton" or (kind == "fused" and device == "cuda"):
        pytest.importorskip("triton", reason="triton is not installed")
        from yolov1_loss.torch_impl import triton_kernel

        if device == "cpu" and not triton_kernel.interpreted():
            pytest.skip("the kernel runs on CPU tensors only under TRITON_INTERPRET=1, unset at its import")
        if device == "cuda" and triton_kernel.interpreted():
            pytest.skip("TRITON_INTERPRET=1 is set, so the kernel would not be compiled for CUDA")


def run(kind: str, pred: torch.Tensor, target: torch.Tensor, spec: LossSpec) -> TorchLossParts:
    """The loss through one implementation kind (pred may require grad)."""
    if kind in PATHS:
        return yolov1_loss(pred, target, spec, path=kind)
    backend = triton_backend() if kind == "triton" else VECTORIZED
    pred4, target4 = canonical_inputs(pred, target, spec)
    return TorchLossParts(*fused_loss(pred4, target4, spec, backend=backend))


def values_and_grads(impl, pred: np.ndarray, target: np.ndarray, spec: LossSpec, dtype=torch.float64):
    """({field: value}, {field: d field.sum() / d pred}) as float64 NumPy arrays."""
    kind, device = impl
    skip_unless_available(kind, device)
    p = torch.tensor(pred, dtype=dtype, device=device, requires_grad=True)
    t = torch.tensor(target, dtype=dtype, device=device)
    parts = run(kind, p, t, spec)
    values, grads = {}, {}
    for name in OUTPUT_NAMES:
        value = getattr(parts, name)
        (grad,) = torch.autograd.grad(value.sum(), p, retain_graph=True)
        values[name] = value.detach().double().cpu().numpy()
        grads[name] = grad.double().cpu().numpy()
    return values, grads


def relative_error(actual, expected, floor: float = 0.0) -> float:
    """max |actual − expected| / max(max |expected|, floor): one number for a whole array.

    Non-finite entries must match exactly (same infinities, NaN where NaN); they are left out
    of the number.
    """
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_array_equal(actual[np.isinf(expected)], expected[np.isinf(expected)])
    if not finite.any():
        return 0.0
    scale = max(float(np.abs(expected[finite]).max()), floor)
    diff = float(np.abs(actual[finite] - expected[finite]).max())
    return diff / scale if scale > 0 else diff


def assert_matches_reference(values, grads, ref_parts, ref_grads, tol: float, floor: float = 0.0) -> None:
    """Every value and gradient within ``tol`` (relative, see :func:`relative_error`) of the reference's."""
    for name in OUTPUT_NAMES:
        v_err = relative_error(values[name], getattr(ref_parts, name), floor)
        g_err = relative_error(grads[name], getattr(ref_grads, name), floor)
        assert v_err <= tol, f"{name} value off by {v_err:.3g} (relative)"
        assert g_err <= tol, f"d {name} / d pred off by {g_err:.3g} (relative)"


def dtype_rounded(x: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    """``x`` rounded to ``dtype`` and back to float64: the values that dtype's inputs really hold."""
    return torch.tensor(x).to(dtype).double().numpy()
