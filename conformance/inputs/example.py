"""Test inputs: a small, printable :class:`Recipe` and the arrays it deterministically builds.

Hypothesis draws recipes (the structure: grid size, dialect, how many images, which cells hold
objects, which hard case each object cell gets, a seed); :func:`build` fills the bulk from a
NumPy generator seeded with the recipe's seed. A failing example is therefore reported as a
short ``build(Recipe(...))`` call that anyone can paste, and Hypothesis shrinks the structure,
not thousands of floats.

Hard cases, one per object cell (``Recipe.cases`` are dealt to the object cells in turn):

- ``random``: predictors scattered around the target (scaled by ``Recipe.magnitude``).
- ``tie``: every predictor has the same box (IoU ties), confidences differ.
- ``exact``: one predictor encodes the target box exactly.
- ``touching``: one predictor shares an edge with the target (zero overlap, exactly).
- ``nested``: one predictor centred on the target, inside or around it, sometimes with
  coinciding edges along one axis.
- ``disjoint``: no predictor overlaps the target (every IoU is 0).
- ``near_cap``: every IoU is 0 and the predictors sit near the darknet fallback's distance cap
  of 20 (just under, at, just over, far over).
- ``zero_size``: a predictor (and sometimes the target) has zero width or height.
- ``negative_size``: predictors with negative sizes (not under wh_mode='sqrt', which refuses
  them: there the case gives zero sizes instead).

The exact-kink cases are built from dyadic numbers (multiples of 1/64) so that edges coincide
exactly in float64 and float32 alike, in the oracle's frame arithmetic (x·(1/S)) and in x/S.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from yolov1_loss.reference.spec import DISTANCE_CAP, LossSpec

CELL_CASES = (
    "random",
    "tie",
    "exact",
    "touching",
    "nested",
    "disjoint",
    "near_cap",
    "zero_size",
    "negative_size",
)
OCCUPANCIES = ("mixed", "full", "empty")


@dataclass(frozen=True)
class Recipe:
    """Everything :func:`build` needs to rebuild an example, small enough to print."""

    spec: LossSpec
    images: int = 1
    occupancy: str = "mixed"  # mixed: about a third of the cells hold objects; full; empty
    cases: tuple = ("random",)  # hard cases dealt to the object cells in turn (CELL_CASES)
    magnitude: float = 1.0  # scale of the random bulk (1024.0 for large magnitudes)
    seed: int = 0


@dataclass(frozen=True, eq=False)
class Example:
    """Canonical float64 inputs of one loss evaluation: pred (N, S, S, C + 5B), target (N, S, S, C + 5)."""

    spec: LossSpec
    pred: np.ndarray
    target: np.ndarray
    recipe: Recipe | None = field(default=None)

    def __repr__(self) -> str:
        if self.recipe is not None:
            return f"build({self.recipe!r})"
        return (
            f"Example(spec={self.spec!r}, pred=np.array({self.pred.tolist()!r}), "
            f"target=np.array({self.target.tolist()!r}))"
        )

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        # Hypothesis prints every explicit example it runs, a dataclass field by field (the arrays
        # in full: a fifth of a check's time went there); the repr above is what to print.
        printer.text(repr(self))

    @property
    def images(self) -> int:
        return self.pred.shape[0]

    @property
    def has_object(self) -> np.ndarray:
        """(N, S, S) bool: the cells whose target holds an object."""
        return self.target[..., self.spec.C] == 1

    def rounded(self, dtype: str) -> Example:
        """The same example with its inputs rounded to ``dtype`` (kept as float64 arrays)."""
        if dtype == "float64":
            return self
        return Example(
            self.spec,
            self.pred.astype(dtype).astype(np.float64),
            self.target.astype(dtype).astype(np.float64),
            self.recipe,
        )

    def keep_cells(self, keep: np.ndarray) -> Example:
        """A copy where every cell outside ``keep`` (N, S, S) is all zeros.

        An all-zero cell has no object and zero confidences, so it adds nothing to any component
        in any dialect: the loss of the copy is the oracle's per-cell values summed over ``keep``.
        """
        keep = keep[..., None]
        return Example(self.spec, np.where(keep, self.pred, 0.0), np.where(keep, self.target, 0.0))

    def select_images(self, order) -> Example:
        """A copy holding the images ``order`` (a sequence of indices) in that order."""
        order = np.asarray(order, dtype=int)
        return Example(self.spec, self.pred[order], self.target[order])


# --- building ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def build(recipe: Recipe) -> Example:
    """The example a recipe describes; the same recipe always gives the same arrays.

    Built once per recipe (the properties of a derandomized run all draw the same recipes, and
    building a grid cell by cell is most of what drawing costs); the arrays are read-only, so no
    caller can change what the next one gets.
    """
    pred, target = _arrays(recipe)
    for array in (pred, target):
        array.setflags(write=False)
    return Example(recipe.spec, pred, target, recipe)


def _arrays(recipe: Recipe) -> tuple[np.ndarray, np.ndarray]:
    spec = recipe.spec
    rng = np.random.default_rng(recipe.seed)
    N, S, B, C = recipe.images, spec.S, spec.B, spec.C
    pred = rng.uniform(-0.5, 1.5, (N, S, S, spec.pred_channels)) * recipe.magnitude
    target = np.zeros((N, S, S, spec.target_channels))
    target[..., C + 1 :] = rng.uniform(0.0, 1.0, (N, S, S, 4))  # ignored in empty cells

    has_object = _occupancy(rng, recipe.occupancy, (N, S, S))
    frame = Frame(spec)
    for index, (n, i, j) in enumerate(np.argwhere(has_object)):
        case = recipe.cases[index % len(recipe.cases)]
        pbox, tbox = CASE_BUILDERS[case](rng, frame, B)
        if case == "random":
            pbox, tbox = pbox * recipe.magnitude, tbox * recipe.magnitude
        cell_pred = pred[n, i, j]
        cell_pred[:C] = rng.uniform(0.0, 1.0, C) * recipe.magnitude
        boxes = cell_pred[C:].reshape(B, 5)
        boxes[:, 0] = rng.uniform(0.0, 1.0, B) * recipe.magnitude
        boxes[:, 1:] = pbox
        target[n, i, j, :C] = np.eye(C)[rng.integers(C)]
        target[n, i, j, C] = 1.0
        target[n, i, j, C + 1 :] = tbox
    return pred, target


def _occupancy(rng, occupancy: str, shape) -> np.ndarray:
    if occupancy == "full":
        return np.ones(shape, dtype=bool)
    if occupancy == "empty":
        return np.zeros(shape, dtype=bool)
    return rng.random(shape) < 0.35


class Frame:
    """Conversions between stored box values and the IoU frame of a spec.

    In the frame, x and y are multiplied by 1/S under iou_frame='image'; a predicted size v is
    v² under wh_mode='sqrt_output'. Targets' sizes enter the frame as they are.
    """

    def __init__(self, spec: LossSpec):
        self.spec = spec
        self.image = spec.iou_frame == "image"
        self.sqrt_output = spec.wh_mode == "sqrt_output"

    def stored_centre(self, value: float) -> float:
        """The stored x (or y) whose frame value is ``value``."""
        return value * self.spec.S if self.image else value

    def round_trips(self, value: float) -> bool:
        """Whether ``value`` comes back exactly from its stored form, in float64 and float32,
        whichever way an implementation scales it (x·(1/S) or x/S)."""
        if not self.image:
            return True
        S = self.spec.S
        for dtype in (np.float64, np.float32):
            stored = dtype(value * S)
            if stored * dtype(1.0 / S) != dtype(value) or stored / dtype(S) != dtype(value):
                return False
        return True

    def stored_size(self, size):
        """The stored predicted size (≥ 0) whose frame size is ``size`` (a float or an array)."""
        return np.sqrt(size) if self.sqrt_output else size

    def dyadic_size(self, rng, low: int, high: int) -> float:
        """A frame size from a few bits, whose stored form is exact too: (m/8)² or m/64."""
        if self.sqrt_output:
            return (rng.integers(low, high) / 8) ** 2
        return rng.integers(low * 8, high * 8) / 64


def _stored_box(frame: Frame, box) -> np.ndarray:
    """A predictor's stored (x, y, w, h) from its frame box."""
    x, y, w, h = box
    return np.array([frame.stored_centre(x), frame.stored_centre(y), frame.stored_size(w), frame.stored_size(h)])


def _stored_target(frame: Frame, box) -> np.ndarray:
    x, y, w, h = box
    return np.array([frame.stored_centre(x), frame.stored_centre(y), w, h])


def _random_target(rng, frame: Frame) -> np.ndarray:
    """A target frame box: a centre inside the cell, sizes between 0.05 and 1."""
    k = 1.0 / frame.spec.S if frame.image else 1.0
    return np.array([*(rng.uniform(0, 1, 2) * k), *rng.uniform(0.05, 1.0, 2)])


def _random_predictor(rng, tbox) -> np.ndarray:
    """A frame box around the target: offset up to about its size, positive sizes."""
    sizes = rng.uniform(0.05, 1.0, 2)
    offset = rng.uniform(-0.6, 0.6, 2) * (tbox[2:] + sizes)
    return np.array([*(tbox[:2] + offset), *sizes])


def _dyadic_target(rng, frame: Frame) -> np.ndarray:
    """A target frame box whose centre round-trips exactly and whose sizes are dyadic."""
    while True:
        centre = rng.integers(0, 64, 2) / 64
        if all(frame.round_trips(c) for c in centre):
            return np.array([*centre, frame.dyadic_size(rng, 2, 8), frame.dyadic_size(rng, 2, 8)])


# --- one function per case: (rng, frame, B) -> (predictor boxes (B, 4) stored, target (4,) stored)


def _case_random(rng, frame, B):
    tbox = _random_target(rng, frame)
    boxes = [_stored_box(frame, _random_predictor(rng, tbox)) for _ in range(B)]
    return np.array(boxes), _stored_target(frame, tbox)


def _case_tie(rng, frame, B):
    tbox = _random_target(rng, frame)
    box = _stored_box(frame, _random_predictor(rng, tbox))
    return np.tile(box, (B, 1)), _stored_target(frame, tbox)


def _case_exact(rng, frame, B):
    pbox, stored_target = _case_random(rng, frame, B)
    x, y, w, h = stored_target
    pbox[rng.integers(B)] = [x, y, frame.stored_size(w), frame.stored_size(h)]
    return pbox, stored_target


def _case_touching(rng, frame, B):
    """One predictor's edge on the target's edge along x or y; exact in every precision."""
    while True:
        tbox = _dyadic_target(rng, frame)
        size = np.array([frame.dyadic_size(rng, 1, 8) for _ in range(2)])
        axis, side = rng.integers(2), rng.choice([-1.0, 1.0])
        centre = tbox[:2].copy()
        centre[axis] += side * (tbox[2 + axis] + size[axis]) / 2
        if frame.round_trips(centre[axis]):
            break
    pbox, _ = _case_random(rng, frame, B)
    pbox[rng.integers(B)] = _stored_box(frame, [*centre, *size])
    return pbox, _stored_target(frame, tbox)


def _case_nested(rng, frame, B):
    """One predictor centred on the target, smaller or larger; sometimes one axis coincides."""
    tbox = _dyadic_target(rng, frame)
    factor = rng.choice([0.5, 2.0], size=2)
    if rng.random() < 0.5:
        factor[rng.integers(2)] = 1.0  # same centre and size along that axis: both edges tie
    sizes = tbox[2:] * factor**2 if frame.sqrt_output else tbox[2:] * factor  # stays exact
    pbox, _ = _case_random(rng, frame, B)
    pbox[rng.integers(B)] = _stored_box(frame, [*tbox[:2], *sizes])
    return pbox, _stored_target(frame, tbox)


def _case_disjoint(rng, frame, B):
    """Every predictor clear of the target by a gap of 0.05 to 1.5 along x or y."""
    tbox = _random_target(rng, frame)
    boxes = []
    for _ in range(B):
        box = _random_predictor(rng, tbox)
        axis, side = rng.integers(2), rng.choice([-1.0, 1.0])
        box[axis] = tbox[axis] + side * ((tbox[2 + axis] + box[2 + axis]) / 2 + rng.uniform(0.05, 1.5))
        boxes.append(_stored_box(frame, box))
    return np.array(boxes), _stored_target(frame, tbox)


NEAR_CAP_DISTANCES = (
    DISTANCE_CAP - 0.25,
    DISTANCE_CAP - 0.01,
    DISTANCE_CAP,
    DISTANCE_CAP + 0.01,
    DISTANCE_CAP + 0.25,
    30.0,
)


def _case_near_cap(rng, frame, B):
    """Every predictor the target's size, moved along x by a distance near the cap of 20.

    The frame distance is then exactly that offset; DISTANCE_CAP itself only where it is exact.
    """
    tbox = _dyadic_target(rng, frame)
    boxes = []
    for _ in range(B):
        distance = rng.choice(NEAR_CAP_DISTANCES)
        x = tbox[0] + rng.choice([-1.0, 1.0]) * distance
        if distance == DISTANCE_CAP and not frame.round_trips(x):
            x += 0.01
        sizes = tbox[2:]
        boxes.append(_stored_box(frame, [x, tbox[1], *sizes]))
    return np.array(boxes), _stored_target(frame, tbox)


def _case_zero_size(rng, frame, B):
    pbox, stored_target = _case_random(rng, frame, B)
    b = rng.integers(B)
    pbox[b, 2 + rng.integers(2)] = 0.0
    if rng.random() < 0.3:
        pbox[b, 2:] = 0.0
    if rng.random() < 0.3:
        stored_target[2 + rng.integers(2)] = 0.0
    return pbox, stored_target


def _case_negative_size(rng, frame, B):
    if frame.spec.wh_mode == "sqrt":
        return _case_zero_size(rng, frame, B)
    pbox, stored_target = _case_random(rng, frame, B)
    flip = rng.random((B, 2)) < 0.6
    flip[rng.integers(B), rng.integers(2)] = True
    pbox[:, 2:] = np.where(flip, -pbox[:, 2:], pbox[:, 2:])
    if frame.spec.wh_mode == "linear" and rng.random() < 0.3:
        stored_target[2 + rng.integers(2)] *= -1
    return pbox, stored_target


CASE_BUILDERS = {
    "random": _case_random,
    "tie": _case_tie,
    "exact": _case_exact,
    "touching": _case_touching,
    "nested": _case_nested,
    "disjoint": _case_disjoint,
    "near_cap": _case_near_cap,
    "zero_size": _case_zero_size,
    "negative_size": _case_negative_size,
}
assert tuple(CASE_BUILDERS) == CELL_CASES


def encode_target(example: Example) -> Example:
    """A prediction that encodes the target exactly, in the dialects where one exists.

    Every predictor of an object cell holds the target box (so they tie and predictor 0 is
    responsible), with confidence 1 for predictor 0 and 0 for the others; class scores equal
    the target's; empty cells have zero confidences and keep their other values. Target sizes
    are raised to at least 1/64, since under wh_mode='sqrt' a zero size has an infinite slope.
    Only meaningful where :func:`exact_encoding_exists` is true.
    """
    spec = example.spec
    C, B = spec.C, spec.B
    target = example.target.copy()
    has_object = example.has_object
    sizes = target[..., C + 3 : C + 5]
    target[..., C + 3 : C + 5] = np.where(has_object[..., None], np.maximum(sizes, 1 / 64), sizes)
    pred = example.pred.copy()
    boxes = pred[..., C:].reshape(*pred.shape[:3], B, 5)
    boxes[..., 0] = 0.0
    frame = Frame(spec)
    x, y, w, h = np.moveaxis(target[has_object][:, C + 1 :], -1, 0)
    stored = np.stack([x, y, frame.stored_size(w), frame.stored_size(h)], -1)
    object_boxes = boxes[has_object]
    object_boxes[..., 1:] = stored[:, None, :]
    object_boxes[:, 0, 0] = 1.0
    boxes[has_object] = object_boxes
    pred[..., C:] = boxes.reshape(*pred.shape[:3], 5 * B)
    pred[..., :C] = np.where(has_object[..., None], target[..., :C], pred[..., :C])
    return Example(spec, pred, target)


def exact_encoding_exists(spec: LossSpec) -> bool:
    """Whether some prediction gives exactly zero loss: sizes must be invertible (not
    signed_sqrt, whose ε keeps g(v) off √w) and a perfect box must get confidence target 1
    (conf_target='one', or an IoU without ε)."""
    return spec.wh_mode != "signed_sqrt" and (spec.conf_target == "one" or spec.iou_eps == 0)
