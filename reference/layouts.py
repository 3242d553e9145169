"""Layout adapters: index maps between the canonical layout and the other layouts real code uses.

Canonical ("classes-first"), per cell:
    prediction ``[p_1 … p_C, (c, x, y, w, h) × B]``,  target ``[q_1 … q_C, o, x, y, w, h]``.
"boxes-first" (motokimura and others), per cell:
    prediction ``[(x, y, w, h, c) × B, p_1 … p_C]``,  target ``[(x, y, w, h, o) × B, q_1 … q_C]``
    (the target's box repeated in each of the B slots).
"classes-first-conf-last" (seen in public code), per cell:
    prediction ``[p_1 … p_C, (x, y, w, h, c) × B]``,  target ``[q_1 … q_C, x, y, w, h, o]``.
"darknet" planar, per image (cell index ``row·S + col``):
    prediction ``[S²·C class values][S²·B confidences][S²·B·4 boxes]``,
    target ``[(o, q_1 … q_C, x, y, w, h) per cell]``.
"channels-first", as a convolutional head gives it: the canonical channels on the second axis,
    prediction (N, C + 5B, S, S), target (N, C + 5, S, S): channel k of cell (i, j) at ``[n, k, i, j]``.

Every adapter is a gather along the flattened per-image values, so it works on NumPy arrays
and torch tensors alike and never copies more than the result. Gradients have the
prediction's layout and use the prediction adapters.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

LAYOUTS = ("classes-first", "boxes-first", "classes-first-conf-last", "darknet", "channels-first")


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; layouts are {', '.join(LAYOUTS)}")


def _canonical_pred_index(S: int, B: int, C: int) -> np.ndarray:
    """(S, S, C + 5B) array: the canonical flat position of each (row, col, channel)."""
    return np.arange(S * S * (C + 5 * B)).reshape(S, S, C + 5 * B)


@lru_cache(maxsize=64)
def pred_gather(layout: str, S: int, B: int, C: int) -> np.ndarray:
    """Flat index array g: ``pred_in_layout_flat = canonical_flat[..., g]``."""
    _check_layout(layout)
    canon = _canonical_pred_index(S, B, C)
    classes = canon[..., :C]  # (S, S, C)
    boxes = canon[..., C:].reshape(S, S, B, 5)  # (S, S, B, [c, x, y, w, h])
    if layout == "classes-first":
        order = canon.reshape(-1)
    elif layout == "channels-first":
        order = canon.transpose(2, 0, 1).reshape(-1)
    elif layout == "boxes-first":
        xywhc = boxes[..., [1, 2, 3, 4, 0]].reshape(S, S, 5 * B)
        order = np.concatenate([xywhc, classes], axis=-1).reshape(-1)
    elif layout == "classes-first-conf-last":
        xywhc = boxes[..., [1, 2, 3, 4, 0]].reshape(S, S, 5 * B)
        order = np.concatenate([classes, xywhc], axis=-1).reshape(-1)
    else:
        order = np.concatenate([classes.reshape(-1), boxes[..., 0].reshape(-1), boxes[..., 1:].reshape(-1)])
    order.setflags(write=False)
    return order


@lru_cache(maxsize=64)
def target_gather(layout: str, S: int, B: int, C: int) -> np.ndarray:
    """Flat index array g: ``target_in_layout_flat = canonical_target_flat[..., g]``.

    For boxes-first, g repeats the target box B times, so this map is not one-to-one.
    """
    _check_layout(layout)
    canon = np.arange(S * S * (C + 5)).reshape(S, S, C + 5)
    classes, o, xywh = canon[..., :C], canon[..., C : C + 1], canon[..., C + 1 :]
    if layout == "classes-first":
        order = canon.reshape(-1)
    elif layout == "channels-first":
        order = canon.transpose(2, 0, 1).reshape(-1)
    elif layout == "boxes-first":
        slot = np.concatenate([xywh, o], axis=-1)  # (S, S, 5): x, y, w, h, o
        order = np.concatenate([np.tile(slot, (1, 1, B)), classes], axis=-1).reshape(-1)
    elif layout == "classes-first-conf-last":
        order = np.concatenate([classes, xywh, o], axis=-1).reshape(-1)
    else:
        order = np.concatenate([o, classes, xywh], axis=-1).reshape(-1)
    order.setflags(write=False)
    return order


def _inverse(gather: np.ndarray, size: int) -> np.ndarray:
    """For each canonical position, the first layout position that holds it."""
    inverse = np.full(size, -1)
    inverse[gather[::-1]] = np.arange(len(gather))[::-1]  # later writes win: the first one
    return inverse


def _take(flat, index: np.ndarray):
    """``flat[:, index]`` for a NumPy array or a torch tensor (which wants a writable index)."""
    return flat[:, np.array(index)]


def _flat(x, per_image: int, what: str):
    if x.ndim < 2 or int(np.prod(x.shape[1:])) != per_image:
        raise ValueError(f"{what}: expected N images of {per_image} values each, got shape {tuple(x.shape)}")
    return x.reshape(x.shape[0], per_image)


def _in_layout(flat, layout: str, S: int):
    """(N, S²·K) values in ``layout``'s order → the layout's own shape: (N, S²·K) darknet,
    (N, K, S, S) channels-first, (N, S, S, K) otherwise."""
    if layout == "darknet":
        return flat
    channels = flat.shape[1] // (S * S)
    if layout == "channels-first":
        return flat.reshape(flat.shape[0], channels, S, S)
    return flat.reshape(flat.shape[0], S, S, channels)


def pred_to_canonical(pred, layout: str, S: int, B: int, C: int):
    """A prediction (or gradient) in ``layout`` → canonical, shape (N, S, S, C + 5B)."""
    g = pred_gather(layout, S, B, C)
    flat = _flat(pred, len(g), f"{layout} prediction")
    return _take(flat, _inverse(g, len(g))).reshape(flat.shape[0], S, S, C + 5 * B)


def pred_from_canonical(pred, layout: str, S: int, B: int, C: int):
    """A canonical prediction (or gradient) → ``layout``: (N, S, S, C + 5B), (N, C + 5B, S, S)
    channels-first, or (N, S²(C + 5B)) darknet."""
    g = pred_gather(layout, S, B, C)
    return _in_layout(_take(_flat(pred, len(g), "canonical prediction"), g), layout, S)


def target_to_canonical(target, layout: str, S: int, B: int, C: int):
    """A target in ``layout`` → canonical, shape (N, S, S, C + 5).

    For boxes-first, the B box slots of a cell must agree (a ValueError names the first cell
    where they do not), since the canonical target has room for one box.
    """
    g = target_gather(layout, S, B, C)
    flat = _flat(target, len(g), f"{layout} target")
    canonical = _take(flat, _inverse(g, S * S * (C + 5)))
    if layout == "boxes-first" and B > 1:
        echoed = _take(canonical, g)
        differs = np.asarray(echoed != flat)
        if differs.any():
            n, k = np.argwhere(differs)[0]
            cell, channel = divmod(int(k), 5 * B + C)
            raise ValueError(
                f"boxes-first target[{n}, {cell // S}, {cell % S}]: box slot {channel // 5} "
                f"differs from slot 0; the target box must be repeated in all {B} slots"
            )
    return canonical.reshape(flat.shape[0], S, S, C + 5)


def target_from_canonical(target, layout: str, S: int, B: int, C: int):
    """A canonical target → ``layout``: (N, S, S, 5B + C) boxes-first, (N, C + 5, S, S)
    channels-first, (N, S²(C + 5)) darknet, else (N, S, S, C + 5)."""
    g = target_gather(layout, S, B, C)
    return _in_layout(_take(_flat(target, S * S * (C + 5), "canonical target"), g), layout, S)
