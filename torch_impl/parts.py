"""What the loss returns: four unweighted components and the weighted total, after reduction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from yolov1_loss.reference import LossSpec
from yolov1_loss.reference.loss import COMPONENTS


class TorchLossParts(NamedTuple):
    """The loss after reduction and loss_scale: 0-dim tensors, or (N,) under reduction='none'.

    Components are unweighted, the total weighted (λ_coord·coord + λ_obj·obj + λ_noobj·noobj +
    λ_class·cls); each is differentiable with respect to the prediction. The same fields also
    carry gradients (see :func:`torch_impl.fused_loss_and_grad`).
    """

    coord: Tensor
    obj: Tensor
    noobj: Tensor
    cls: Tensor
    total: Tensor


def weighted_sum(terms: Sequence[Tensor], spec: LossSpec) -> Tensor:
    """Per-image (coord, obj, noobj, cls), (N,) each → (N,) λ-weighted sums (Python-number weights:
    no device copy)."""
    return sum(lam * term for lam, term in zip(spec.weights(), terms))


def reduce(per_image: Tensor, spec: LossSpec) -> Tensor:
    """Per-image values (N, ...) after the spec's reduction and loss_scale: (N, ...) under 'none',
    else their sum (or mean) over the images (...)."""
    scale = spec.reduction_scale(per_image.shape[0])
    reduced = per_image if spec.reduction == "none" else per_image.sum(dim=0)
    return reduced if scale == 1 else reduced * scale


def finish(terms: Sequence[Tensor], weighted: Tensor, spec: LossSpec, dtype: torch.dtype) -> TorchLossParts:
    """Reduce and scale per-image terms (coord, obj, noobj, cls) and their weighted sums, (N,)
    each, and cast to ``dtype``. (Each separately: differentiating one never runs through another.)"""
    components = {name: reduce(term, spec).to(dtype) for name, term in zip(COMPONENTS, terms)}
    return TorchLossParts(**components, total=reduce(weighted, spec).to(dtype))


def separate_outputs(per_image: Tensor, spec: LossSpec, scale: float, dtype: torch.dtype) -> tuple[Tensor, ...]:
    """Per-image (coord, obj, noobj, cls, weighted) (N, 5), the weighted column already scaled ->
    the five outputs: reduced over the images, the components scaled, as separate ``dtype``
    tensors (copies, so that any of them may be modified in place)."""
    reduced = per_image if spec.reduction == "none" else per_image.sum(dim=0)
    factor = torch.tensor([scale] * 4 + [1.0], dtype=per_image.dtype, device=per_image.device)
    return torch.unbind_copy((reduced * factor).to(dtype), -1)
