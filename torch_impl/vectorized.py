"""The fused path's backend in vectorized torch, for devices with no compiled kernel (and the CPU
where numba does not import): the autograd path's terms, differentiated by ``torch.autograd``.

Autograd's derivatives at the kinks are the spec's conventions (see :mod:`torch_impl.boxes`), so
this backend needs no derivation of its own: it gives what both kernels give, one call at a time.
"""

from __future__ import annotations

import torch
from torch import Tensor

from yolov1_loss.reference import LossSpec
from yolov1_loss.torch_impl.dtypes import compute_dtype
from yolov1_loss.torch_impl.kernel_args import Weights
from yolov1_loss.torch_impl.parts import separate_outputs
from yolov1_loss.torch_impl.terms import nonfinite_guard, per_image_terms


def loss_and_grad(
    pred: Tensor, target: Tensor, spec: LossSpec, weights: Weights, scale: float
) -> tuple[Tensor, Tensor]:
    """Each image's unweighted, unscaled (coord, obj, noobj, cls) and scale · Σ_k w_k · term_k, (N, 5),
    and d(scale · Σ_k w_k · term_k)/d pred (N, S, S, C + 5B), both in the compute dtype (float64 for
    float64, else float32). Terms whose weight is None are left out of the weighted sum (and so
    of the gradient: not even 0 · their gradient, which is NaN where that is ∞).

    ``pred`` (N, S, S, C + 5B) and ``target`` (N, S, S, C + 5) of any floating dtype.
    """
    dt = compute_dtype(pred.dtype)
    with torch.enable_grad():
        p = pred.detach().to(dt).requires_grad_(True)
        terms = per_image_terms(p, target.detach().to(dt), spec)
        weighted = nonfinite_guard(p)  # zeros, NaN for an image with a non-finite prediction
        for weight, term in zip(weights, terms):
            if weight is not None:
                weighted = weighted + (scale * weight) * term
        if weighted.requires_grad:
            (grad,) = torch.autograd.grad(weighted.sum(), p)
        else:
            grad = torch.zeros_like(p)
    return torch.stack([*terms, weighted], dim=-1).detach(), grad


outputs = separate_outputs  # the fused path's outputs step (fused.Backend), in torch ops
