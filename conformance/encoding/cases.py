"""The boxes that tell an encoder's conventions apart, drawn for a grid: each :class:`BoxCase` is one
image's boxes, as (cx, cy, w, h) fractions of the image, and what it is in words.

A centre "on an edge" is decided: the same cell in float32 and float64 arithmetic, ⌊c·S⌋ computed
either way (a value a rounding away from an edge would put an encoder in float32 in another cell
than the oracle in float64, through no fault of the encoder's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class BoxCase:
    words: str  # e.g. 'a centre at x = 1.0'
    boxes: np.ndarray  # (M, 4) cx, cy, w, h, fractions of the image
    labels: np.ndarray  # (M,) int


def decided(value: float, S: int) -> float:
    """``value`` (a centre, a fraction of the image) as float32 holds it, moved up by ulps until
    ⌊value·S⌋ is the same in float32 and float64 (1.0 stays: its cell is the clamp's)."""
    v = np.float32(value)
    while v < 1 and np.floor(v * np.float32(S)) != np.floor(np.float64(v) * S):
        v = np.nextafter(v, np.float32(2))
    return float(v)


def _case(words: str, boxes, labels, S: int) -> BoxCase:
    boxes = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    boxes[:, :2] = np.vectorize(lambda c: decided(c, S))(boxes[:, :2]) if len(boxes) else boxes[:, :2]
    boxes[:, 2:] = boxes[:, 2:].astype(np.float32)
    return BoxCase(words, boxes, np.array(labels, dtype=int))


def box_cases(S: int, C: int, seed: int = 0) -> list[BoxCase]:
    """The hard cases on an S×S grid with C classes, then a few images of random boxes."""
    rng = np.random.default_rng(seed)
    half = 0.5 / S  # the middle of the first cell, as a fraction of the image
    edge = 2 / S if S > 2 else 1 / S
    label = lambda k: k % C
    cases = [
        _case("an image with no box", np.zeros((0, 4)), [], S),
        _case(
            "an object in each corner cell",
            [
                [half, half, 0.2, 0.3],
                [1 - half, half, 0.3, 0.2],
                [half, 1 - half, 0.1, 0.4],
                [1 - half, 1 - half, 0.5, 0.6],
            ],
            [label(0), label(1), label(2), label(3)],
            S,
        ),
        _case("a centre off the diagonal", [[0.8 * (S - 1) / S + half, 0.3 / S, 0.25, 0.15]], [label(1)], S),
        _case("a centre on a cell edge", [[edge, 1 - edge, 0.2, 0.2]], [label(2)], S),
        _case("a centre at x = 1.0", [[1.0, 0.5 + half / 2, 0.2, 0.3]], [label(0)], S),
        _case("a centre at y = 1.0", [[0.5 + half / 2, 1.0, 0.3, 0.2]], [label(1)], S),
        _case("a centre at (1.0, 1.0)", [[1.0, 1.0, 0.4, 0.4]], [label(2)], S),
        _case("a centre at (0, 0)", [[0.0, 0.0, 0.1, 0.1]], [label(3)], S),
        _case(
            "two centres in one cell, the smaller listed first",
            [[half * 0.8, half * 1.2, 0.1, 0.1], [half * 1.4, half * 0.6, 0.4, 0.5]],
            [label(0), label(1)],
            S,
        ),
        _case(
            "two centres in one cell, the larger listed first",
            [[1 - half * 0.8, half, 0.6, 0.5], [1 - half * 1.3, half * 1.5, 0.2, 0.1]],
            [label(2), label(3)],
            S,
        ),
        _case(
            "three centres in one cell",
            [
                [0.5 - half / 2, 0.5 - half / 3, 0.3, 0.3],
                [0.5 - half / 3, 0.5 - half / 2, 0.5, 0.6],
                [0.5 - half / 4, 0.5 - half / 4, 0.1, 0.2],
            ],
            [label(1), label(2), label(0)],
            S,
        ),
        _case(
            "boxes of every size",
            [[0.3, 0.7, 1e-3, 2e-3], [0.5, 0.5, 1.0, 1.0], [0.8, 0.2, 0.9, 0.02], [0.1, 0.9, 0.0, 0.0]],
            [label(4), label(5), label(6), label(7)],
            S,
        ),
    ]
    for _ in range(3):
        m = int(rng.integers(1, 2 * S))
        boxes = np.concatenate([rng.uniform(0, 1, (m, 2)), rng.uniform(0.02, 1, (m, 2))], axis=1)
        cases.append(_case(f"random boxes ({m})", boxes, rng.integers(0, C, m), S))
    return cases
