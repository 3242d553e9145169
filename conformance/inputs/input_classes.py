"""Classes of valid input a loss may fail on, named in words a person can act on.

``check`` first tries a loss on one example of each class. Where the loss raises, returns a
value of the wrong shape, or returns NaN or infinity where the oracle is finite, that is a
finding about the class ("the loss raised on a batch with no object"), and the class is left
out of the properties that follow, so that they still judge the loss on everything else.

Two kinds, after docs/spec.md, "Refused inputs": *degenerate* inputs (an empty batch; a box of
zero width or height), which real training rarely meets and on which a finding is a warning
unless ``--strict``; and *ordinary* inputs (a batch without objects, a grid full of them), which
real batches do hold, so that a finding there is a difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from yolov1_loss.conformance.inputs.example import Example, Recipe, build
from yolov1_loss.reference import LossSpec


def _zero_size_target(ex: Example) -> bool:
    C = ex.spec.C
    return bool(np.any(ex.target[ex.has_object][:, C + 3 : C + 5] == 0))


def _zero_size_pred(ex: Example) -> bool:
    C, B = ex.spec.C, ex.spec.B
    boxes = ex.pred[ex.has_object][:, C:].reshape(-1, B, 5)
    return bool(np.any(boxes[..., 3:5] == 0))


@dataclass(frozen=True)
class InputClass:
    name: str
    words: str  # how a report names it
    degenerate: bool
    contains: Callable[[Example], bool]
    recipe: Callable[[LossSpec], Recipe]  # one example of the class, in a dialect


INPUT_CLASSES = (
    InputClass(
        "empty_batch", "an empty batch (N = 0)", True, lambda ex: ex.images == 0, lambda spec: Recipe(spec, images=0)
    ),
    InputClass(
        "no_object",
        "a batch with no object",
        False,
        lambda ex: ex.images > 0 and not ex.has_object.any(),
        lambda spec: Recipe(spec, images=2, occupancy="empty", seed=1),
    ),
    InputClass(
        "full_grid",
        "every cell holding an object",
        False,
        lambda ex: ex.images > 0 and bool(ex.has_object.all()),
        lambda spec: Recipe(spec, images=1, occupancy="full", seed=2),
    ),
    InputClass(
        "zero_size_target",
        "a zero-size target box",
        True,
        _zero_size_target,
        lambda spec: Recipe(spec, images=1, cases=("zero_size",), seed=_seed_where(spec, _zero_size_target)),
    ),
    InputClass(
        "zero_size_pred",
        "a zero-size predicted box in an object cell",
        True,
        _zero_size_pred,
        lambda spec: Recipe(spec, images=1, cases=("zero_size",), seed=_seed_where(spec, _zero_size_pred)),
    ),
)
BY_NAME = {c.name: c for c in INPUT_CLASSES}


def _seed_where(spec: LossSpec, contains: Callable[[Example], bool]) -> int:
    """The first seed whose zero-size example is in the class (the zero-size case draws both kinds)."""
    return next(
        seed for seed in range(1000) if contains(build(Recipe(spec, images=1, cases=("zero_size",), seed=seed)))
    )


def classes_of(ex: Example) -> list[InputClass]:
    """The classes ``ex`` belongs to."""
    return [c for c in INPUT_CLASSES if c.contains(ex)]
