"""The walkthrough article's worked example (docs/spec.md, "The article's worked example"), as inputs and the article's numbers.

One image, S=7, B=2, C=20, an object of class 7 in cell (3, 3) with target box
(0.4, 0.5, 2.4, 3.2) in the article's units; each case sets a few predicted values in that cell
(or, for the noobj cases, removes the object) and reads one component. The article's values
are copied from the article, with the precision it prints.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from yolov1_loss.reference.spec import LossSpec

S, B, C = 7, 2, 20
CELL = (3, 3)
CLASS = 7
TARGET_BOX = (0.4, 0.5, 2.4, 3.2)


class ArticleCase(NamedTuple):
    number: int
    setup: str  # what the prediction holds, in the article's words
    component: str
    article_value: float
    tolerance: float  # half a unit in the last digit the article prints
    cell_box: tuple | None = None  # predictor 0's (x, y, w, h) in cell (3, 3); None: no object
    confidence: float = 0.0  # predictor 0's confidence in cell (3, 3)
    classes: tuple = ()  # (class, score) pairs in cell (3, 3)
    empty_cell_confidences: tuple = ()  # (ĉ_0, ĉ_1) of cell (1, 1), in the no-object cases


CASES = (
    ArticleCase(1, "box 0 = target box", "coord", 1.8e-13, 0.05e-13, TARGET_BOX),
    ArticleCase(2, "box 0 = (0.4, 0.5, 2.8, 4.0)", "coord", 0.0600, 0.5e-4, (0.4, 0.5, 2.8, 4.0)),
    ArticleCase(3, "box 0 = (0.3, 0.2, 3.2, 4.3)", "coord", 0.2385, 0.5e-4, (0.3, 0.2, 3.2, 4.3)),
    ArticleCase(4, "box 0 = target, confidence 1.0", "obj", 0.0, 0.5e-4, TARGET_BOX, 1.0),
    ArticleCase(5, "box 0 = target, confidence 0.9", "obj", 0.0100, 0.5e-4, TARGET_BOX, 0.9),
    ArticleCase(6, "box 0 = target, confidence 0.6", "obj", 0.1600, 0.5e-4, TARGET_BOX, 0.6),
    ArticleCase(7, "box 0 = target, p_7 = 1", "cls", 0.0, 0.0, TARGET_BOX, classes=((7, 1.0),)),
    ArticleCase(
        8, "box 0 = target, p_7 = 0.9, p_8 = 0.1", "cls", 0.0200, 0.5e-4, TARGET_BOX, classes=((7, 0.9), (8, 0.1))
    ),
    ArticleCase(
        9, "box 0 = target, p_7 = 0.2, p_8 = 0.8", "cls", 1.2800, 0.5e-4, TARGET_BOX, classes=((7, 0.2), (8, 0.8))
    ),
    ArticleCase(10, "no object anywhere, all zero", "noobj", 0.0, 0.0),
    ArticleCase(
        11, "no object; cell (1, 1): confidences 0.2, 0.3", "noobj", 0.1300, 0.5e-4, empty_cell_confidences=(0.2, 0.3)
    ),
)


def case_inputs(case: ArticleCase, spec: LossSpec | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The case's (pred (1, 7, 7, 30), target (1, 7, 7, 25)) in the canonical layout.

    ``spec`` may change the dialect but must keep S=7, B=2, C=20.
    """
    if spec is not None and (spec.S, spec.B, spec.C) != (S, B, C):
        raise ValueError(f"the article's example has S={S}, B={B}, C={C}, got {spec.S}, {spec.B}, {spec.C}")
    pred = np.zeros((1, S, S, C + 5 * B))
    target = np.zeros((1, S, S, C + 5))
    if case.cell_box is not None:
        target[(0, *CELL, CLASS)] = 1.0
        target[(0, *CELL, slice(C, C + 5))] = (1.0, *TARGET_BOX)
        pred[(0, *CELL, slice(C, C + 5))] = (case.confidence, *case.cell_box)
        for k, score in case.classes:
            pred[(0, *CELL, k)] = score
    for b, confidence in enumerate(case.empty_cell_confidences):
        pred[0, 1, 1, C + 5 * b] = confidence
    return pred, target
