"""A dataset's encoder, as public code writes one: one image's boxes (M, 4) as cx, cy, w, h
fractions of the image and its (M,) class labels → the (S, S, C + 5) grid target.

    yolov1-loss check-encoder examples/encoder.py:encode
"""

import torch

S, C = 7, 20


def encode(boxes, labels):
    grid = torch.zeros(S, S, C + 5)
    for (cx, cy, w, h), label in zip(boxes.tolist(), labels.tolist()):
        col, row = min(int(cx * S), S - 1), min(int(cy * S), S - 1)  # a centre at 1.0 is in the last cell
        if grid[row, col, C] == 1:  # a cell holds one object: the first
            continue
        grid[row, col, label] = 1
        grid[row, col, C:] = torch.tensor([1, cx * S - col, cy * S - row, w, h])
    return grid
