"""A YOLOv1 loss that takes its targets as boxes, as many public losses do: per image a tensor of
[class, cx, cy, w, h] rows (fractions of the image), encoded into the grid inside the loss.

    yolov1-loss check examples/boxes_loss.py:BoxesLoss --targets boxes
"""

import torch

from yolov1_loss import YoloV1Loss, encode

S, B, C = 7, 2, 20


class BoxesLoss:
    def __init__(self):
        self.loss = YoloV1Loss(preset="paper", S=S, B=B, C=C)

    def __call__(self, pred, targets):
        # The batch's boxes padded into one tensor, labels -1 where an image has fewer.
        M = max([len(t) for t in targets] + [1])
        boxes = pred.new_zeros(len(targets), M, 4)
        labels = torch.full((len(targets), M), -1, dtype=torch.long, device=pred.device)
        for n, t in enumerate(targets):
            boxes[n, : len(t)], labels[n, : len(t)] = t[:, 1:], t[:, 0].long()
        return self.loss(pred, encode(boxes, labels, S, C)).total
