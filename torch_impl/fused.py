"""The fused path: one pass computes the loss and its gradient; backward only scales it.

A :class:`torch.autograd.Function` returns the four unweighted components and the λ-weighted
total, after the spec's reduction and loss_scale. Its forward asks a backend (the Triton kernel
on CUDA, the numba kernel of :mod:`yolov1_loss.torch_impl.cpu_kernel` on the CPU) for the five
values and for the gradient of the total, and saves the gradient. Vectorized torch
(:mod:`yolov1_loss.torch_impl.vectorized`) serves the other devices, and the CPU where numba does not import
(several times slower; with a warning).
Backward of the total, the usual case, hands the saved gradient itself over to autograd, scaled
in place by the upstream gradient where that is not 1: no second gradient-sized buffer, and
autograd can make it ``pred.grad`` without a copy. (A second backward through a kept graph
computes it again.) When a component itself is differentiated, its upstream gradient makes the
per-image weights of each term different, and the backend is run again with those weights.
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

# A backend: ``backend(pred, target, spec, weights, scale)`` -> (outputs, gradient). The outputs
# are (coord, obj, noobj, cls, total) in pred's dtype, five separate tensors, 0-dim or (N,) under
# reduction='none': the components reduced over the images (spec.reduction) and times ``scale``,
# the total = scale · Σ_k w_k · term_k so reduced. The gradient is d total / d pred (N, S, S,
# C + 5B), in pred's dtype or the compute dtype. ``weights`` as kernel_args.Weights, or None for
# the spec's own λ (the forward's case: a backend may prepare its arguments for it once).
Backend = Callable[[Tensor, Tensor, LossSpec, Weights | None, float], tuple[tuple[Tensor, ...], Tensor]]


def in_two_steps(loss_and_grad: Callable, outputs: Callable) -> Backend:
    """A backend from ``loss_and_grad(pred, target, spec, weights, scale)`` -> (per-image values in
    the backend's own form, gradient) and ``outputs(per_image, spec, scale, dtype)`` -> the five
    outputs (on a GPU, two launches: the cells, then the reduction over them)."""

    def backend(pred: Tensor, target: Tensor, spec: LossSpec, weights: Weights | None, scale: float):
        per_image, grad = loss_and_grad(pred, target, spec, spec.weights() if weights is None else weights, scale)
        return outputs(per_image, spec, scale, pred.dtype), grad

    return backend


VECTORIZED = in_two_steps(vectorized.loss_and_grad, vectorized.outputs)


def triton_usable() -> bool:
    """Whether triton imports here."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def triton_backend() -> Backend:
    """The Triton kernel (imported on first use)."""
    from yolov1_loss.torch_impl import triton_kernel

    return in_two_steps(triton_kernel.loss_and_grad, triton_kernel.outputs)


@functools.cache
def cpu_backend() -> Backend:
    """The numba kernel; vectorized torch, with a warning, where numba does not import."""
    try:
        from yolov1_loss.torch_impl import cpu_kernel
    except ImportError as err:
        warnings.warn(
            f"torch_impl: numba does not import ({err}); the fused path on the CPU falls back to "
            "vectorized torch, several times slower. Install numba>=0.68 for the compiled kernel.",
            RuntimeWarning,
            stacklevel=2,
        )
        return VECTORIZED
    return cpu_kernel.run


def backend_for(x: Tensor) -> Backend:
    """The backend for tensors on ``x``'s device: the Triton kernel for CUDA tensors when triton is
    installed, :func:`cpu_backend` for CPU tensors, and vectorized torch on any other device (or
    CUDA without triton)."""
    if x.is_cpu:
        return cpu_backend()
    if x.is_cuda and triton_usable():
        return triton_backend()
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
    """(pred, target, spec, backend) -> coord, obj, noobj, cls and the λ-weighted total, after the
    spec's reduction and loss_scale: 0-dim each, or (N,) under reduction='none'; in pred's dtype.

    Forward and backward of the total are three launches of work on a GPU: the backend's kernel,
    its outputs step, and backward's scaling of the saved gradient in place (a kernel that writes
    nothing where the upstream gradient is 1); the saved gradient already holds the reduction's
    scale (it is the gradient of scale · Σ λ_k term_k). On the CPU the kernel is the one step of
    forward, and total.backward() receives the saved gradient itself.
    """

    @staticmethod
    def forward(ctx, pred: Tensor, target: Tensor, spec: LossSpec, backend: Backend):
        outputs, grad = backend(pred, target, spec, None, spec.reduction_scale(pred.shape[0]))
        ctx.save_for_backward(pred, target)
        ctx.grad = grad  # not a saved tensor: the first backward of the total takes it (_take_gradient)
        ctx.spec, ctx.backend = spec, backend
        ctx.set_materialize_grads(False)
        return outputs

    @staticmethod
    def backward(ctx, g_coord, g_obj, g_noobj, g_cls, g_total):
        """d loss / d pred from the five outputs' upstream gradients (None where one got none).

        (Written for the N = 1 step, where each torch op costs microseconds: the common case
        reads one saved tensor, and makes one multiplication by a 0-dim upstream or none.)
        """
        if torch.is_grad_enabled():
            # create_graph=True: the gradient is not differentiable again, and once_differentiable
            # says so if that is tried. It runs this method again, in no_grad mode: below.
            return _backward_once(ctx, g_coord, g_obj, g_noobj, g_cls, g_total)
        pred, target = ctx.saved_tensors
        if g_coord is None and g_obj is None and g_noobj is None and g_cls is None:
            if g_total is None:
                return None, None, None, None
            d_pred = _times_upstream(_take_gradient(ctx, pred, target), g_total)
        else:
            weights = _upstream_weights((g_coord, g_obj, g_noobj, g_cls), g_total, ctx.spec, pred.shape[0])
            _, d_pred = ctx.backend(pred, target, ctx.spec, weights, 1.0)
        return (d_pred if d_pred.dtype == pred.dtype else d_pred.to(pred.dtype)), None, None, None


_backward_once = once_differentiable(FusedLoss.backward)


def _take_gradient(ctx, pred: Tensor, target: Tensor) -> Tensor:
    """The forward's gradient of the total, which the caller now owns (the context lets it go, so
    that autograd, holding the only reference, can make it ``.grad`` without a copy); computed
    again for a second backward through a kept graph."""
    grad, ctx.grad = ctx.grad, None
    if grad is None:
        _, grad = ctx.backend(pred, target, ctx.spec, None, ctx.spec.reduction_scale(pred.shape[0]))
    return grad


def _times_upstream(grad: Tensor, upstream: Tensor) -> Tensor:
    """``grad`` times the upstream gradient of the total (0-dim, or (N,) under reduction='none'),
    in place. On the CPU an upstream of exactly 1 (total.backward()) is read and skipped; on CUDA
    reading it would wait for the device, so a kernel reads it (triton_scale)."""
    if upstream.is_cpu:
        if upstream.dim() == 0 and upstream.item() == 1:
            return grad
    elif grad.is_cuda and triton_usable():
        from yolov1_loss.torch_impl.triton_scale import scale_in_place

        return scale_in_place(grad, upstream)
    return grad.mul_(upstream if upstream.dim() == 0 else upstream.reshape(-1, 1, 1, 1))


def _choose_apply() -> Callable:
    """FusedLoss.apply, or where this torch has the private pieces it takes, a shortcut past it.

    FusedLoss.apply's Python wrapper, outside functorch's transforms, unwraps dead functorch
    wrappers and calls autograd's C++ apply; its walk over every argument costs several
    microseconds (about 5% of a whole forward and backward at N = 1). The shortcut does the same
    for the two tensors only, through three private names of torch (``_FunctionBase.apply``,
    ``_functorch.unwrap_if_dead``, ``_are_functorch_transforms_active``); a torch without any one
    of them gets the public path.
    """
    function_base = getattr(torch._C, "_FunctionBase", None)
    unwrap_if_dead = getattr(getattr(torch._C, "_functorch", None), "unwrap_if_dead", None)
    transforms_active = getattr(torch._C, "_are_functorch_transforms_active", None)
    if (
        unwrap_if_dead is None
        or transforms_active is None
        or not isinstance(function_base, type)
        or not issubclass(FusedLoss, function_base)
        or "apply" not in vars(function_base)
    ):
        return FusedLoss.apply
    cpp_apply = vars(function_base)["apply"].__get__(None, FusedLoss)

    def apply(pred: Tensor, target: Tensor, spec: LossSpec, backend: Backend) -> tuple[Tensor, ...]:
        if transforms_active():
            return FusedLoss.apply(pred, target, spec, backend)
        return cpp_apply(unwrap_if_dead(pred), unwrap_if_dead(target), spec, backend)

    return apply


_apply = _choose_apply()


def fused_loss(pred: Tensor, target: Tensor, spec: LossSpec, backend: Backend | None = None) -> tuple[Tensor, ...]:
    """(coord, obj, noobj, cls, total) of canonical inputs through :class:`FusedLoss`, in pred's dtype.

    Under torch.compile it runs as it is, outside the graph: its backends are compiled kernels
    already, and dynamo cannot trace numba's dispatcher. (The exclusion is made on the first
    compiled call, not at import: ``torch.compiler.disable`` imports dynamo, which takes seconds.)
    """
    if torch.compiler.is_compiling():
        return torch.compiler.disable(fused_loss)(pred, target, spec, backend)  # (not compiling in there)
    return _apply(pred, target, spec, backend or backend_for(pred))
