"""An example YOLOv1 loss in JAX, written the way JAX users write one: a pure function of
``(pred, target)`` on arrays, meant to run under ``jax.jit`` with its gradient from ``jax.grad``.

It computes the paper's loss (dialect ``paper``): the network outputs √w and √h, the IoU compares
boxes in image units (centres divided by the grid side), the confidence target is the IoU with
no gradient through it, every predictor but the responsible one pays the no-object term, and the
total is summed over the batch. Inputs are classes first: per cell the C class scores, then
(c, x, y, w, h) for each of the B predictors; the target holds (o, x, y, w, h) after its classes.

    yolov1-loss check examples/jax_loss.py:yolo_loss --framework jax
"""

import jax
import jax.numpy as jnp

L_COORD, L_NOOBJ = 5.0, 0.5


def box_iou(centre, size, t_centre, t_size):
    """IoU of boxes given by centre and size (..., 2); 0 where both are empty."""
    top_left = jnp.maximum(centre - size / 2, t_centre - t_size / 2)
    bottom_right = jnp.minimum(centre + size / 2, t_centre + t_size / 2)
    overlap = jnp.clip(bottom_right - top_left, 0.0)
    inter = overlap[..., 0] * overlap[..., 1]
    union = jnp.abs(size[..., 0] * size[..., 1]) + jnp.abs(t_size[..., 0] * t_size[..., 1]) - inter
    return jnp.where(union > 0, inter / jnp.where(union > 0, union, 1.0), 0.0)


def yolo_loss(pred, target):
    S, C = pred.shape[1], target.shape[-1] - 5
    B = (pred.shape[-1] - C) // 5
    has_obj = target[..., C]  # (N, S, S)
    boxes = pred[..., C:].reshape(*pred.shape[:3], B, 5)  # (N, S, S, B, [c, x, y, w, h])
    conf, xy, sqrt_wh = boxes[..., 0], boxes[..., 1:3], boxes[..., 3:5]
    t_xy, t_wh = target[..., None, C + 1 : C + 3], target[..., None, C + 3 : C + 5]

    ious = box_iou(xy / S, sqrt_wh**2, t_xy / S, t_wh)  # (N, S, S, B)
    resp = jax.nn.one_hot(jnp.argmax(ious, axis=-1), B, dtype=pred.dtype)
    best_iou = jax.lax.stop_gradient(jnp.sum(ious * resp, axis=-1))

    xy_err = jnp.sum(resp[..., None] * (xy - t_xy) ** 2, axis=(-2, -1))
    wh_err = jnp.sum(resp[..., None] * (sqrt_wh - jnp.sqrt(t_wh)) ** 2, axis=(-2, -1))
    obj_err = (jnp.sum(resp * conf, axis=-1) - best_iou) ** 2
    noobj_err = jnp.sum((1.0 - has_obj[..., None] * resp) * conf**2, axis=-1)
    class_err = jnp.sum((pred[..., :C] - target[..., :C]) ** 2, axis=-1)

    per_cell = has_obj * (L_COORD * (xy_err + wh_err) + obj_err + class_err) + L_NOOBJ * noobj_err
    return jnp.sum(per_cell)
