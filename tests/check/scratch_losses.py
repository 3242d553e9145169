"""YOLOv1 losses written from scratch in torch, the way people write their own, each with one of
the faults of issue 17: the inputs of tests/check/test_verdict.py, in this process or as a file
for ``yolov1-loss check tests/check/scratch_losses.py:NAME``.

Classes-first layout: pred (N, S, S, C + 5B), per cell C class scores then (c, x, y, w, h) per
predictor, with x, y in cell units and the network giving √w, √h (the paper); target
(N, S, S, C + 5), C class values then (o, x, y, w, h).
"""

from __future__ import annotations

import torch

from yolov1_loss import reference

S, B, C = 7, 2, 20


def yolo_loss(
    pred,
    target,
    S=S,
    B=B,
    C=C,
    raw_iou=False,
    divide_by_batch=False,
    confidence_to_one=False,
    l_coord=5.0,
    l_noobj=0.5,
    l_noobj_object=0.5,
    l_class=1.0,
):
    """The paper's loss, or one of the classic bugs: the IoU of cell-relative x, y with
    image-relative w, h (``raw_iou``); the total divided by the batch size; the responsible
    predictor's confidence pushed to 1 rather than its IoU. ``l_noobj_object`` weighs the
    no-object term of the object cells' other predictors (the paper: ``l_noobj``)."""
    n = pred.shape[0]
    has = target[..., C] == 1
    boxes = pred[..., C:].reshape(n, S, S, B, 5)
    conf, xy, root_wh = boxes[..., 0], boxes[..., 1:3], boxes[..., 3:5]
    t_xy, t_wh = target[..., None, C + 1 : C + 3], target[..., None, C + 3 : C + 5]
    k = 1.0 if raw_iou else 1.0 / S
    wh = root_wh * root_wh
    low = torch.maximum(k * xy - wh / 2, k * t_xy - t_wh / 2)
    high = torch.minimum(k * xy + wh / 2, k * t_xy + t_wh / 2)
    inter = (high - low).clamp(min=0).prod(-1)
    union = wh.prod(-1) + t_wh.prod(-1) - inter
    iou = torch.where(union > 0, inter / torch.where(union > 0, union, torch.ones_like(union)), torch.zeros_like(union))
    responsible = torch.nn.functional.one_hot(iou.argmax(-1), B).bool() & has[..., None]
    others = ~responsible & has[..., None]
    empty = ~has[..., None].expand_as(responsible)
    coord = (((xy - t_xy) ** 2).sum(-1) + ((root_wh - t_wh.sqrt()) ** 2).sum(-1))[responsible].sum()
    c_star = torch.ones_like(iou) if confidence_to_one else iou.detach()
    obj = ((conf - c_star) ** 2)[responsible].sum()
    noobj = l_noobj * (conf**2)[empty].sum() + l_noobj_object * (conf**2)[others].sum()
    cls = ((pred[..., :C] - target[..., :C]) ** 2).sum(-1)[has].sum()
    total = l_coord * coord + obj + noobj + l_class * cls
    return total / n if divide_by_batch else total


def paper(pred, target):
    return yolo_loss(pred, target)


def zero(pred, target):
    return 0 * pred.sum()


def no_class_term(pred, target):
    return yolo_loss(pred, target, l_class=0.0)


def raw_iou(pred, target):
    return yolo_loss(pred, target, raw_iou=True)


def divided_by_batch(pred, target):
    return yolo_loss(pred, target, divide_by_batch=True)


def confidence_to_one(pred, target):
    return yolo_loss(pred, target, confidence_to_one=True)


def nan_on_three_images(pred, target):
    """The paper's loss, but NaN on every batch of 3 images (ordinary input)."""
    total = yolo_loss(pred, target)
    return total * float("nan") if pred.shape[0] == 3 else total


def wrong_from_eight_images(pred, target):
    """The paper's loss, but from 8 images on the class term is left out."""
    return yolo_loss(pred, target, l_class=0.0 if pred.shape[0] >= 8 else 1.0)


def _canonical(pred, target):
    """Darknet's planar tensors, (N, S·S·(C + 5B)) and (N, S·S·(C + 5)), as canonical ones;
    anything else raises."""
    if pred.ndim != 2:
        raise ValueError(f"expected darknet's planar (N, {S * S * (C + 5 * B)}), got {tuple(pred.shape)}")
    return reference.pred_to_canonical(pred, "darknet", S, B, C), reference.target_to_canonical(
        target, "darknet", S, B, C
    )


def darknet_nan_on_some(pred, target):
    """The paper's loss on darknet's planar layout, plus 0 · log of image 0's first class score:
    NaN wherever that is negative (about half the probes). Any other layout raises."""
    return yolo_loss(*_canonical(pred, target)) + 0 * torch.log(pred[0, 0])


def darknet_zero(pred, target):
    """0 on darknet's planar layout; any other layout raises."""
    return 0 * _canonical(pred, target)[0].sum()


def nan_on_tiny_boxes(pred, target):
    """The paper's loss, but NaN on a batch holding a target box under 1/300 of the image wide
    (valid, ordinary input; the probes hold some)."""
    total = yolo_loss(pred, target)
    has = target[..., C] == 1
    tiny = (target[..., C + 3][has] < 1 / 300).any()
    return total * float("nan") if tiny else total
