"""The fused path: one pass computes the loss and its gradient; backward only scales it.

A :class:`torch.autograd.Function` returns the four unweighted components and the λ-weighted
total, after the spec's reduction and loss_scale. Its forward asks a backend (the Triton kernel
on CUDA, the numba kernel of :mod:`yolov1_loss.torch_impl.cpu_kernel` on the CPU) for each image's terms and
weighted sum and for the gradient of that sum, and saves the gradient. Vectorized torch
(:mod:`yolov1_loss.torch_impl.vectorized`) serves the other devices, and the CPU where numba does not import
(several times slower; with a warning).
Backward of the total, the usual case, multiplies the saved gradient by the upstream gradient
(and the reduction's scale). When a component itself is differentiated, its upstream gradient
makes the per-image weights of each term different, and the backend is run again with those weights.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from yolov1_loss.reference import LossSpec
from yolov1_loss.torch_impl import vectorized
from yolov1_loss.torch_impl.kernel_args import Weights
from yolov1_loss.torch_impl.parts import reduce

# backend(pred (N, S, S, C + 5B), target (N, S, S, C + 5), spec, weights)
#   -> (per-image (coord, obj, noobj, cls, Σ_k w_k term_k) (N, 5) in the compute dtype: the terms
#       unweighted and unscaled, the sum over the terms whose weight is not None;
#       d(Σ_k w_k term_k)/d pred (N, S, S, C + 5B) in the compute dtype or pred's).
Backend = Callable[[Tensor, Tensor, LossSpec, Weights], "tuple[Tensor, Tensor]"]


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
        from yolov1_loss.torch_impl import cpu_kernel
    except ImportError as err:
        warnings.warn(
            f"torch_impl: numba does not import ({err}); the fused path on the CPU falls back to "
            "vectorized torch, several times slower. Install numba>=0.60 for the compiled kernel.",
            RuntimeWarning,
            stacklevel=2,
        )
        return vectorized.loss_and_grad
    return cpu_kernel.loss_and_grad


def backend_for(device: torch.device) -> Backend:
    """The Triton kernel for CUDA tensors when triton is installed, :func:`cpu_backend` for CPU
    tensors, and vectorized torch on any other device (or CUDA without triton)."""
    if device.type == "cuda" and triton_usable():
        from yolov1_loss.torch_impl import triton_kernel

        return triton_kernel.loss_and_grad
    if device.type == "cpu":
        return cpu_backend()
    return vectorized.loss_and_grad


def _plus(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    return b if a is None else a if b is None else a + b


def _upstream_weights(g_terms, g_total: Tensor | None, spec: LossSpec, n_images: int) -> Weights:
    """Per-image weights (N,) of the four terms, from the upstream gradients of the five outputs
    (0-dim, or (N,) under reduction='none') and the reduction's scale.

    A term whose output and the total both got no gradient is left out (None).
    """
    scale = spec.reduction_scale(n_images)
    from_total = [None if g_total is None else lam * g_total for lam in spec.weights()]
    weights = (_plus(g_term, g) for g_term, g in zip(g_terms, from_total))
    return tuple(None if w is None else (scale * w).expand(n_images) for w in weights)


class FusedLoss(torch.autograd.Function):
    """(pred, target, spec, backend) -> coord, obj, noobj, cls and the λ-weighted total, after the
    spec's reduction and loss_scale: 0-dim each, or (N,) under reduction='none'; compute dtype."""

    @staticmethod
    def forward(ctx, pred: Tensor, target: Tensor, spec: LossSpec, backend: Backend):
        per_image, grad = backend(pred, target, spec, spec.weights())
        ctx.save_for_backward(pred, target, grad)
        ctx.spec, ctx.backend = spec, backend
        ctx.set_materialize_grads(False)
        # Copies, not views of one tensor: an output may then be modified in place (loss /= k).
        return torch.unbind_copy(reduce(per_image, spec), -1)

    @staticmethod
    @once_differentiable
    def backward(ctx, *upstream: Tensor | None):
        pred, target, grad = ctx.saved_tensors
        *g_terms, g_total = upstream
        if all(g is None for g in upstream):
            return None, None, None, None
        if all(g is None for g in g_terms):
            scale = ctx.spec.reduction_scale(pred.shape[0])
            factor = g_total if scale == 1 else scale * g_total  # 0-dim, or (N,)
            d_pred = grad * factor.reshape(-1, 1, 1, 1)
        else:
            weights = _upstream_weights(g_terms, g_total, ctx.spec, pred.shape[0])
            _, d_pred = ctx.backend(pred, target, ctx.spec, weights)
        return d_pred.to(pred.dtype), None, None, None


def fused_loss(pred: Tensor, target: Tensor, spec: LossSpec, backend: Backend | None = None) -> tuple[Tensor, ...]:
    """(coord, obj, noobj, cls, total) of canonical inputs through :class:`FusedLoss`, in the compute dtype.

    Under torch.compile it runs as it is, outside the graph: its backends are compiled kernels
    already, and dynamo cannot trace numba's dispatcher. (The exclusion is made on the first
    compiled call, not at import: ``torch.compiler.disable`` imports dynamo, which takes seconds.)
    """
    if torch.compiler.is_compiling():
        return torch.compiler.disable(_fused_loss)(pred, target, spec, backend)
    return _fused_loss(pred, target, spec, backend)


def _fused_loss(pred: Tensor, target: Tensor, spec: LossSpec, backend: Backend | None) -> tuple[Tensor, ...]:
    return FusedLoss.apply(pred, target, spec, backend or backend_for(pred.device))
