"""The fused path: one pass computes the loss and its gradient; backward only scales it.

A :class:`torch.autograd.Function` returns each image's four unweighted terms and their
λ-weighted sum, five (N,) tensors. Its forward asks a backend (the Triton kernel on CUDA, the
numba kernel of :mod:`torch_impl.cpu_kernel` on the CPU) for both the terms and the gradient of
the weighted sum, and saves that gradient. Vectorized torch (:mod:`torch_impl.analytic`) serves
the other devices, and the CPU where numba does not import (several times slower; with a warning).
Backward of the total, the usual case, multiplies the saved gradient by the upstream gradient
(one number per image). When a component itself is differentiated, its upstream gradient makes
the per-image weights of each term different, and the backend is run again with those weights.
"""

from __future__ import annotations

import functools
import warnings
from typing import Callable

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from reference import LossSpec
from torch_impl import analytic
from torch_impl.parts import lambdas, weighted_sum

# backend(pred (N, S, S, C + 5B), target (N, S, S, C + 5), spec, weights)
#   -> (terms (N, 4) in the compute dtype, d(Σ_k w_k term_k)/d pred (N, S, S, C + 5B) in the
#       compute dtype or pred's).
Backend = Callable[[Tensor, Tensor, LossSpec, analytic.Weights], "tuple[Tensor, Tensor]"]


def triton_usable() -> bool:
    """Whether triton imports here."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def cpu_backend() -> Backend:
    """The numba kernel; vectorized torch, with a warning, where numba does not import."""
    try:
        from torch_impl import cpu_kernel
    except ImportError as err:
        warnings.warn(
            f"torch_impl: numba does not import ({err}); the fused path on the CPU falls back to "
            "vectorized torch, several times slower. Install numba>=0.60 for the compiled kernel.",
            RuntimeWarning,
            stacklevel=2,
        )
        return analytic.loss_and_grad
    return cpu_kernel.loss_and_grad


def backend_for(device: torch.device) -> Backend:
    """The Triton kernel for CUDA tensors when triton is installed, :func:`cpu_backend` for CPU
    tensors, and vectorized torch on any other device (or CUDA without triton)."""
    if device.type == "cuda" and triton_usable():
        from torch_impl import triton_kernel

        return triton_kernel.loss_and_grad
    if device.type == "cpu":
        return cpu_backend()
    return analytic.loss_and_grad


def _plus(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    return b if a is None else a if b is None else a + b


def _upstream_weights(g_terms, g_weighted: Tensor | None, spec: LossSpec) -> analytic.Weights:
    """Per-image weights of the four terms, from the upstream gradients of the five outputs.

    A term whose output and the weighted sum both got no gradient is left out (None).
    """
    from_total = [None if g_weighted is None else lam * g_weighted for lam in lambdas(spec)]
    return tuple(_plus(g_term, g) for g_term, g in zip(g_terms, from_total))


class FusedLoss(torch.autograd.Function):
    """(pred, target, spec, backend) -> per-image coord, obj, noobj, cls and their λ-weighted
    sum, (N,) each, in the compute dtype."""

    @staticmethod
    def forward(ctx, pred: Tensor, target: Tensor, spec: LossSpec, backend: Backend):
        terms, grad = backend(pred, target, spec, lambdas(spec))
        ctx.save_for_backward(pred, target, grad)
        ctx.spec, ctx.backend = spec, backend
        ctx.set_materialize_grads(False)
        outputs = tuple(term.clone() for term in terms.unbind(dim=1))
        return (*outputs, weighted_sum(outputs, spec))

    @staticmethod
    @once_differentiable
    def backward(ctx, *upstream: Tensor | None):
        pred, target, grad = ctx.saved_tensors
        *g_terms, g_weighted = upstream
        if all(g is None for g in upstream):
            return None, None, None, None
        if all(g is None for g in g_terms):
            d_pred = g_weighted.reshape(-1, 1, 1, 1) * grad
        else:
            _, d_pred = ctx.backend(pred, target, ctx.spec, _upstream_weights(g_terms, g_weighted, ctx.spec))
        return d_pred.to(pred.dtype), None, None, None


def fused_terms(pred: Tensor, target: Tensor, spec: LossSpec, backend: Backend | None = None):
    """((coord, obj, noobj, cls), weighted), (N,) each, of canonical inputs through :class:`FusedLoss`."""
    *terms, weighted = FusedLoss.apply(pred, target, spec, backend or backend_for(pred.device))
    return terms, weighted
