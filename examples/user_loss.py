"""An example YOLOv1 loss, written the way people write their own: the input to ``yolov1-loss check``.

It uses the boxes-first layout (per cell: (x, y, w, h, conf) for each of the two boxes, then
the 20 class scores; the target repeats its box in both slots), sigmoid-style box sizes whose
square root it takes, an IoU with centres divided by the grid size, a confidence target equal
to the IoU but detached, and the mean over the batch.

    yolov1-loss check examples/user_loss.py:YoloLoss --layout boxes-first
"""

import torch
from torch import nn


class YoloLoss(nn.Module):
    def __init__(self, S=7, B=2, C=20, l_coord=5.0, l_noobj=0.5):
        super().__init__()
        self.S, self.B, self.C = S, B, C
        self.l_coord, self.l_noobj = l_coord, l_noobj

    def iou(self, box, target_box):
        # boxes are (x, y, w, h): x, y inside the cell, w, h relative to the image
        S = self.S
        b_xy, t_xy = box[..., :2] / S, target_box[..., :2] / S
        b_min, b_max = b_xy - box[..., 2:4] / 2, b_xy + box[..., 2:4] / 2
        t_min, t_max = t_xy - target_box[..., 2:4] / 2, t_xy + target_box[..., 2:4] / 2
        wh = (torch.min(b_max, t_max) - torch.max(b_min, t_min)).clamp(min=0)
        inter = wh[..., 0] * wh[..., 1]
        area_b = box[..., 2] * box[..., 3]
        area_t = target_box[..., 2] * target_box[..., 3]
        union = area_b + area_t - inter
        # two empty boxes: IoU 0 (dividing by 1 keeps NaN out of the backward pass too)
        return inter / torch.where(union > 0, union, torch.ones_like(union))

    def forward(self, pred, target):
        N = pred.shape[0]
        obj_mask = target[..., 4] == 1
        noobj_mask = ~obj_mask

        # no-object cells: every box's confidence should be 0
        noobj_loss = sum((pred[..., 5 * b + 4][noobj_mask] ** 2).sum() for b in range(self.B))

        p = pred[obj_mask]  # (M, 5B + C)
        t = target[obj_mask]
        target_box = t[:, 0:4]
        ious = torch.stack([self.iou(p[:, 5 * b : 5 * b + 4], target_box) for b in range(self.B)], dim=1)
        best_iou, best = ious.max(dim=1)
        rows = torch.arange(p.shape[0])
        boxes = p[:, : 5 * self.B].reshape(-1, self.B, 5)
        resp = boxes[rows, best]  # (M, 5)

        xy_loss = ((resp[:, :2] - target_box[:, :2]) ** 2).sum()
        wh_loss = ((resp[:, 2:4].sqrt() - target_box[:, 2:4].sqrt()) ** 2).sum()
        obj_loss = ((resp[:, 4] - best_iou.detach()) ** 2).sum()
        class_loss = ((p[:, 5 * self.B :] - t[:, 5 * self.B :]) ** 2).sum()

        total = self.l_coord * (xy_loss + wh_loss) + obj_loss + self.l_noobj * noobj_loss + class_loss
        return total / max(N, 1)
