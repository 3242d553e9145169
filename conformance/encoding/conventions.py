"""The conventions an encoder may follow: the oracle's (docs/spec.md, "Targets from boxes"), with
its duplicates policy, and the classic bugs of public encoders, each a knob of
:class:`Conventions` so that one encoder (:func:`encode_with`) makes the grid of any combination.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from yolov1_loss.reference.encode import DUPLICATES, cell_of, kept

OFFSETS = ("cell", "image", "image_cells")
SIZES = ("image", "cells")


@dataclass(frozen=True)
class Conventions:
    """How an encoder places a box: ``swapped`` row and column; ``offsets`` of the centre: inside
    its cell (the spec), as fractions of the image, or in cells from the image's corner; ``sizes``:
    fractions of the image (the spec) or multiplied by S; ``duplicates``: which box a cell keeps."""

    swapped: bool = False
    offsets: str = "cell"
    sizes: str = "image"
    duplicates: str = "first"

    @property
    def bugs(self) -> list[str]:
        """Each way it departs from the spec other than its duplicates policy, in words."""
        words = []
        if self.swapped:
            words.append(
                "row and column swapped: a centre (cx, cy) goes in cell (⌊cx·S⌋, ⌊cy·S⌋); the spec's cell is (row ⌊cy·S⌋, column ⌊cx·S⌋)"
            )
        if self.offsets == "image":
            words.append(
                "the offsets x, y are taken from the image's corner (cx, cy as fractions of the image); the spec's are inside the cell: cx·S − column"
            )
        if self.offsets == "image_cells":
            words.append(
                "the offsets x, y are taken from the image's corner in cell units (cx·S); the spec's are inside the cell: cx·S − column"
            )
        if self.sizes == "cells":
            words.append("w and h are multiplied by S (cell units); the spec's are fractions of the image")
        return words


CANDIDATES = tuple(
    Conventions(swapped, offsets, sizes, duplicates)
    for swapped, offsets, sizes, duplicates in itertools.product((False, True), OFFSETS, SIZES, DUPLICATES)
)


def duplicates_words(policy: str) -> str:
    """What a duplicates policy keeps, e.g. 'the last listed'."""
    return {"first": "the first listed", "last": "the last listed", "larger": "the larger (by area)"}[policy]


def encode_with(boxes: np.ndarray, labels, S: int, C: int, conventions: Conventions) -> np.ndarray:
    """One image's (M, 4) (cx, cy, w, h) fractions and (M,) labels → the (S, S, C + 5) grid an
    encoder following ``conventions`` makes (the oracle's :func:`reference.encode` under the
    spec's conventions)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    rows, cols = cell_of(boxes[:, 1], S), cell_of(boxes[:, 0], S)
    if conventions.swapped:
        rows, cols = cols, rows
    grid = np.zeros((S, S, C + 5))
    for m in kept(boxes, rows * S + cols, conventions.duplicates):
        cx, cy, w, h = boxes[m]
        if conventions.offsets == "cell":
            x, y = cx * S - cell_of(cx, S), cy * S - cell_of(cy, S)
        else:
            x, y = (cx, cy) if conventions.offsets == "image" else (cx * S, cy * S)
        scale = S if conventions.sizes == "cells" else 1
        grid[rows[m], cols[m], int(labels[m])] = 1.0
        grid[rows[m], cols[m], C:] = [1.0, x, y, w * scale, h * scale]
    return grid


def at_one(case) -> bool:
    """Whether a case (:class:`.cases.BoxCase`) has a centre at exactly 1.0."""
    return bool((case.boxes[:, :2] == 1.0).any())


def placed_words(case, grid: np.ndarray, C: int, who: str) -> str:
    """Where ``who`` ('the encoder', 'the loss') put the objects of a case with a centre at 1.0, in words."""
    cells = [f"({r}, {c})" for r, c in np.argwhere(grid[..., C] == 1)]
    where = f"cell {', '.join(cells)}" if cells else "no cell (it is dropped)"
    return f"{who} puts the object of {case.words} in {where}; the spec's cell is the last one, S − 1, along that axis"


def raised_words(raised: dict, who: str) -> list[str]:
    """What the errors of ``who`` say, in words: a centre at 1.0 that indexes cell S, else each."""
    edge = [words for words in raised if "1.0" in words]
    if raised and len(edge) == len(raised):
        first = raised[edge[0]]
        return [
            f"a centre at exactly 1.0 indexes cell S, which does not exist: ⌊1.0·S⌋ needs the clamp to the last cell, S − 1 (on {edge[0]} {who} raised {first})"
        ]
    return [f"{who} raised on {words}: {message}" for words, message in raised.items()]
