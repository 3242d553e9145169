"""Tolerances, and finding where two evaluations part: the worst element, or the first cell.

Error budget. Every term of the loss is a square of differences of inputs, so rounding moves
a cell's value by about ε · (1 + Σ pred² + Σ target²) over that cell (its *magnitude*), times
the scale it is reported at (loss_scale, 1/N under mean, Σ|λ| for the total); a gradient
element by about ε · (|its value| + √magnitude), with the same scale. ``RTOL`` is that ε per
dtype, with room for the few dozen operations each value goes through.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from yolov1_loss.conformance.inputs.example import Example
from yolov1_loss.reference.kinks import kink_margins as cell_kink_margins
from yolov1_loss.reference.spec import LossSpec
from yolov1_loss.reference.validate import pred_channel_name

# Relative error allowed per dtype, calibrated by tests/conformance/test_calibration.py: the
# worst error of correct implementations (an independent torch loss, torch_impl's paths)
# against the oracle, over the hard recipes and random dialects, was ~1e-16 of the budget in
# float64 and ~5e-7 in float32 (inputs rounded to float32 for both sides), that is 1e-4 and
# 2e-2 of these tolerances. Real bugs move values by O(1) of the budget.
RTOL = {"float64": 1e-12, "float32": 3e-5, "exact": 0.0}  # exact: bitwise (determinism)
# Below the smallest normal number a dtype keeps no relative precision: a weight of 8e-44 is
# a float32 subnormal with a few bits, one of 1e-90 is 0. The weights and scales multiplying
# the budget are therefore only known to RTOL relatively plus FLOOR absolutely.
FLOOR = {"float64": float(np.finfo(np.float64).tiny), "float32": float(np.finfo(np.float32).tiny), "exact": 0.0}

# How far from a kink (docs/spec.md, "Gradients"), relative to 1 + the cell's largest input, a cell must be for
# its gradient to be compared (see comparable_cells): well beyond the rounding of the dtype,
# which could otherwise put the implementation on the other side of the kink from the oracle.
KINK_MARGIN = {"float64": 1e-6, "float32": 1e-3}


def cell_magnitude(example: Example) -> np.ndarray:
    """(N, S, S): 1 + the sum of squares of the cell's prediction and target values."""
    return 1.0 + (example.pred**2).sum(axis=-1) + (example.target**2).sum(axis=-1)


def output_scale(spec: LossSpec, n_images: int, name: str) -> float:
    """How much a unit of per-cell error weighs in output ``name`` (a component or 'total')."""
    scale = abs(spec.reduction_scale(n_images))
    if name == "total":
        scale *= sum(abs(w) for w in spec.weights())
    return scale


def reduce_cells(per_cell: np.ndarray, spec: LossSpec) -> np.ndarray:
    """(N, S, S) → the output's shape: per image under reduction='none', else the sum."""
    per_image = per_cell.sum(axis=(1, 2))
    return per_image if spec.reduction == "none" else np.asarray(per_image.sum())


def value_tolerance(example: Example, dtype: str, name: str) -> np.ndarray:
    """The tolerance of output ``name``, shaped like it (() or (N,))."""
    scale = output_scale(example.spec, example.images, name)
    return (RTOL[dtype] * scale + FLOOR[dtype]) * reduce_cells(cell_magnitude(example), example.spec)


def grad_tolerance(example: Example, dtype: str, name: str, size: np.ndarray) -> np.ndarray:
    """Per-element tolerance of the gradient of ``name``, given ``size`` (N, S, S, K): the
    magnitude of the gradient's terms (the absolute gradient, or Σ|λ_k ∇_k| for the total)."""
    scale = output_scale(example.spec, example.images, name)
    per_cell = (RTOL[dtype] * scale + FLOOR[dtype]) * np.sqrt(cell_magnitude(example))
    with np.errstate(invalid="ignore"):  # 0 · inf (bitwise comparison of an infinite gradient): NaN
        return RTOL[dtype] * np.abs(size) + per_cell[..., None]


def differs(actual, expected, tolerance) -> np.ndarray:
    """Elementwise: |actual − expected| > tolerance, where NaN equals NaN and inf equals itself."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    same = (actual == expected) | (np.isnan(actual) & np.isnan(expected))
    with np.errstate(invalid="ignore"):
        close = np.abs(actual - expected) <= tolerance
    return ~(same | close)


def worst_element(actual, expected, tolerance, mask=None):
    """The index where |actual − expected| / tolerance is largest among the differing elements
    (NaN or inf mismatches first), or None if none differ. ``mask``: where to look."""
    bad = differs(actual, expected, tolerance)
    if mask is not None:
        bad &= np.broadcast_to(mask, bad.shape)
    if not bad.any():
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.abs(np.asarray(actual, np.float64) - expected) / np.maximum(tolerance, 1e-300)
    ratio = np.where(bad, np.nan_to_num(ratio, nan=np.inf), -1.0)
    return tuple(int(i) for i in np.unravel_index(np.argmax(ratio), ratio.shape))


def element_fields(spec: LossSpec, index) -> dict:
    """Report fields of a canonical prediction element (n, i, j, k)."""
    n, i, j, k = index
    predictor = (k - spec.C) // 5 if k >= spec.C else None
    return {"image": n, "cell": (i, j), "predictor": predictor, "channel": pred_channel_name(k, spec.C)}


def kink_margins(example: Example) -> np.ndarray:
    """(N, S, S): each object cell's distance to the nearest kink (reference.kinks), relative to
    1 + the cell's largest input; inf for cells without an object (only ĉ² terms: smooth)."""
    scale = 1.0 + np.maximum(np.abs(example.pred).max(axis=-1), np.abs(example.target).max(axis=-1))
    return cell_kink_margins(example.pred, example.target, example.spec) / scale


def smooth_cells(example: Example, margin: float) -> np.ndarray:
    """(N, S, S) bool: the cells at least ``margin`` (relative, see kink_margins) from every kink."""
    return kink_margins(example) >= margin


def comparable_cells(example: Example, dtype: str, project: bool) -> np.ndarray | None:
    """(N, S, S) bool: where a gradient is compared with the oracle's (None: everywhere).

    Smooth cells always. Exact kinks (margin 0) only for the project's own implementations,
    which must follow the oracle's conventions there. A project implementation in float64
    everywhere; elsewhere not in the band just off a kink, where float32 arithmetic may land
    on the kink (or off it) where the oracle's float64 does not.
    """
    if project and dtype == "float64":
        return None
    margins = kink_margins(example)
    return (margins >= KINK_MARGIN[dtype]) | (project & (margins == 0))


def bisect(candidates: np.ndarray, differs_on: Callable[[np.ndarray], bool]):
    """One candidate on which ``differs_on`` (given a subset of candidates) holds alone, or None.

    Assumes it holds on all of ``candidates``; halves them, keeping the earlier half that still
    differs: about 2·log2(len) calls. None when only several candidates together differ.
    """
    while len(candidates) > 1:
        for half in np.array_split(candidates, 2):
            if differs_on(half):
                candidates = half
                break
        else:
            return None
    return int(candidates[0]) if len(candidates) else None


def first_differing_cell(example: Example, differs_on: Callable[[Example], bool]):
    """A cell (n, i, j) on which ``differs_on`` holds with every other cell emptied, or None.

    Emptied cells add nothing to any component (see Example.keep_cells), so a difference in a
    sum over cells is found by bisecting the cells.
    """
    shape = example.has_object.shape

    def differs_on_cells(cells: np.ndarray) -> bool:
        keep = np.zeros(example.has_object.size, dtype=bool)
        keep[cells] = True
        return differs_on(example.keep_cells(keep.reshape(shape)))

    found = bisect(np.arange(example.has_object.size), differs_on_cells)
    return None if found is None else tuple(int(i) for i in np.unravel_index(found, shape))


def only_cell(example: Example, cell) -> Example:
    """The example with every cell but ``cell`` (n, i, j) emptied."""
    keep = np.zeros(example.has_object.shape, dtype=bool)
    keep[cell] = True
    return example.keep_cells(keep)
