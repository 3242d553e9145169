"""An example YOLOv1 loss for Keras, written the way Keras users write one: a
``tf.keras.losses.Loss`` subclass whose ``call(y_true, y_pred)`` gives one value per image, for
``model.compile(loss=YoloLoss())``; Keras sums them (``reduction="sum"``).

It computes dialect ``ml_collection`` (the most copied PyTorch version, here in TensorFlow): the
IoU takes (x, y, w, h) as they are, the predicted sizes go through a signed square root
sign(v)·√|v + 1e-6|, the confidence target is 1, and only empty cells pay the no-object term.
Inputs are classes first: per cell the C class scores, then (c, x, y, w, h) for each of the B
predictors; the target holds (o, x, y, w, h) after its classes.

    yolov1-loss check examples/keras_loss.py:YoloLoss --framework keras
"""

import tensorflow as tf

EPS = 1e-6


def iou(box, t_box):
    """IoU of (..., 4) boxes (x, y, w, h), with EPS added to the union."""
    lo = tf.maximum(box[..., :2] - box[..., 2:] / 2, t_box[..., :2] - t_box[..., 2:] / 2)
    hi = tf.minimum(box[..., :2] + box[..., 2:] / 2, t_box[..., :2] + t_box[..., 2:] / 2)
    overlap = tf.maximum(hi - lo, 0.0)
    inter = overlap[..., 0] * overlap[..., 1]
    area = tf.abs(box[..., 2] * box[..., 3]) + tf.abs(t_box[..., 2] * t_box[..., 3])
    return inter / (area - inter + EPS)


class YoloLoss(tf.keras.losses.Loss):
    def __init__(self, lambda_coord=5.0, lambda_noobj=0.5, name="yolo_v1_loss"):
        super().__init__(reduction="sum", name=name)
        self.lambda_coord, self.lambda_noobj = lambda_coord, lambda_noobj

    def call(self, y_true, y_pred):
        C = y_true.shape[-1] - 5
        B = (y_pred.shape[-1] - C) // 5
        obj = y_true[..., C]  # (N, S, S)
        t_box = y_true[..., C + 1 : C + 5]
        boxes = tf.stack([y_pred[..., C + 5 * b : C + 5 * b + 5] for b in range(B)], axis=-2)  # (N, S, S, B, 5)
        ious = tf.stack([iou(boxes[..., b, 1:], t_box) for b in range(B)], axis=-1)
        resp = tf.one_hot(tf.argmax(ious, axis=-1), B, dtype=y_pred.dtype)  # (N, S, S, B)
        box = tf.reduce_sum(resp[..., None] * boxes, axis=-2)  # the responsible predictor's (c, x, y, w, h)

        wh = tf.sign(box[..., 3:5]) * tf.sqrt(tf.abs(box[..., 3:5] + EPS))
        coord = tf.reduce_sum((box[..., 1:3] - t_box[..., :2]) ** 2, -1) + tf.reduce_sum(
            (wh - tf.sqrt(t_box[..., 2:])) ** 2, -1
        )
        conf = (box[..., 0] - 1.0) ** 2
        noobj = tf.reduce_sum(boxes[..., 0] ** 2, axis=-1)
        classes = tf.reduce_sum((y_pred[..., :C] - y_true[..., :C]) ** 2, axis=-1)
        per_cell = obj * (self.lambda_coord * coord + conf + classes) + (1.0 - obj) * self.lambda_noobj * noobj
        return tf.reduce_sum(per_cell, axis=[1, 2])  # one value per image
