"""A naive YOLOv1 loss, written the way the widely copied PyTorch versions are written.

It is the baseline the project's paths are timed against, so it keeps that style on purpose:
one slice per term, the IoU of every predictor stacked and reduced with ``torch.max``, masks
multiplied in, and one ``MSELoss(reduction="sum")`` call per term. Written here from the spec,
not copied. It computes the ``ml_collection`` dialect (cell-scope noobj, IoU in the raw frame
with ε = 1e-6, signed square roots with ε inside the abs, confidence target 1, sum), for any
S, B and C; unlike the copied code it writes nothing in place, so its backward works.
"""

from __future__ import annotations

import torch
from torch import nn

from yolov1_loss.reference import LossSpec
from yolov1_loss.reference.spec import WEIGHTS

DIALECT = "ml_collection"

_mse = nn.MSELoss(reduction="sum")


def naive_iou(boxes: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of centre-size boxes (..., 4) with target boxes (..., 4), as (..., 1)."""
    p_lo, p_hi = boxes[..., 0:2] - boxes[..., 2:4] / 2, boxes[..., 0:2] + boxes[..., 2:4] / 2
    t_lo, t_hi = target[..., 0:2] - target[..., 2:4] / 2, target[..., 0:2] + target[..., 2:4] / 2
    lo, hi = torch.max(p_lo, t_lo), torch.min(p_hi, t_hi)
    overlap = (hi - lo).clamp(min=0)
    inter = overlap[..., 0:1] * overlap[..., 1:2]
    area_p = (boxes[..., 2:3] * boxes[..., 3:4]).abs()
    area_t = (target[..., 2:3] * target[..., 3:4]).abs()
    return inter / (area_p + area_t - inter + 1e-6)


def naive_loss(pred: torch.Tensor, target: torch.Tensor, spec: LossSpec) -> torch.Tensor:
    """The ``ml_collection`` total of ``pred`` (N, S, S, C + 5B) or flat against ``target`` (N, S, S, C + 5).

    Returns a 0-d tensor. ``spec`` gives S, B, C and the λ weights; its other knobs must be
    those of the ``ml_collection`` preset (see :func:`check_dialect`).
    """
    S, B, C = spec.S, spec.B, spec.C
    pred = pred.reshape(-1, S, S, C + 5 * B)
    target = target.reshape(-1, S, S, C + 5)
    exists = target[..., C : C + 1]
    target_box = target[..., C + 1 : C + 5]

    ious = torch.stack([naive_iou(pred[..., C + 5 * b + 1 : C + 5 * b + 5], target_box) for b in range(B)])
    _, best = torch.max(ious, dim=0)  # (N, S, S, 1); the first maximum wins a tie
    chosen = [(best == b).to(pred.dtype) for b in range(B)]

    box = exists * sum(chosen[b] * pred[..., C + 5 * b + 1 : C + 5 * b + 5] for b in range(B))
    box_wh = torch.sign(box[..., 2:4]) * torch.sqrt(torch.abs(box[..., 2:4] + 1e-6))
    box = torch.cat([box[..., 0:2], box_wh], dim=-1)
    box_target = exists * target_box
    box_target = torch.cat([box_target[..., 0:2], torch.sqrt(box_target[..., 2:4])], dim=-1)
    coord = _mse(box.flatten(end_dim=-2), box_target.flatten(end_dim=-2))

    confidence = sum(chosen[b] * pred[..., C + 5 * b : C + 5 * b + 1] for b in range(B))
    obj = _mse((exists * confidence).flatten(), (exists * exists).flatten())

    noobj = sum(
        _mse(((1 - exists) * pred[..., C + 5 * b : C + 5 * b + 1]).flatten(), ((1 - exists) * exists).flatten())
        for b in range(B)
    )

    cls = _mse((exists * pred[..., :C]).flatten(end_dim=-2), (exists * target[..., :C]).flatten(end_dim=-2))

    return spec.lambda_coord * coord + spec.lambda_obj * obj + spec.lambda_noobj * noobj + spec.lambda_class * cls


def check_dialect(spec: LossSpec) -> None:
    """Refuse (ValueError) a spec whose knobs, λ weights aside, are not ``ml_collection``'s."""
    dialect = LossSpec.preset(DIALECT, S=spec.S, B=spec.B, C=spec.C, **dict(zip(WEIGHTS, spec.weights())))
    if spec != dialect:
        differing = sorted(k for k, v in spec.knobs().items() if v != dialect.knobs()[k])
        raise ValueError(f"the naive baseline computes only the {DIALECT!r} dialect; this spec differs in {differing}")
