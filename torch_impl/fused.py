"""The fused path: one pass computes the loss and its gradient; backward only scales it.

A :class:`torch.autograd.Function` returns each image's four unweighted terms (N, 4) and their
λ-weighted sum (N,). Its forward asks a backend (the Triton kernel on CUDA, vectorized torch
elsewhere) for both the terms and the gradient of the weighted sum, and saves that gradient.
Backward of the total, the usual case, multiplies the saved gradient by the upstream gradient
(one number per image). When a component itself is differentiated, its upstream gradient makes
the per-image weights of each term different, and the backend is run again with those weights.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from reference import LossSpec
from torch_impl import analytic
from torch_impl.parts import lambdas, weighted_sum

# backend(pred (N, S, S, C + 5B), target (N, S, S, C + 5), spec, weights)
#   -> (terms (N, 4), d(Σ_k w_k term_k)/d pred (N, S, S, C + 5B)), both in the compute dtype.
Backend = Callable[[Tensor, Tensor, LossSpec, analytic.Weights], "tuple[Tensor, Tensor]"]


def triton_usable() -> bool:
    """Whether triton imports here."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def backend_for(device: torch.device) -> Backend:
    """The Triton kernel for CUDA tensors when triton is installed; vectorized torch otherwise."""
    if device.type == "cuda" and triton_usable():
        from torch_impl import triton_kernel

        return triton_kernel.loss_and_grad
    return analytic.loss_and_grad


def _upstream_weights(g_terms: Tensor | None, g_weighted: Tensor | None, spec: LossSpec) -> Tensor:
    """Per-image weights (N, 4) of the four terms given the upstream gradients of both outputs."""
    if g_weighted is None:
        return g_terms
    from_total = torch.stack([lam * g_weighted for lam in lambdas(spec)], dim=-1)
    return from_total if g_terms is None else g_terms + from_total


class FusedLoss(torch.autograd.Function):
    """(pred, target, spec, backend) -> (terms (N, 4), weighted (N,)), in the compute dtype."""

    @staticmethod
    def forward(ctx, pred: Tensor, target: Tensor, spec: LossSpec, backend: Backend):
        terms, grad = backend(pred, target, spec, lambdas(spec))
        ctx.save_for_backward(pred, target, grad)
        ctx.spec, ctx.backend = spec, backend
        ctx.set_materialize_grads(False)
        return terms, weighted_sum(terms, spec)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_terms: Tensor | None, g_weighted: Tensor | None):
        pred, target, grad = ctx.saved_tensors
        if g_terms is None:
            d_pred = g_weighted.reshape(-1, 1, 1, 1) * grad
        else:
            weights = _upstream_weights(g_terms, g_weighted, ctx.spec).to(grad.dtype).contiguous()
            _, d_pred = ctx.backend(pred, target, ctx.spec, weights)
        return d_pred.to(pred.dtype), None, None, None


def fused_terms(pred: Tensor, target: Tensor, spec: LossSpec, backend: Backend | None = None):
    """(terms (N, 4), weighted (N,)) of canonical inputs through :class:`FusedLoss`."""
    return FusedLoss.apply(pred, target, spec, backend or backend_for(pred.device))
