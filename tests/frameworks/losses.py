"""YOLOv1 losses in JAX and in TensorFlow, written from docs/spec.md's definitions, for the
framework tests: each module attribute is a loss ``loss(first, second)`` in one framework and one
dialect, correct or with one bug. The framework is imported on the first call only, so the
checker's process can load this module for a torch check without importing either.

One body of code serves both frameworks through :data:`OPS` (the few calls whose names differ);
the canonical layout (classes first), the first argument the prediction unless ``keras_order``.
"""

from __future__ import annotations

import time

# The dialects written here (docs/spec.md, Presets).
DIALECTS = {
    "paper": dict(noobj_scope="predictor", iou_frame="image", wh_mode="sqrt_output", iou_grad="detached", iou_eps=0.0),
    "article": dict(noobj_scope="cell", iou_frame="raw", wh_mode="signed_sqrt", iou_grad="through", iou_eps=1e-6),
}
LAMBDA_COORD, LAMBDA_NOOBJ = 5.0, 0.5


def _jax_ops() -> dict:
    import jax
    import jax.numpy as jnp

    @jax.custom_vjp
    def half_gradient_square(d):
        return d * d

    half_gradient_square.defvjp(lambda d: (d * d, d), lambda d, g: (d * g,))  # d(d²) is 2d·g: half of it
    return dict(sum=jnp.sum, maximum=jnp.maximum, minimum=jnp.minimum, where=jnp.where, sqrt=jnp.sqrt,
                abs=jnp.abs, sign=jnp.sign, stack=jnp.stack, concat=jnp.concatenate, argmax=jnp.argmax, one_hot=jax.nn.one_hot,
                stop_gradient=jax.lax.stop_gradient, boolean_mask=lambda x, m: x[m],
                half_gradient_square=half_gradient_square, value=float)  # fmt: skip


def _tf_ops() -> dict:
    import tensorflow as tf

    @tf.custom_gradient
    def half_gradient_square(d):
        return d * d, lambda g: d * g  # d(d²) is 2d·g: half of it

    return dict(sum=tf.reduce_sum, maximum=tf.maximum, minimum=tf.minimum, where=tf.where, sqrt=tf.sqrt,
                abs=tf.abs, sign=tf.sign, stack=tf.stack, concat=tf.concat, argmax=tf.argmax, one_hot=tf.one_hot,
                stop_gradient=tf.stop_gradient, boolean_mask=tf.boolean_mask,
                half_gradient_square=half_gradient_square, value=lambda x: x.numpy())  # fmt: skip


OPS = {"jax": _jax_ops, "tensorflow": _tf_ops}


class Loss:
    """The ``dialect``'s total in ``framework``, summed over the batch; ``bug`` one of BUGS or None.

    ``keras_order``: called as loss(target, pred), as Keras calls a loss. ``boxes_first``: inputs in
    the boxes-first layout (per cell (x, y, w, h, c) per predictor, then the classes).
    """

    def __init__(self, framework, dialect="paper", bug=None, keras_order=False, boxes_first=False):
        self.framework, self.knobs, self.bug = framework, DIALECTS[dialect], bug
        self.keras_order, self.boxes_first = keras_order, boxes_first
        self._ops = None

    def __call__(self, first, second):
        if self._ops is None:
            self._ops = OPS[self.framework]()
        pred, target = (second, first) if self.keras_order else (first, second)
        if self.boxes_first:
            pred, target = _classes_first(pred, target, self._ops)
        return total(pred, target, self.knobs, self._ops, self.bug)


def _classes_first(pred, target, ops):
    """Boxes-first (x, y, w, h, c) × B, classes → classes, (c, x, y, w, h) × B; the target's first box."""
    B = 2
    boxes = [pred[..., 5 * b : 5 * b + 5] for b in range(B)]
    classes = pred[..., 5 * B :]
    concat = [classes] + [ops["stack"]([box[..., 4], *(box[..., k] for k in range(4))], axis=-1) for box in boxes]
    t_classes, t_box = target[..., 5 * B :], target[..., 0:5]
    t = [t_classes, ops["stack"]([t_box[..., 4], *(t_box[..., k] for k in range(4))], axis=-1)]
    return ops["concat"](concat, axis=-1), ops["concat"](t, axis=-1)


# The bugs, each a port of one of conformance/mutants/zoo.py's, or a framework-specific one.
BUGS = (
    "swapped_lambdas",  # zoo SwappedLambdas
    "union_keeps_intersection",  # zoo UnionKeepsIntersection
    "class_loss_on_empty_cells",  # zoo ClassLossOnEmptyCells
    "responsible_pays_noobj",  # zoo ResponsiblePaysNoobj
    "half_gradient",  # zoo SquaredErrorHalfGradient: a hand-written gradient missing its factor 2
    "iou_target_detached",  # stop_gradient on the IoU target where the dialect lets gradient through
    "iou_target_through",  # zoo ConfTargetNotDetached: no stop_gradient where the dialect has one
    "eager_only",  # Python control flow on a tensor's value: fails compiled
    "raises_without_objects",  # raises on a batch with no object
    "hangs",  # never returns
)


def total(pred, target, knobs, ops, bug=None):
    """docs/spec.md's total, reduction 'sum', λ = (5, 1, 0.5, 1), on canonical (N, S, S, C + 5B) and (N, S, S, C + 5)."""
    C = target.shape[-1] - 5
    B = (pred.shape[-1] - C) // 5
    S = pred.shape[1]
    if bug == "hangs":
        while True:
            time.sleep(1)
    obj = target[..., C]  # (N, S, S)
    if bug == "raises_without_objects" and float(ops["sum"](obj)) == 0:
        raise ValueError("no object in the batch")
    if (
        bug == "eager_only" and ops["value"](ops["sum"](obj)) == 0
    ):  # (as users write it: float(x), x.numpy())  # (the same value: no object, no object terms)
        return LAMBDA_NOOBJ * ops["sum"](pred[..., C::5] ** 2)
    boxes = ops["stack"]([pred[..., C + 5 * b : C + 5 * b + 5] for b in range(B)], axis=-2)  # (N, S, S, B, 5)
    conf, xy, size = boxes[..., 0], boxes[..., 1:3], boxes[..., 3:5]
    t_xy, t_size = target[..., None, C + 1 : C + 3], target[..., None, C + 3 : C + 5]  # (N, S, S, 1, 2)

    iou = _iou(xy, size**2 if knobs["wh_mode"] == "sqrt_output" else size, t_xy, t_size, S, knobs, ops, bug)
    responsible = ops["one_hot"](ops["argmax"](iou, axis=-1), B, dtype=pred.dtype)  # ties: the lowest index
    iou_r = ops["sum"](iou * responsible, axis=-1)
    detached = knobs["iou_grad"] == "detached"
    if (bug == "iou_target_detached") or (detached and bug != "iou_target_through"):
        iou_r = ops["stop_gradient"](iou_r)
    square = ops["half_gradient_square"] if bug == "half_gradient" else (lambda d: d * d)

    r = responsible[..., None]
    if knobs["wh_mode"] == "sqrt_output":
        g = size
    else:  # signed_sqrt, ε outside
        g = ops["sign"](size) * ops["sqrt"](ops["abs"](size) + 1e-6)
    coord = ops["sum"](r * (square(xy - t_xy) + square(g - ops["sqrt"](t_size))), axis=(-2, -1))
    obj_term = square(iou_r - ops["sum"](conf * responsible, axis=-1))
    cls = ops["sum"](square(pred[..., :C] - target[..., :C]), axis=-1)
    conf2 = conf * conf
    others = 0.0 if knobs["noobj_scope"] == "cell" else 1.0
    if bug == "responsible_pays_noobj":
        others_conf = ops["sum"](conf2, axis=-1) * others
    else:
        others_conf = ops["sum"](conf2 * (1 - responsible), axis=-1) * others
    noobj = (1 - obj) * ops["sum"](conf2, axis=-1) + obj * others_conf
    lambda_coord, lambda_noobj = (
        (LAMBDA_NOOBJ, LAMBDA_COORD) if bug == "swapped_lambdas" else (LAMBDA_COORD, LAMBDA_NOOBJ)
    )
    cls_cells = 1.0 if bug == "class_loss_on_empty_cells" else obj
    per_cell = obj * (lambda_coord * coord + obj_term) + lambda_noobj * noobj + cls_cells * cls
    return ops["sum"](per_cell)


def _iou(xy, size, t_xy, t_size, S, knobs, ops, bug):
    """(N, S, S, B) IoU of each predictor's box with the target's, in the dialect's frame."""
    scale = 1.0 / S if knobs["iou_frame"] == "image" else 1.0
    lo = ops["maximum"](xy * scale - size / 2, t_xy * scale - t_size / 2)
    hi = ops["minimum"](xy * scale + size / 2, t_xy * scale + t_size / 2)
    overlap = ops["maximum"](hi - lo, 0.0)
    inter = overlap[..., 0] * overlap[..., 1]
    area_p = ops["abs"](size[..., 0] * size[..., 1])
    area_t = ops["abs"](t_size[..., 0] * t_size[..., 1])
    union = area_p + area_t + knobs["iou_eps"] - (0.0 if bug == "union_keeps_intersection" else inter)
    safe = ops["where"](union > 0, union, 0.0 * union + 1.0)  # a union of 0: IoU 0, gradient 0
    return ops["where"](union > 0, inter / safe, 0.0 * inter)


jax_paper = Loss("jax", "paper")
jax_article = Loss("jax", "article")
tf_paper = Loss("tensorflow", "paper", keras_order=True)
tf_article = Loss("tensorflow", "article", keras_order=True)
tf_paper_pred_first = Loss("tensorflow", "paper")  # a TF loss written as loss(pred, target)
jax_paper_boxes_first = Loss("jax", "paper", boxes_first=True)
for _bug in BUGS:
    globals()[f"jax_{_bug}"] = Loss("jax", "article" if _bug == "iou_target_detached" else "paper", _bug)
    globals()[f"tf_{_bug}"] = Loss("tensorflow", "article" if _bug == "iou_target_detached" else "paper", _bug, True)
