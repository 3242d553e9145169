"""Seeded, plausible batches to time the loss on: a trained detector's predictions near their targets."""

from __future__ import annotations

import numpy as np
import torch

from yolov1_loss.reference import LossSpec

OBJECT_FRACTION = 0.25  # share of cells that hold an object's centre


def make_batch(spec: LossSpec, n: int, *, seed: int = 0, dtype=torch.float32, device="cpu"):
    """(pred (n, S, S, C + 5B), target (n, S, S, C + 5)) as torch tensors, drawn from ``seed``.

    Targets: an object in about a quarter of the cells, one-hot classes, x, y in [0, 1], w, h in
    [0.05, 0.9]. Predictions: class scores and confidences in [0, 1], boxes within those ranges,
    so every size is positive and valid under every wh_mode. The draw is made in float64 and
    then cast, so a float32 batch and its bfloat16 copy hold the same values up to rounding.
    """
    rng = np.random.default_rng(seed)
    S, B, C = spec.S, spec.B, spec.C
    grid = (n, S, S)
    has_object = rng.random(grid) < OBJECT_FRACTION
    classes = np.eye(C)[rng.integers(0, C, grid)] * has_object[..., None]
    target_box = np.concatenate([rng.random((*grid, 2)), rng.uniform(0.05, 0.9, (*grid, 2))], axis=-1)
    target = np.concatenate([classes, has_object[..., None], target_box * has_object[..., None]], axis=-1)

    confidence = rng.random((*grid, B, 1))
    box = np.concatenate([rng.random((*grid, B, 2)), rng.uniform(0.05, 0.9, (*grid, B, 2))], axis=-1)
    boxes = np.concatenate([confidence, box], axis=-1).reshape(*grid, 5 * B)
    pred = np.concatenate([rng.random((*grid, C)), boxes], axis=-1)
    return (
        torch.from_numpy(pred).to(device=device, dtype=dtype),
        torch.from_numpy(target).to(device=device, dtype=dtype),
    )
