"""Encoders written from scratch as public code writes them (NumPy, one image: (M, 4) cx, cy, w, h
fractions and (M,) labels → (S, S, C + 5)), each right but for one classic bug, for S = 4, C = 3."""

import numpy as np

S, C = 4, 3


def _grid():
    return np.zeros((S, S, C + 5))


def _put(grid, row, col, label, x, y, w, h):
    grid[row, col] = 0
    grid[row, col, label] = 1
    grid[row, col, C:] = [1, x, y, w, h]


def correct(boxes, labels):
    grid = _grid()
    for (cx, cy, w, h), k in zip(boxes, labels):
        col, row = min(int(cx * S), S - 1), min(int(cy * S), S - 1)
        if grid[row, col, C] == 0:
            _put(grid, row, col, k, cx * S - col, cy * S - row, w, h)
    return grid


def keeps_larger(boxes, labels):
    grid, areas = _grid(), {}
    for (cx, cy, w, h), k in zip(boxes, labels):
        col, row = min(int(cx * S), S - 1), min(int(cy * S), S - 1)
        if w * h > areas.get((row, col), -1):
            areas[row, col] = w * h
            _put(grid, row, col, k, cx * S - col, cy * S - row, w, h)
    return grid


def swapped(boxes, labels):
    grid = _grid()
    for (cx, cy, w, h), k in zip(boxes, labels):
        col, row = min(int(cx * S), S - 1), min(int(cy * S), S - 1)
        if grid[col, row, C] == 0:
            _put(grid, col, row, k, cx * S - col, cy * S - row, w, h)
    return grid


def no_clamp(boxes, labels):
    grid = _grid()
    for (cx, cy, w, h), k in zip(boxes, labels):
        col, row = int(cx * S), int(cy * S)
        if grid[row, col, C] == 0:
            _put(grid, row, col, k, cx * S - col, cy * S - row, w, h)
    return grid


def offsets_from_image_corner(boxes, labels):
    grid = _grid()
    for (cx, cy, w, h), k in zip(boxes, labels):
        col, row = min(int(cx * S), S - 1), min(int(cy * S), S - 1)
        if grid[row, col, C] == 0:
            _put(grid, row, col, k, cx, cy, w, h)
    return grid


def sizes_times_S(boxes, labels):
    grid = _grid()
    for (cx, cy, w, h), k in zip(boxes, labels):
        col, row = min(int(cx * S), S - 1), min(int(cy * S), S - 1)
        if grid[row, col, C] == 0:
            _put(grid, row, col, k, cx * S - col, cy * S - row, w * S, h * S)
    return grid


def keeps_last(boxes, labels):
    grid = _grid()
    for (cx, cy, w, h), k in zip(boxes, labels):
        col, row = min(int(cx * S), S - 1), min(int(cy * S), S - 1)
        _put(grid, row, col, k, cx * S - col, cy * S - row, w, h)
    return grid


def channels_first(boxes, labels):
    """``correct``'s grid with the channels on the first axis, as a convolutional head's target."""
    return correct(boxes, labels).transpose(2, 0, 1)


def batched(boxes, labels):
    """``correct`` over lists of images, as a collate function calls it."""
    return np.stack([correct(b, ls) for b, ls in zip(boxes, labels)])


def corners(boxes, labels):
    """``correct`` for boxes given as corners (x1, y1, x2, y2)."""
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    return correct(np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], axis=1), labels)
