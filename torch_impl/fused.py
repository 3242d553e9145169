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
from typing import NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from yolov1_loss.reference import LossSpec
from yolov1_loss.torch_impl import vectorized
from yolov1_loss.torch_impl.kernel_args import Weights


class Backend(NamedTuple):
    """One way of computing the fused path, in two steps.

    ``loss_and_grad(pred, target, spec, weights, scale)`` -> (per-image values in the backend's
    own form, d(scale · Σ_k w_k · term_k)/d pred (N, S, S, C + 5B) in pred's dtype or the compute
    dtype); ``outputs(per_image, spec, scale, dtype)`` -> (coord, obj, noobj, cls, total): the
    components reduced over the images (spec.reduction) and scaled, the total = the weighted
    sum, already scaled; five separate tensors of ``dtype``.
    """

    loss_and_grad: Callable
    outputs: Callable


VECTORIZED = Backend(vectorized.loss_and_grad, vectorized.outputs)


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
        return VECTORIZED
    return Backend(cpu_kernel.loss_and_grad, cpu_kernel.outputs)


def backend_for(device: torch.device) -> Backend:
    """The Triton kernel for CUDA tensors when triton is installed, :func:`cpu_backend` for CPU
    tensors, and vectorized torch on any other device (or CUDA without triton)."""
    if device.type == "cuda" and triton_usable():
        from yolov1_loss.torch_impl import triton_kernel

        return Backend(triton_kernel.loss_and_grad, triton_kernel.outputs)
    if device.type == "cpu":
        return cpu_backend()
    return VECTORIZED


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
    """(pred, target, spec, backend, dtype) -> coord, obj, noobj, cls and the λ-weighted total, after
    the spec's reduction and loss_scale: 0-dim each, or (N,) under reduction='none'; in ``dtype``.

    Forward and backward of the total are three launches of work on a GPU: the backend's kernel,
    its outputs step, and backward's one multiplication of the saved gradient, which already
    holds the reduction's scale (it is the gradient of scale · Σ λ_k term_k).
    """

    @staticmethod
    def forward(ctx, pred: Tensor, target: Tensor, spec: LossSpec, backend: Backend, dtype: torch.dtype):
        scale = spec.reduction_scale(pred.shape[0])
        per_image, grad = backend.loss_and_grad(pred, target, spec, spec.weights(), scale)
        ctx.save_for_backward(pred, target, grad)
        ctx.spec, ctx.backend = spec, backend
        ctx.set_materialize_grads(False)
        # Five tensors, not views of one: an output may then be modified in place (loss /= k).
        return backend.outputs(per_image, spec, scale, dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, *upstream: Tensor | None):
        pred, target, grad = ctx.saved_tensors
        *g_terms, g_total = upstream
        if all(g is None for g in upstream):
            return None, None, None, None, None
        if all(g is None for g in g_terms):
            d_pred = grad * g_total.reshape(-1, 1, 1, 1)  # 0-dim, or (N,): one weight per image
        else:
            weights = _upstream_weights(g_terms, g_total, ctx.spec, pred.shape[0])
            _, d_pred = ctx.backend.loss_and_grad(pred, target, ctx.spec, weights, 1.0)
        return d_pred.to(pred.dtype), None, None, None, None


def fused_loss(pred: Tensor, target: Tensor, spec: LossSpec, backend: Backend | None = None) -> tuple[Tensor, ...]:
    """(coord, obj, noobj, cls, total) of canonical inputs through :class:`FusedLoss`, in pred's dtype.

    Under torch.compile it runs as it is, outside the graph: its backends are compiled kernels
    already, and dynamo cannot trace numba's dispatcher. (The exclusion is made on the first
    compiled call, not at import: ``torch.compiler.disable`` imports dynamo, which takes seconds.)
    """
    if torch.compiler.is_compiling():
        return torch.compiler.disable(_fused_loss)(pred, target, spec, backend)
    return _fused_loss(pred, target, spec, backend)


def _fused_loss(pred: Tensor, target: Tensor, spec: LossSpec, backend: Backend | None) -> tuple[Tensor, ...]:
    return FusedLoss.apply(pred, target, spec, backend or backend_for(pred.device), pred.dtype)
