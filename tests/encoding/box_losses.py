"""Losses that take their targets as boxes and build the grid inside, written as public code writes
them (the encoder a loop over the boxes), for S = 4, C = 3; the loss itself is torch_impl's."""

import torch

from yolov1_loss import YoloV1Loss

S, B, C = 4, 2, 3


def _grid(boxes, keep_last=False, clamp=True, swapped=False):
    """(M, 5) rows [class, cx, cy, w, h], fractions → (S, S, C + 5)."""
    grid = torch.zeros(S, S, C + 5, dtype=boxes.dtype)
    for k, cx, cy, w, h in boxes.tolist():
        col, row = int(cx * S), int(cy * S)
        if clamp:
            col, row = min(col, S - 1), min(row, S - 1)
        x, y = cx * S - col, cy * S - row
        if swapped:  # (the cell only: the offsets are the spec's)
            col, row = row, col
        if grid[row, col, C] == 1 and not keep_last:
            continue
        grid[row, col] = 0
        grid[row, col, int(k)] = 1
        grid[row, col, C:] = torch.tensor([1, x, y, w, h], dtype=boxes.dtype)
    return grid


class PaperBoxes:
    """The paper's loss; targets a list of per-image (M_i, 5) [class, cx, cy, w, h] tensors."""

    keep_last, clamp, swapped = False, True, False

    def __init__(self):
        self.loss = YoloV1Loss(preset="paper", S=S, B=B, C=C, path="autograd")

    def __call__(self, pred, targets):
        grids = (
            torch.stack([_grid(t, self.keep_last, self.clamp, self.swapped) for t in targets])
            if len(targets)
            else pred.new_zeros(0, S, S, C + 5)
        )
        return self.loss(pred, grids).total


class KeepsLast(PaperBoxes):
    """The same with an encoder that keeps the last of two centres in one cell."""

    keep_last = True


class Swapped(PaperBoxes):
    """The same with an encoder that swaps row and column: the centre (cx, cy) goes in cell (⌊cx·S⌋, ⌊cy·S⌋)."""

    swapped = True


class NoClamp(PaperBoxes):
    """The same with an encoder that takes int(cx·S) without the clamp: a centre at 1.0 indexes cell S."""

    clamp = False


class ArticlePadded:
    """The article's loss; targets one (N, M, 5) tensor of [x1, y1, x2, y2, class] rows in pixels of a
    448 × 448 image, padded with rows of -1."""

    def __init__(self):
        self.loss = YoloV1Loss(preset="article", S=S, B=B, C=C, path="autograd")

    def __call__(self, pred, targets):
        grids = []
        for rows in targets:
            rows = rows[rows[:, 4] >= 0]
            corners, k = rows[:, :4] / 448, rows[:, 4:]
            centre, size = (corners[:, :2] + corners[:, 2:]) / 2, corners[:, 2:] - corners[:, :2]
            grids.append(_grid(torch.cat([k, centre, size], dim=1)))
        return self.loss(pred, torch.stack(grids) if grids else pred.new_zeros(0, S, S, C + 5)).total
