"""The grid target from a list of boxes (:func:`encode`), and back (:func:`decode`).

docs/spec.md, "Targets from boxes": a box's centre (cx, cy), as fractions of the image, lies in
cell (row, col) = (⌊cy·S⌋, ⌊cx·S⌋), a centre at exactly 1.0 in the last cell; the target cell holds
the class one-hot, o = 1, the centre's offset inside the cell (x, y) = (cx·S − col, cy·S − row)
and the box's size (w, h) as fractions of the image. Where two centres fall in one cell, one box
is kept: the first listed, the last, or the larger (by area; the first of equal areas).
"""

from __future__ import annotations

import numpy as np

BOX_FORMATS = ("cxcywh", "xyxy")
DUPLICATES = ("first", "last", "larger")


def _box_words(image: int, m: int, box) -> str:
    return f"image {image}, box {m} {tuple(float(v) for v in box)}"


def to_fractions(boxes, box_format: str = "cxcywh", image_size=None) -> np.ndarray:
    """(M, 4) boxes in ``box_format`` (cx, cy, w, h or x1, y1, x2, y2), in pixels of
    ``image_size`` = (W, H) or fractions of the image (None) → (M, 4) float64 (cx, cy, w, h) in
    fractions of the image."""
    if box_format not in BOX_FORMATS:
        raise ValueError(f"box_format must be one of {BOX_FORMATS}, got {box_format!r}")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if box_format == "xyxy":
        low, high = boxes[:, :2], boxes[:, 2:]
        boxes = np.concatenate([(low + high) / 2, high - low], axis=1)
    if image_size is not None:
        W, H = image_size
        boxes = boxes / np.array([W, H, W, H], dtype=np.float64)
    return boxes


def from_fractions(boxes, box_format: str = "cxcywh", image_size=None) -> np.ndarray:
    """The inverse of :func:`to_fractions`: (M, 4) (cx, cy, w, h) fractions → ``box_format``, in
    pixels of ``image_size`` where given."""
    if box_format not in BOX_FORMATS:
        raise ValueError(f"box_format must be one of {BOX_FORMATS}, got {box_format!r}")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if image_size is not None:
        W, H = image_size
        boxes = boxes * np.array([W, H, W, H], dtype=np.float64)
    if box_format == "xyxy":
        centre, size = boxes[:, :2], boxes[:, 2:]
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    return boxes


def check_boxes(boxes: np.ndarray, labels: np.ndarray, C: int, image: int = 0, given=None) -> None:
    """Refuse (ValueError naming the image and the box) a non-finite value, a centre outside the
    image, a negative size, a class that is not an integer in [0, C). ``boxes``: (M, 4) (cx, cy,
    w, h) fractions; ``given``: the boxes as the caller wrote them, quoted in the message."""
    given = boxes if given is None else np.asarray(given, dtype=np.float64).reshape(-1, 4)
    if len(labels) != len(boxes):
        raise ValueError(f"image {image}: {len(boxes)} boxes but {len(labels)} labels")
    for m, ((cx, cy, w, h), label) in enumerate(zip(boxes, labels)):
        where = _box_words(image, m, given[m])
        if not np.all(np.isfinite([cx, cy, w, h, label])):
            raise ValueError(f"{where}: values must be finite (label {label})")
        if not (0 <= cx <= 1 and 0 <= cy <= 1):
            raise ValueError(f"{where}: its centre ({cx:g}, {cy:g}) lies outside the image (fractions 0 to 1)")
        if w < 0 or h < 0:
            raise ValueError(f"{where}: negative size (w {w:g}, h {h:g})")
        if label != int(label) or not 0 <= label < C:
            raise ValueError(f"{where}: class {label} is not an integer from 0 to {C - 1}")


def cell_of(centre, S: int):
    """The cell index along one axis of a centre given as a fraction of the image: ⌊centre·S⌋,
    with a centre at exactly 1.0 in the last cell (S − 1)."""
    return np.minimum(np.floor(np.asarray(centre, dtype=np.float64) * S), S - 1).astype(int)


def kept(boxes: np.ndarray, cells, duplicates: str = "first") -> np.ndarray:
    """Indices of the boxes kept, one per occupied cell: of those sharing a cell, the first listed,
    the last, or the larger by area (the first of equal areas). ``cells``: (M,) flat cell indices."""
    if duplicates not in DUPLICATES:
        raise ValueError(f"duplicates must be one of {DUPLICATES}, got {duplicates!r}")
    chosen = {}
    for m, cell in enumerate(cells):
        if cell not in chosen or duplicates == "last":
            chosen[cell] = m
        elif duplicates == "larger":
            area = boxes[m, 2] * boxes[m, 3]
            if area > boxes[chosen[cell], 2] * boxes[chosen[cell], 3]:
                chosen[cell] = m
    return np.array(sorted(chosen.values()), dtype=int)


def encode(
    boxes,
    labels,
    S: int,
    C: int,
    *,
    box_format: str = "cxcywh",
    image_size=None,
    duplicates: str = "first",
    image: int = 0,
) -> np.ndarray:
    """One image's boxes → its canonical target, float64 (S, S, C + 5): per cell
    ``[q_1 … q_C, o, x, y, w, h]``.

    ``boxes``: (M, 4) in ``box_format`` ('cxcywh' or 'xyxy'), fractions of the image, or pixels
    of ``image_size`` = (W, H); ``labels``: (M,) class indices from 0. ``duplicates``: which box
    a cell keeps when several centres fall in it ('first', 'last', 'larger'). ``image``: the
    image's index, named in errors. Raises ValueError on a box it refuses (:func:`check_boxes`).
    """
    fractions = to_fractions(boxes, box_format, image_size)
    labels = np.asarray(labels, dtype=np.float64).reshape(-1)
    check_boxes(fractions, labels, C, image, given=boxes)
    target = np.zeros((S, S, C + 5))
    rows, cols = cell_of(fractions[:, 1], S), cell_of(fractions[:, 0], S)
    for m in kept(fractions, rows * S + cols, duplicates):
        cx, cy, w, h = fractions[m]
        row, col = rows[m], cols[m]
        target[row, col, int(labels[m])] = 1.0
        target[row, col, C:] = [1.0, cx * S - col, cy * S - row, w, h]
    return target


def encode_batch(boxes, labels, S: int, C: int, **options) -> np.ndarray:
    """A batch: ``boxes`` and ``labels`` lists of per-image (M_i, 4) and (M_i,) arrays → (N, S, S,
    C + 5); ``options`` as :func:`encode`'s."""
    if len(boxes) != len(labels):
        raise ValueError(f"{len(boxes)} images of boxes but {len(labels)} of labels")
    grids = [encode(b, ls, S, C, image=n, **options) for n, (b, ls) in enumerate(zip(boxes, labels))]
    return np.stack(grids) if grids else np.zeros((0, S, S, C + 5))


def decode(target, *, box_format: str = "cxcywh", image_size=None):
    """A canonical target's boxes: for (S, S, C + 5), one image's ((M, 4) boxes, (M,) labels); for
    (N, S, S, C + 5), a list of those per image. Boxes in ``box_format``, fractions of the image
    (or pixels of ``image_size``), in the order of the cells (row by row); a label is the class
    whose score is highest. For any target :func:`encode` makes, ``encode(*decode(t))`` is ``t``
    up to rounding."""
    target = np.asarray(target, dtype=np.float64)
    if target.ndim == 4:
        return [decode(t, box_format=box_format, image_size=image_size) for t in target]
    S, C = target.shape[0], target.shape[-1] - 5
    rows, cols = np.nonzero(target[..., C] == 1)
    x, y, w, h = np.moveaxis(target[rows, cols, C + 1 :], -1, 0)
    fractions = np.stack([(cols + x) / S, (rows + y) / S, w, h], axis=-1)
    labels = np.argmax(target[rows, cols, :C], axis=-1) if C else np.zeros(len(rows), dtype=int)
    return from_fractions(fractions, box_format, image_size), labels
