"""Probes on which only one term of the loss can be non-zero, in every dialect.

Identification (:mod:`conformance.dialects.fitting`) fits a loss's total as a weighted sum of the oracle's
columns (:data:`COLUMNS`). On the general probes every column is non-zero at once, so a term that
no dialect computes spoils the fit of all of them. On these families only some columns are non-zero
under every candidate dialect, so each term's weight (and the knobs it depends on) is fitted on
its own, and a term that fits no dialect is named, with its own residual.

Every family's object cells hold a target box of size 1 × 1 (so √w = w and the box is the same
under every ``wh_mode``) and predictor 0 exactly on it (IoU 1 in both IoU frames, up to
``iou_eps``): it is responsible in every dialect, and its coord is 0. The other predictors lie
S + 2 cells to the right (IoU 0 in both frames). What a family changes from there:

- ``noobj``: no object anywhere, every confidence non-zero: only the empty cells' ĉ².
- ``noobj_object``: the other predictors' confidences non-zero: only their ĉ² (needs B ≥ 2).
- ``cls``: class scores off the target's: only cls.
- ``obj``: predictor 0's confidence off 1 (c* is 1 under both conf_target, as the IoU is 1): only obj.
- ``coord``: predictor 0's box moved and resized (its IoU stays the largest): coord, and obj,
  whose c* is then the IoU or 1 (no probe can move a box without changing its IoU).
- ``empty``: as ``noobj``, but the empty cells also hold class scores and boxes (against a zero
  target), which no dialect reads: a loss that applies cls or coord in every cell differs here.

In every other family an empty cell's target echoes its prediction's class scores and box (every
predictor of the cell holding the same box): the target of an empty cell is ignored, and a class
or box term applied in every cell adds nothing there, so that it spoils ``empty`` alone.
"""

from __future__ import annotations

import functools

import numpy as np

from yolov1_loss.conformance.dialects.catalogue import EFFECTIVE_WEIGHTS

# The columns of the fit: the unweighted components, noobj split between the empty cells and the
# object cells' non-responsible predictors (whose weights tell noobj_scope apart); their weights
# are the catalogue's weights as they act.
COLUMNS = EFFECTIVE_WEIGHTS

# family → the columns it makes non-zero
FAMILIES = {
    "noobj": ("noobj",),
    "noobj_object": ("noobj_object",),
    "cls": ("cls",),
    "obj": ("obj",),
    "coord": ("coord", "obj"),
    "empty": ("noobj",),
}

# family → its own term, the column it is there to fit (coord's family shows obj too); None for
# empty, whose probes hold no object: what a loss matches there is that it reads none of them.
OWN_TERM = {
    "noobj": "noobj",
    "noobj_object": "noobj_object",
    "cls": "cls",
    "obj": "obj",
    "coord": "coord",
    "empty": None,
}

# The families whose columns are the same under every candidate dialect (the exact predictor
# 0 makes them so): the oracle need evaluate them once per grid, not once per candidate. (Not
# obj's: iou_eps moves its c* = IoU off 1 by 1e-6, which shows in (c* − ĉ)² at 1e-5 relative.)
KNOB_FREE = ("noobj", "noobj_object", "cls", "empty")

# What each family's term is, in words.
TERM_WORDS = {
    "coord": "coord (box centres and sizes)",
    "obj": "obj (the responsible predictor's confidence)",
    "noobj": "noobj of empty cells",
    "noobj_object": "noobj of the object cells' other predictors",
    "cls": "cls (class scores)",
    "empty": "the class scores and boxes of empty cells (no term reads them)",
}

BATCH_SIZES = (1, 2, 3, 1, 2)  # varied, so that sum and mean part


def _object_cell(rng, S: int, B: int, C: int, family: str):
    """One object cell's (pred row, target row) for ``family``."""
    tx, ty = rng.uniform(0.2, 0.8, size=2)
    q = rng.uniform(size=C)
    target = np.concatenate([q, [1.0, tx, ty, 1.0, 1.0]])
    boxes = np.zeros((B, 5))
    boxes[0] = [1.0, tx, ty, 1.0, 1.0]
    for b in range(1, B):
        boxes[b, 1:] = [tx + S + 2 + b, ty, 0.5, 0.5]
    classes = q.copy()
    if family == "noobj_object":
        boxes[1:, 0] = rng.uniform(0.2, 0.9, size=B - 1) * rng.choice([-1, 1], size=B - 1)
    elif family == "cls":
        classes = q + rng.uniform(0.05, 0.3, size=C) * rng.choice([-1, 1], size=C)
    elif family == "obj":
        boxes[0, 0] = 1.0 + rng.uniform(0.1, 0.6) * rng.choice([-1, 1])
    elif family == "coord":
        boxes[0, 0] = rng.uniform(0.3, 0.9)
        boxes[0, 1:3] += rng.uniform(-0.2, 0.2, size=2)
        boxes[0, 3:] = rng.uniform(0.6, 1.4, size=2)
    return np.concatenate([classes, boxes.reshape(-1)]), target


def _batch(rng, S: int, B: int, C: int, family: str, n_images: int):
    pred = np.zeros((n_images, S, S, C + 5 * B))
    target = np.zeros((n_images, S, S, C + 5))
    pred[..., :C] = rng.uniform(-0.5, 0.5, size=(n_images, S, S, C))  # ignored in empty cells
    boxes = pred[..., C:].reshape(n_images, S, S, B, 5)
    if family == "empty":
        boxes[..., 1:] = rng.uniform(0.1, 0.9, size=(n_images, S, S, B, 4))
    else:  # one box per cell, echoed by the target with the class scores (see the module's docstring)
        boxes[..., 1:] = rng.uniform(0.1, 0.9, size=(n_images, S, S, 1, 4))
        target[..., :C] = pred[..., :C]
        target[..., C + 1 :] = boxes[..., 0, 1:]
    if family in ("noobj", "empty"):
        boxes[..., 0] = rng.uniform(0.1, 0.9, size=(n_images, S, S, B)) * rng.choice([-1, 1], size=(n_images, S, S, B))
    pred[..., C:] = boxes.reshape(n_images, S, S, 5 * B)
    if family not in ("noobj", "empty"):
        for n in range(n_images):
            for cell in rng.choice(S * S, size=min(S * S, 1 + n % 3), replace=False):
                pred[n, cell // S, cell % S], target[n, cell // S, cell % S] = _object_cell(rng, S, B, C, family)
    return pred, target


@functools.lru_cache(maxsize=8)
def family_probes(S: int, B: int, C: int) -> dict:
    """family → a list of (pred, target) batches, canonical layout, float64, read-only (made once
    per grid). ``noobj_object`` is left out where B = 1 (there is no other predictor)."""
    rng = np.random.default_rng(2)
    out = {}
    for family in FAMILIES:
        if family == "noobj_object" and B == 1:
            continue
        batches = [_batch(rng, S, B, C, family, n) for n in BATCH_SIZES]
        for batch in batches:
            for array in batch:
                array.setflags(write=False)
        out[family] = batches
    return out
