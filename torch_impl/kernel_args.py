"""A :class:`LossSpec` and the terms' weights as the compiled kernels take them.

Both kernels (numba's on the CPU, Triton's on CUDA) take the same knobs, built here once: numba
as positional arguments in the order of :class:`Knobs`, Triton as compile-time constants named
by the upper-cased fields. A knob added to the spec is added here and to the kernels' bodies.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch
from torch import Tensor

from yolov1_loss.reference import LossSpec
from yolov1_loss.reference.spec import DISTANCE_CAP, SIGNED_SQRT_EPS

# wh_mode as the kernels take it.
LINEAR, SQRT_OUTPUT, SQRT, SIGNED_SQRT, CLAMPED_SQRT = range(5)
WH_MODE_CODES = {
    "linear": LINEAR,
    "sqrt_output": SQRT_OUTPUT,
    "sqrt": SQRT,
    "signed_sqrt": SIGNED_SQRT,
    "clamped_sqrt": CLAMPED_SQRT,
}

# The weights of (coord, obj, noobj, cls): each a number, an (N,) tensor (one per image), or
# None for a term left out altogether (not even 0 · its gradient, which is NaN where that is ∞).
Weight = float | Tensor | None
Weights = tuple[Weight, Weight, Weight, Weight]


class Knobs(NamedTuple):
    """The spec as plain numbers: Python ints, floats and bools, so every spec gives the same
    argument types (one numba specialisation per dtype)."""

    S: int
    B: int
    C: int
    frame_scale: float  # what x, y are multiplied by in the IoU frame
    wh_mode: int  # a value of WH_MODE_CODES
    eps_inside: bool  # signed_sqrt's ε inside the abs
    conf_iou: bool  # c* = IoU (else 1)
    iou_through: bool  # gradient flows through c* into the box
    noobj_object_factor: float  # ρ: what the object cells' non-responsible predictors count for in noobj
    rmse_fallback: bool  # darknet's responsible-predictor fallback
    iou_eps: float
    sqrt_eps: float  # signed_sqrt's ε
    clamp_eps: float  # clamped_sqrt's ε
    distance_cap: float  # the fallback's cap on distances


@functools.lru_cache(maxsize=64)
def kernel_knobs(spec: LossSpec) -> Knobs:
    return Knobs(
        S=spec.S,
        B=spec.B,
        C=spec.C,
        frame_scale=spec.iou_frame_scale,
        wh_mode=WH_MODE_CODES[spec.wh_mode],
        eps_inside=spec.signed_sqrt_eps == "inside",
        conf_iou=spec.conf_target == "iou",
        iou_through=spec.iou_grad == "through",
        noobj_object_factor=spec.noobj_object_factor,
        rmse_fallback=spec.responsible == "max_iou_else_min_rmse",
        iou_eps=spec.iou_eps,
        sqrt_eps=SIGNED_SQRT_EPS,
        clamp_eps=spec.sqrt_clamp_eps,
        distance_cap=DISTANCE_CAP,
    )


class KernelWeights(NamedTuple):
    """:data:`Weights` as the kernels take them."""

    constant: tuple[float, float, float, float]  # the weights that are numbers (None, or per image: 0)
    used: tuple[bool, bool, bool, bool]  # which terms the weighted sum (and its gradient) includes
    per_image: Tensor | None  # (N, 4) float64 where any weight is per image, else None


def kernel_weights(weights: Weights, n_images: int) -> KernelWeights:
    used = tuple(w is not None for w in weights)
    if not any(isinstance(w, Tensor) for w in weights):
        return KernelWeights(tuple(0.0 if w is None else float(w) for w in weights), used, None)
    columns = [
        w.detach().to(torch.float64)
        if isinstance(w, Tensor)
        else torch.full((n_images,), w or 0.0, dtype=torch.float64, device=_device(weights))
        for w in weights
    ]
    return KernelWeights((0.0,) * 4, used, torch.stack(columns, dim=1))


def _device(weights: Weights):
    return next(w.device for w in weights if isinstance(w, Tensor))
