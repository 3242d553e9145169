"""Which dialect is a loss? Fit the oracle's knobs and weights to a black-box implementation.

The implementation's values on probe inputs are compared with the oracle's under every
combination of the knobs that change values. Given the other knobs, the total is linear in the
weights of five columns (coord, obj, the noobj of empty cells, the noobj of the object cells' other
predictors, cls: each λ · loss_scale), so they are fitted by non-negative least squares rather
than enumerated; the two noobj weights tell noobj_scope. The weights are then read as a person
writes them (each snapped to the simplest value the fit's noise allows: 0.5, not 0.50001; 0, a
term left out, not 2e-7). Gradients, when the implementation has them, then settle ``iou_grad``,
which values cannot see.

The general probes are built to tell knobs apart (each object cell's responsible predictor
decided beyond what float32's rounding can flip, under every knob): object cells whose
predictors overlap the target in one IoU frame and not the other, tiny boxes (where ``iou_eps``
and the ε of ``signed_sqrt`` show), cells where every IoU is 0 (darknet's fallback), several
batch sizes (sum against mean), and, in a second round, negative predicted sizes (the
square-root modes part there). Each term is also fitted on its own, on probes where only it can be non-zero
(:mod:`conformance.dialects.term_probes`): when no dialect reproduces the whole, that says which terms do.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from yolov1_loss.conformance.dialects.catalogue import ONLY_UNDER, entries, values_key
from yolov1_loss.conformance.dialects.term_probes import (
    COLUMNS,
    FAMILIES,
    KNOB_FREE,
    OWN_TERM,
    TERM_WORDS,
    family_probes,
)
from yolov1_loss.reference import PRESETS, LossSpec, loss, loss_and_grad
from yolov1_loss.reference.boxes import iou_and_grad
from yolov1_loss.reference.loss import COMPONENTS
from yolov1_loss.reference.spec import CHOICES, LAMBDAS, WEIGHTS

ValuesFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
GradFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

# The knobs values can tell apart, from the spec's table of knobs (CHOICES): all but iou_grad,
# which only gradients see, and reduction, which the fit tries on its own. signed_sqrt_eps
# changes values only under signed_sqrt, so wh_mode and it are one joint "size mode".
SIZE_MODES = tuple(
    (wh_mode, eps_place)
    for wh_mode in CHOICES["wh_mode"]
    for eps_place in (CHOICES["signed_sqrt_eps"] if wh_mode == "signed_sqrt" else CHOICES["signed_sqrt_eps"][:1])
)
VALUE_KNOBS = {  # in the table's order, the size mode where wh_mode stands
    ("size_mode" if name == "wh_mode" else name): (SIZE_MODES if name == "wh_mode" else values)
    for name, values in CHOICES.items()
    if name not in ("iou_grad", "reduction", "signed_sqrt_eps", "noobj_scope")
}
VALUE_KNOBS["iou_eps"] = tuple(
    sorted({LossSpec.preset(name).iou_eps for name in PRESETS})
)  # the values public code uses
# The knobs reported as not told apart when fits under several of their values are equally good
# (noobj_scope is told by the fitted weights, iou_grad by gradients).
TOLD_APART = tuple(name for name in CHOICES if name not in ("iou_grad", "noobj_scope")) + ("iou_eps",)
DEFAULT_WEIGHTS = np.array(LossSpec().weights())

# A candidate matches when its largest misfit, relative to each value, is below this. Float32
# implementations leave misfits up to ~5e-6 (measured: torch_impl in float32 in every preset,
# and examples/user_loss.py), while every wrong knob leaves 1e-3 or more (the least visible,
# signed_sqrt_eps, 1.1e-3; the others 2e-2 and up), so 1e-4 sits 20x and 10x from each.
MATCH_TOLERANCE = 1e-4


class Identification(NamedTuple):
    """The best fitting dialect: its spec, whether it matches, and how well each knob was seen."""

    spec: LossSpec  # knobs and weights that fit best (S, B, C as probed)
    matches: bool
    residual: float  # largest misfit of the values, relative to each value
    preset: str | None  # the preset with exactly these knobs, if any
    undetermined: tuple[str, ...]  # knobs the probes could not tell apart among dialects that fit
    notes: tuple[str, ...]  # what still differs when nothing matches
    terms: tuple = ()  # TermFit per family of term probes: which terms match on their own
    fitted_weights: frozenset = frozenset()  # the λ whose terms the values reproduce (all, when it matches)
    absent: tuple[str, ...] = ()  # the λ (of coord, obj, the empty cells' noobj, cls) fitted 0: a term left out
    failed_probes: str | None = None  # the probes the loss failed on where the dialect gives values, in words

    @property
    def plausible(self) -> bool:
        """Whether the fit is a dialect: it matches, every term is there (no λ of 0), and the loss
        gave a finite value on every probe where the dialect does. (A λ of 0 the user pinned is
        the verdict's to accept.)"""
        return self.matches and not self.absent and self.failed_probes is None


def _probe_cell(rng, S: int, B: int, C: int, kind: str):
    """One object cell's (pred row (C + 5B), target row (C + 5)) of a given kind.

    near: predictors scattered around the target (overlapping in the raw frame, and in the
    image frame depending on S); tiny: the same with boxes of area ~1e-6, where iou_eps = 1e-6
    halves the IoU; disjoint: every IoU 0 in both frames, distances below darknet's cap of 20;
    negative: every predicted size negative, predictor 0's within a few 1e-6 of 0 (where the
    two placements of signed_sqrt's ε differ most) and centred on the target, the others
    further off, so that predictor 0 is responsible in every dialect and precision.
    """
    tx, ty = rng.uniform(0.2, 0.8, size=2)
    sizes = {"tiny": (0.5e-3, 2e-3), "disjoint": (0.05, 0.2)}.get(kind, (0.1, 0.9))
    tw, th = rng.uniform(*sizes, size=2)
    target = np.concatenate([rng.uniform(size=C), [1.0, tx, ty, tw, th]])
    boxes = np.empty((B, 5))
    boxes[:, 0] = rng.uniform(-0.2, 1.2, size=B)
    if kind == "disjoint":
        # Boxes of size <= 0.2 whose centres are 0.25 image widths or more apart along x
        # cannot overlap in either frame; the distance stays below 20 for S up to 18.
        offset_x = (0.25 * S + rng.uniform(0.3, 1.0, size=B)) * rng.choice([-1, 1], size=B)
        boxes[:, 1] = tx + offset_x
        boxes[:, 2] = ty + rng.uniform(-0.5, 0.5, size=B)
        boxes[:, 3:] = rng.uniform(0.05, 0.2, size=(B, 2))
    elif kind == "negative":
        boxes[:, 1:3] = np.array([tx, ty]) + rng.uniform(0.2, 0.4, size=(B, 2)) * rng.choice([-1, 1], size=(B, 2))
        boxes[:, 3:] = -rng.uniform(0.1, 0.5, size=(B, 2))
        boxes[0, 1:3] = tx, ty
        boxes[0, 3:] = -rng.uniform(1.1e-6, 3e-6, size=2)
    else:
        spread = 0.3 * max(tw, th) if kind == "tiny" else 0.15
        boxes[:, 1:3] = np.array([tx, ty]) + rng.normal(0, spread, size=(B, 2))
        sizes = np.array([tw, th]) * rng.uniform(0.5, 1.5, size=(B, 2))
        # Some predictors give √size, as a network under 'sqrt_output' does, so that they
        # overlap the target in that dialect too.
        boxes[:, 3:] = np.where(rng.uniform(size=(B, 1)) < 0.5, sizes, np.sqrt(sizes))
    classes = target[:C] + rng.normal(0, 0.1, size=C)
    return np.concatenate([classes, boxes.reshape(-1)]), target


POSITIVE_KINDS = ("near", "tiny", "disjoint")


def probes(
    S: int, B: int, C: int, kinds=POSITIVE_KINDS, seed: int = 0, batch_sizes=(1, 2, 3, 1, 2, 3, 1, 2, 1, 3, 2, 1)
):
    """A list of (pred, target) probe batches in the canonical layout, float64.

    Each batch's object cells are of one kind (see :func:`_probe_cell`), cycling through
    ``kinds``, so that no kind drowns another. Batch sizes vary (sum and mean part there); every
    confidence is nonzero but small, so noobj is seen in every cell without drowning the
    object cells' terms. Empty cells also hold class scores and boxes, which every dialect
    ignores: a loss that reads them matches none.
    """
    rng = np.random.default_rng(seed)
    out = []
    for k, n_images in enumerate(batch_sizes):
        pred = np.zeros((n_images, S, S, C + 5 * B))
        target = np.zeros((n_images, S, S, C + 5))
        pred[..., :C] = rng.uniform(-0.1, 0.1, size=(n_images, S, S, C))  # ignored in empty cells
        boxes = pred[..., C:].reshape(n_images, S, S, B, 5)
        boxes[..., 0] = rng.uniform(-0.1, 0.1, size=(n_images, S, S, B))
        boxes[..., 1:] = rng.uniform(0.1, 0.9, size=(n_images, S, S, B, 4))  # ignored in empty cells
        pred[..., C:] = boxes.reshape(n_images, S, S, 5 * B)
        for n in range(n_images):
            for cell in rng.choice(S * S, size=min(S * S, 1 + (k + n) % 3), replace=False):
                kind = kinds[k % len(kinds)]
                pred[n, cell // S, cell % S], target[n, cell // S, cell % S] = _decided_cell(rng, S, B, C, kind)
        out.append((pred, target))
    return out


# What decides the responsible predictor of a probe cell must stand above float32's rounding:
# the best IoU ahead of the next by DECIDED_MARGIN times what rounding the inputs and the
# arithmetic to float32 moves an IoU by (and by 1e-4 of itself); where none overlaps, every box
# DECIDED_DISTANCE (in the IoU frame's units) or more from overlapping, and the nearest (darknet's
# fallback) nearer by as much. Float32 moves an edge of a box centred within 20 cells by ~2e-6.
DECIDED_MARGIN = 100.0
DECIDED_DISTANCE = 1e-4


def _decided_cell(rng, S: int, B: int, C: int, kind: str):
    """:func:`_probe_cell`, drawn again until the responsible predictor is the same whatever the
    arithmetic (float32 or float64), in every IoU frame, size treatment and iou_eps. (A near tie is
    decided by rounding: a float32 loss then picks another predictor than the oracle, and the fit
    blames a weight or a knob for it.) Negative sizes are left as drawn: predictor 0 is built to win."""
    while True:
        row, target = _probe_cell(rng, S, B, C, kind)
        if kind == "negative" or B == 1 or _responsible_is_decided(row[C:].reshape(B, 5)[:, 1:], target[C + 1 :], S):
            return row, target


def _responsible_is_decided(boxes: np.ndarray, tbox: np.ndarray, S: int) -> bool:
    """Whether (B, 4) predicted boxes against a (4,) target box name their responsible predictor
    beyond float32's rounding (:data:`DECIDED_MARGIN`) under both IoU frames, with predicted
    sizes squared (sqrt_output) or not, and every iou_eps."""
    for k in (1.0 / S, 1.0):
        for squared in (False, True):
            pbox = np.concatenate([k * boxes[:, :2], boxes[:, 2:] ** 2 if squared else boxes[:, 2:]], axis=-1)
            frame_target = np.concatenate([k * tbox[:2], tbox[2:]])
            for eps in VALUE_KNOBS["iou_eps"]:
                exact = iou_and_grad(pbox, frame_target, eps)[0]
                rounded = iou_and_grad(pbox.astype(np.float32), frame_target.astype(np.float32), eps)[0]
                noise = float(np.max(np.abs(rounded.astype(np.float64) - exact)))
                best, second = np.sort(exact)[::-1][:2]
                if best > 0 and best - second <= max(DECIDED_MARGIN * noise, 1e-4 * best):
                    return False
            if not exact.any():  # no box overlaps the target (under any iou_eps)
                grown = pbox + np.array([0.0, 0.0, 2 * DECIDED_DISTANCE, 2 * DECIDED_DISTANCE])
                distances = np.sort(np.linalg.norm(pbox - frame_target, axis=-1))
                if (
                    iou_and_grad(grown, frame_target, 0.0)[0].max() > 0
                    or distances[1] - distances[0] < DECIDED_DISTANCE
                ):
                    return False
    return True


@functools.lru_cache(maxsize=8)
def probe_sets(S: int, B: int, C: int):
    """The probes, in sets that the oracle accepts or refuses whole: positive sizes; negative sizes.
    (Made once per grid, read-only.)"""
    sets = (probes(S, B, C), probes(S, B, C, kinds=("negative",), seed=1, batch_sizes=(1, 2, 1, 3, 1, 2)))
    for batches in sets:
        for batch in batches:
            for array in batch:
                array.setflags(write=False)
    return sets


def _candidates(S: int, B: int, C: int):
    """Every combination of the value knobs, under reduction 'none' and noobj_scope 'predictor'
    (the scope is told by the fitted weights of the noobj columns, not enumerated)."""
    for values in itertools.product(*VALUE_KNOBS.values()):
        knobs = dict(zip(VALUE_KNOBS, values))
        wh_mode, eps_place = knobs.pop("size_mode")
        yield LossSpec(S=S, B=B, C=C, wh_mode=wh_mode, signed_sqrt_eps=eps_place, reduction="none", **knobs)


@functools.lru_cache(maxsize=8)
def _candidate_columns(S: int, B: int, C: int) -> tuple:
    """Every candidate (reduction 'none') with the oracle's columns on the general probes and on
    each family of term probes: the same for every loss identified on this grid, so computed once
    per grid. (spec, {probe set name: per batch, its (N, 5) columns or None})."""
    sets = _probe_groups(S, B, C)
    candidates = list(_candidates(S, B, C))
    knob_free = {name: _oracle_columns(candidates[0], sets[name]) for name in KNOB_FREE if name in sets}
    return tuple(
        (
            spec_none,
            {
                **knob_free,
                **{name: _oracle_columns(spec_none, groups) for name, groups in sets.items() if name not in knob_free},
            },
        )
        for spec_none in candidates
    )


def prepare(S: int, B: int, C: int) -> None:
    """Compute what identification on this grid needs from the oracle (kept for the process)."""
    _candidate_columns(S, B, C)


def _probe_groups(S: int, B: int, C: int) -> dict:
    """Probe set name → its groups of batches, each of which the oracle accepts or refuses whole:
    'general' (positive sizes; negative sizes), and each family of term probes (one group)."""
    return {"general": probe_sets(S, B, C), **{name: (batches,) for name, batches in family_probes(S, B, C).items()}}


def _probes(S: int, B: int, C: int, name: str) -> list:
    """The batches of one probe set, in order."""
    return [batch for group in _probe_groups(S, B, C)[name] for batch in group]


def _oracle_columns(spec_none: LossSpec, groups) -> list:
    """Per probe batch, its (N, 5) unweighted per-image :data:`COLUMNS`, or None where the oracle refuses.

    Each group is evaluated as one stacked batch (one oracle call), then split by batch.
    """
    out = []
    for batches in groups:
        pred, target = (np.concatenate(arrays) for arrays in zip(*batches))
        try:
            parts = loss(pred, target, spec_none)
        except ValueError:
            out += [None] * len(batches)
            continue
        has_object = target[..., spec_none.C] == 1
        noobj = parts.per_cell.noobj
        empty_cells, object_cells = (noobj * ~has_object).sum(axis=(1, 2)), (noobj * has_object).sum(axis=(1, 2))
        columns = np.stack([parts.coord, parts.obj, empty_cells, object_cells, parts.cls], axis=-1)
        out += np.split(columns, np.cumsum([len(p) for p, _ in batches])[:-1])
    return out


def _observe(values_fn: ValuesFn, batch, failures: list):
    """The implementation's output on a probe: an array, or None if it fails or is not finite
    (what went wrong, and on a batch of how many images, is appended to ``failures``; None when
    nothing did)."""
    try:
        y = np.asarray(values_fn(*batch), dtype=np.float64)
    except Exception as err:  # any failure of the user's code on this probe is an observation
        failures.append((len(batch[0]), _what_failed(err)))
        return None
    if np.all(np.isfinite(y)):
        failures.append(None)
        return y
    failures.append((len(batch[0]), f"returned {y.tolist() if y.ndim else float(y)}"))
    return None


def _what_failed(err: Exception) -> str:
    stage, detail = getattr(err, "stage", None), getattr(err, "detail", None)
    if stage == "output":
        return f"returned something that is not a loss: {detail}"
    if stage is not None:
        return f"raised in {stage}: {detail}"
    return f"raised {type(err).__name__}: {err}"


def failure_summary(failures: list, sizes: list[int]) -> str:
    """What went wrong on the probes (of ``sizes`` images each), grouped by what happened and
    by batch size: 'on 4 of the 18 probes (every probe of 3 images), it returned nan' (the groups
    of :func:`failure_groups`, joined by '; ')."""
    return "; ".join(failure_groups(failures, sizes))


def failure_groups(failures: list, sizes: list[int]) -> list[str]:
    """What went wrong on the probes (of ``sizes`` images each), one line per thing that happened,
    in the order it first did, by batch size: 'on 4 of the 18 probes (every probe of 3 images), it
    returned nan'."""
    groups: dict[str, list[int]] = {}
    for n_images, what in failures:
        groups.setdefault(what, []).append(n_images)
    parts = []
    for what, failed in groups.items():
        by_size = []
        for n in sorted(set(failed)):
            of_n = f"of {n} image{'s' * (n != 1)}"
            by_size.append(
                f"every probe {of_n}"
                if failed.count(n) == sizes.count(n)
                else f"{failed.count(n)} of the {sizes.count(n)} probes {of_n}"
            )
        parts.append(f"on {len(failed)} of the {len(sizes)} probes ({', '.join(by_size)}), it {what}")
    return parts


def _design(components: list, observed: list, reduction: str, columns):
    """Rows X (the coefficients of the weights of ``columns``, indices into COLUMNS), values y
    and the probes they come from, under one reduction, on the probes that both the oracle
    (``components``) and the implementation (``observed``) gave values for; None if the
    implementation's shapes do not fit the reduction or no probe is left."""
    rows, ys, used = [], [], []
    for k, (comps, y) in enumerate(zip(components, observed)):
        if comps is None or y is None:
            continue
        comps = comps[:, list(columns)]
        if reduction == "none":
            if y.size != len(comps):  # (a one-image probe cannot tell () from (1,))
                return None
            rows.append(comps)
            ys.append(y.reshape(len(comps)))
        else:
            if y.size != 1:
                return None
            scale = 1.0 / max(len(comps), 1) if reduction == "mean" else 1.0
            rows.append(scale * comps.sum(axis=0, keepdims=True))
            ys.append(y.reshape(1))
        used.append(k)
    if not rows:
        return None
    return np.concatenate(rows), np.concatenate(ys), tuple(used)


def _fit(X: np.ndarray, y: np.ndarray):
    """Non-negative weights by least squares relative to each value, the largest relative misfit,
    and the rows fitted, (A, b): X and y with each row divided by |y|.

    Each row is divided by |y| so that a small probe counts as much as a large one: an
    implementation's rounding is relative to each value, and so are the knobs' effects. The
    weights are held >= 0 (no dialect has a negative one): a term the loss computes otherwise is
    left to the residual, never absorbed by a negative weight. A column that is 0 on every probe
    gets weight 0 (nothing tells it).
    """
    row_scale = 1.0 / np.maximum(np.abs(y), 1e-12)
    A, b = X * row_scale[:, None], y * row_scale
    w = _nonnegative_lstsq(A, b)
    residual = np.max(np.abs(X @ w - y) * row_scale)
    return w, float(residual), (A, b)


def _nonnegative_lstsq(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """argmin ‖A w − b‖ over w ≥ 0.

    The unconstrained least squares first: where it comes out non-negative (every loss that
    matches a dialect) it is the answer, and scipy.optimize, whose import takes half a second,
    is not imported. Otherwise scipy's active-set nnls.
    """
    w = np.linalg.lstsq(A, b, rcond=None)[0]
    if np.all(w >= 0):
        return w
    import scipy.optimize

    return scipy.optimize.nnls(A, b)[0]


def _weights_as_knobs(w: np.ndarray, seen_noobj_object: bool) -> dict:
    """Fitted products λ·loss_scale of :data:`COLUMNS` → noobj_scope, λ weights and loss_scale.

    The object cells' noobj weight against the empty cells' tells noobj_scope: 0 is 'cell', the
    same is 'predictor', another is 'own_weight' (with ``seen_noobj_object`` False, B = 1, it is
    the default's). When the four products are a common multiple of the default λ (5, 1, 0.5, 1),
    that multiple is reported as loss_scale (darknet's 0.5); otherwise loss_scale is 1 and λ are
    the products.
    """
    coord, obj, noobj, noobj_object, cls = w
    four = np.array([coord, obj, noobj, cls])
    scale = float(four @ DEFAULT_WEIGHTS / (DEFAULT_WEIGHTS @ DEFAULT_WEIGHTS))
    if scale > 0 and np.allclose(four, scale * DEFAULT_WEIGHTS, rtol=1e-4, atol=0):
        knobs = {"loss_scale": _tidy(scale), **dict(zip(WEIGHTS, DEFAULT_WEIGHTS.tolist()))}
    else:
        scale = 1.0
        knobs = {"loss_scale": 1.0, **{name: _tidy(v) for name, v in zip(WEIGHTS, four)}}
    knobs["noobj_scope"] = _scope_of(w) if seen_noobj_object else LossSpec().noobj_scope
    if knobs["noobj_scope"] == "own_weight":
        knobs["lambda_noobj_object"] = _tidy(noobj_object / scale)
    return knobs


def _scope_of(w: np.ndarray) -> str:
    """noobj_scope from the fitted weights of :data:`COLUMNS`: the object cells' other predictors
    weighed 0 ('cell'), as the empty cells ('predictor'), or otherwise ('own_weight'; 'predictor'
    where the empty cells weigh 0, which no dialect expresses)."""
    noobj, noobj_object = w[2], w[3]
    if noobj_object <= 1e-4 * w.max():
        return "cell"
    if noobj > 0 and abs(noobj_object - noobj) <= 1e-4 * noobj:
        return "predictor"
    return "own_weight" if noobj > 0 else "predictor"


def _snapped(fit: Fit, columns: list) -> tuple[np.ndarray, float]:
    """The weights of :data:`COLUMNS` as a person writes them, and the misfit they leave.

    Column by column (the empty cells' noobj first, so that the object cells' can then equal it),
    the simplest value within fitting noise replaces the fitted one: the simplest of 0, the
    noobj_scope values (the object cells' other predictors weighed 0 or as the empty cells), the
    catalogue's weights and the fitted value's roundings, whose fit, with the columns not yet
    snapped fitted again around it, leaves a misfit within the noise (:func:`_noise`). So 0.50001
    reads 0.5 and a weight of 2e-7 reads 0 (an absent term), and a knob whose effect lies within
    the noise (noobj_scope='own_weight' at the empty cells' weight) is not taken for a dialect.
    """
    A, b = fit.scaled
    at = {column: k for k, column in enumerate(columns)}
    w = np.array(fit.weights, dtype=np.float64)
    misfit = _misfit(A, b, w)
    noise = _noise(misfit)
    fixed: dict[int, float] = {}
    for column in sorted(columns, key=SNAP_ORDER.index):
        for value in _written_values(column, float(w[at[column]]), fixed):
            trial, trial_misfit = _fit_around(A, b, at, {**fixed, column: value})
            if trial_misfit <= noise:
                w, misfit, fixed[column] = trial, trial_misfit, value
                break
    out = np.zeros(len(COLUMNS))
    out[columns] = w
    return out, misfit


# A snapped weight may leave up to this relative misfit whatever the fit's own (16 float32
# roundings: a loss computed in float32 rounds each value to ~6e-8).
SNAP_FLOOR = 1e-6


def _noise(misfit: float) -> float:
    """The misfit a fit of ``misfit`` may grow to when its weights are snapped: twice its own, at
    least :data:`SNAP_FLOOR`, at most :data:`MATCH_TOLERANCE`. (A weight 2% off on a column that
    weighs little in the totals moves them by 1e-5 or so: within the tolerance of a match, but
    far beyond the noise of a float32 loss that computes the weight exactly.)"""
    return min(max(2 * misfit, SNAP_FLOOR), MATCH_TOLERANCE)


# The order columns are snapped in: the empty cells' noobj weight before the object cells' (which
# may equal it), then the others.
SNAP_ORDER = (2, 3, 0, 1, 4)


def _fit_around(A: np.ndarray, b: np.ndarray, at: dict, fixed: dict) -> tuple[np.ndarray, float]:
    """Weights (in ``at``'s order) with ``fixed`` columns held at their values and the others
    fitted (non-negative) to what those leave; and the largest misfit."""
    w = np.zeros(len(at))
    for column, value in fixed.items():
        w[at[column]] = value
    free = [k for column, k in at.items() if column not in fixed]
    if free:
        w[free] = _nonnegative_lstsq(A[:, free], b - A @ w)
    return w, _misfit(A, b, w)


def _misfit(A: np.ndarray, b: np.ndarray, w: np.ndarray) -> float:
    """The largest misfit of weights ``w`` to the rows (A, b) of :func:`_fit`, relative to each value."""
    return float(np.max(np.abs(A @ w - b)))


def _written_values(column: int, fitted: float, fixed: dict) -> list[float]:
    """The values a person may have written for a weight fitted as ``fitted``, simplest first:
    for the object cells' noobj, the empty cells' (noobj_scope 'predictor') and 0 ('cell'); then
    0, the catalogue's weights of that column and ``fitted`` rounded to 1–6 significant digits,
    by digits, then by distance."""
    scope = [fixed[2], 0.0] if column == 3 and 2 in fixed else []
    others = {0.0, *_catalogued_weights()[column], *(float(f"{fitted:.{d}g}") for d in range(1, 7))}
    return list(dict.fromkeys([*scope, *sorted(others, key=lambda v: (_digits(v), abs(v - fitted)))]))


def _digits(value: float) -> int:
    """Significant digits of ``value`` as written (0 for 0)."""
    return next((d for d in range(1, 18) if float(f"{value:.{d}g}") == value), 17) if value else 0


@functools.cache
def _catalogued_weights() -> tuple[frozenset, ...]:
    """Per column of :data:`COLUMNS`, the weights (λ · loss_scale) the catalogue's dialects use."""
    keys = [values_key(entry.spec()) for entry in entries() if entry.expressible]
    return tuple(frozenset(key[f"weight_{column}"] for key in keys) for column in COLUMNS)


def _tidy(value: float) -> float:
    """A fitted weight with the fewest significant digits (up to 6) that stay within 2e-5 of
    it: float32 implementations fit to ~1e-6 relative, so 0.199999 reads 0.2; −0 reads 0."""
    for digits in range(1, 7):
        rounded = float(f"{value:.{digits}g}")
        if abs(rounded - value) <= 2e-5 * abs(value):
            return rounded + 0.0  # (−0 + 0 = +0)
    return float(f"{value:.6g}") + 0.0


class Fit(NamedTuple):
    """One candidate dialect under one reduction, fitted to one set of probes."""

    residual: float
    spec_none: LossSpec  # the candidate's knobs, reduction 'none'
    reduction: str
    weights: np.ndarray  # fitted λ·loss_scale of the fitted columns
    agree: int  # probes on which the loss and the candidate both give values, or both do not
    refused: int  # probes the loss gives values on and the candidate refuses
    components: list  # the candidate's columns per probe
    scaled: tuple  # (A, b): the rows the weights were fitted to, each divided by its value (_fit)

    @property
    def matches(self) -> bool:
        return self.residual <= MATCH_TOLERANCE

    def knob(self, name: str):
        """The candidate's value of knob ``name`` (its reduction is the fit's own)."""
        return self.reduction if name == "reduction" else getattr(self.spec_none, name)


def _fits(observed: list, candidates, set_name: str, columns) -> list[Fit]:
    """Every candidate and reduction fitted to the observations on one set of probes, best first:
    one that agrees with the loss on more probes about which to give values at all wins (one that
    refuses probes the loss accepts is compared on the others, never dropped for it); then the
    smaller misfit."""
    fits = []
    for spec_none, by_set in candidates:
        components = by_set[set_name]
        agree = sum(1 for comps, y in zip(components, observed) if (comps is None) == (y is None))
        refused = sum(1 for comps, y in zip(components, observed) if comps is None and y is not None)
        for reduction in ("sum", "mean", "none"):
            design = _design(components, observed, reduction, columns)
            if design is not None:
                X, y, _ = design
                w, residual, scaled = _fit(X, y)
                fits.append(Fit(residual, spec_none, reduction, w, agree, refused, components, scaled))
    fits.sort(key=lambda fit: (not fit.matches, -fit.agree, fit.residual))
    return fits


class TermFit(NamedTuple):
    """How one term of the loss compares with the oracle's, from its family of probes."""

    family: str  # a key of term_probes.FAMILIES
    matches: bool
    residual: float
    weights: dict  # column → fitted λ·loss_scale, only where the term matches
    knobs: dict  # the knobs every fitting candidate agrees on (those that change this term)
    problem: str | None  # what the loss did on these probes, when it failed on some

    def line(self, gradient_matches: bool = False) -> str:
        """The term in one line: its weight where it matches, its residual where it does not.
        ``gradient_matches``: its gradient is the oracle's (per the blame), so what keeps it from
        matching lies elsewhere, and the line sends the reader there."""
        words = TERM_WORDS[self.family]
        if not self.matches:
            seen = "; its gradient matches: see what differs" if gradient_matches else ""
            how = f"relative residual {self.residual:.2g}{seen}"
            why = f"; {self.problem}" if self.problem else ""
            return f"{words}: no dialect reproduces it ({how}){why}"
        column = OWN_TERM[self.family]
        if column is None:
            return f"{words}: matches: reads none of them"
        weight = f"weight {_tidy(self.weights[column]):g} ({WEIGHT_OF_COLUMN[column]} · loss_scale)"
        under = ", ".join(f"{k}={v!r}" for k, v in self.knobs.items())
        return f"{words}: matches, {weight}" + (f", under {under}" if under else "")


# column → the λ that weighs it: the components' weights, then the object cells' noobj's (LAMBDAS' order).
WEIGHT_OF_COLUMN = dict(zip((*COMPONENTS, "noobj_object"), LAMBDAS))
# The knobs a term's family can show: where its fitting candidates agree on one, it is reported.
FAMILY_KNOBS = ("iou_frame", "wh_mode", "signed_sqrt_eps", "conf_target", "responsible", "iou_eps", "reduction")


def _term_fit(family: str, values_fn: ValuesFn, candidates, S: int, B: int, C: int) -> TermFit:
    batches = family_probes(S, B, C)[family]
    failed: list = []
    observed = [_observe(values_fn, batch, failed) for batch in batches]
    columns = [COLUMNS.index(c) for c in FAMILIES[family]]
    fits = _fits(observed, candidates, family, columns)
    problems = [f for f in failed if f is not None]
    problem = failure_summary(problems, [len(p) for p, _ in batches]) if problems else None
    if not fits:
        return TermFit(family, False, float("inf"), {}, {}, problem or "no value to compare")
    best = fits[0]
    if not best.matches:
        return TermFit(family, False, best.residual, {}, {}, problem)
    fitting = [fit for fit in fits if fit.matches]
    agreed = {}
    for name in FAMILY_KNOBS:
        values = {fit.knob(name) for fit in fitting}
        every = {fit.knob(name) for fit in fits}
        if len(values) == 1 and len(every) > 1:  # it matters for this term, and only one value fits
            agreed[name] = values.pop()
    # A knob that changes nothing unless another has a value is left out where that one has not.
    agreed = {
        k: v
        for k, v in agreed.items()
        if k not in ONLY_UNDER or agreed.get(ONLY_UNDER[k][0], ONLY_UNDER[k][1]) == ONLY_UNDER[k][1]
    }
    weights = {COLUMNS[c]: float(v) for c, v in zip(columns, best.weights)}
    return TermFit(family, True, best.residual, weights, agreed, problem)


class IdentificationFailed(ValueError):
    """No dialect could be fitted to a loss's values: what happened (``head``: 'the loss failed on
    every probe') and why, one cause a line (``causes``: :func:`failure_groups`); its message is
    'HEAD: CAUSE; CAUSE'."""

    def __init__(self, head: str, causes: list[str]):
        super().__init__(f"{head}: {'; '.join(causes)}")
        self.head, self.causes = head, causes


def identify(
    values_fn: ValuesFn,
    S: int = 7,
    B: int = 2,
    C: int = 20,
    grad_fn: GradFn | None = None,
    per_term: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> Identification:
    """Find the dialect under which the oracle matches ``values_fn``.

    ``values_fn(pred, target)`` takes canonical float64 arrays (N, S, S, C + 5B), (N, S, S, C + 5)
    and returns the total: a scalar, or (N,) per-image values. ``grad_fn``, if given, returns
    d total / d pred in pred's shape, and decides ``iou_grad``. ``per_term``: when nothing matches, fit each term
    on its own family of probes (:mod:`conformance.dialects.term_probes`), which says which terms match
    when the whole does not. ``progress(k, total)`` is called before the loss's k-th call of about
    ``total`` (the total grows when the term probes are needed, and shrinks when gradients are not).
    Raises :class:`IdentificationFailed` where no dialect can be fitted at all.
    """
    candidates = _candidate_columns(S, B, C)
    batches = _probes(S, B, C, "general")
    calls = _Calls(progress, len(batches) * (2 if grad_fn is not None else 1))
    values_fn = calls.counted(values_fn)
    sizes = [len(pred) for pred, _ in batches]
    failed: list[tuple[int, str] | None] = []  # per probe
    observed = [_observe(values_fn, batch, failed) for batch in batches]
    failures = [f for f in failed if f is not None]
    seen_noobj_object = B > 1
    columns = [k for k, name in enumerate(COLUMNS) if seen_noobj_object or name != "noobj_object"]
    fits = _fits(observed, candidates, "general", columns)
    if not fits:
        if len(failures) == len(batches):
            raise IdentificationFailed("the loss failed on every probe", failure_groups(failures, sizes))
        if failures:
            raise IdentificationFailed("no dialect could be fitted", failure_groups(failures, sizes))
        raise IdentificationFailed(
            "no dialect could be fitted", ["the loss's values have neither one value per batch nor one per image"]
        )
    best = fits[0]
    matches = best.matches
    # Where the whole matches, every term does: the term probes are only needed to say which do not.
    per_term = per_term and not matches
    if per_term:
        calls.total += sum(len(family) for family in family_probes(S, B, C).values())
    terms = tuple(_term_fit(f, values_fn, candidates, S, B, C) for f in family_probes(S, B, C)) if per_term else ()
    residual = best.residual
    if matches:
        weights, residual = _snapped(best, columns)
    else:
        weights = _weights_from_terms(terms)
    spec = best.spec_none.replace(reduction=best.reduction, **_weights_as_knobs(weights, seen_noobj_object))
    if grad_fn is not None and spec.conf_target != "iou":
        calls.total -= len(batches)  # (gradients tell nothing more)
    spec, gradients_seen = _settle_iou_grad(spec, batches, grad_fn and calls.counted(grad_fn))
    undetermined = ()
    if matches:  # only knobs that really could not be told apart among the dialects that fit
        ties = [fit for fit in fits if fit.matches and fit.agree == best.agree]
        undetermined = tuple(name for name in TOLD_APART if len({fit.knob(name) for fit in ties}) > 1)
        if not seen_noobj_object:
            undetermined = ("noobj_scope", *undetermined)
    if not gradients_seen and spec.conf_target == "iou":
        undetermined += ("iou_grad",)  # only gradients can tell
    notes = (
        []
        if matches
        else [f"no dialect reproduces the values: the closest leaves a relative residual of {best.residual:.2e}"]
    )
    # The probes the loss failed on where this dialect gives values (where it refuses them too,
    # as 'sqrt' refuses negative sizes, failing is what the dialect does).
    unexplained = [f for f, comps in zip(failed, best.components) if f is not None and comps is not None]
    failed_probes = failure_summary(unexplained, sizes) if unexplained else None
    if best.refused:
        notes.append(
            f"the loss gives values on {best.refused} probe(s) with negative predicted sizes, which "
            f"wh_mode={spec.wh_mode!r} refuses; it was compared on the others"
        )
    fitted = {name for t in terms if t.matches for name in (WEIGHT_OF_COLUMN[c] for c in t.weights)}
    absent = tuple(name for name, weight in zip(WEIGHTS, spec.weights()) if weight == 0) if matches else ()
    return Identification(
        spec, matches, residual, spec.preset_name(), undetermined, tuple(notes), terms,
        frozenset(LAMBDAS) if matches else frozenset(fitted), absent, failed_probes,
    )  # fmt: skip


class _Calls:
    """Counts the loss's calls during identification for ``progress(k, total)``."""

    def __init__(self, progress: Callable[[int, int], None] | None, total: int):
        self.progress, self.total, self.done = progress, total, 0

    def counted(self, function: Callable) -> Callable:
        if self.progress is None:
            return function

        def call(*args):
            self.done += 1
            self.progress(self.done, max(self.total, self.done))
            return function(*args)

        return call


def _weights_from_terms(terms) -> np.ndarray:
    """When nothing matches as a whole: each weight (λ·loss_scale, per column) from the family
    where its term matches on its own, the paper's where none does, so that no weight that
    reproduces nothing is taken for the dialect's."""
    paper = LossSpec()
    weights = dict(
        zip(COLUMNS, (paper.lambda_coord, paper.lambda_obj, paper.lambda_noobj, paper.lambda_noobj, paper.lambda_class))
    )
    found = {column: value for term in terms if term.matches for column, value in term.weights.items()}
    weights.update(found)
    if "noobj" in found and "noobj_object" not in found:
        weights["noobj_object"] = found["noobj"]  # the paper's scope
    return np.array([weights[c] for c in COLUMNS])


def _settle_iou_grad(spec: LossSpec, batches, grad_fn: GradFn | None) -> tuple[LossSpec, bool]:
    """Under conf_target='iou', pick the iou_grad whose oracle gradient is nearer the implementation's;
    (the spec, whether any gradient was seen: False without gradients, or where every probe's failed)."""
    if grad_fn is None or spec.conf_target != "iou":
        return spec, grad_fn is not None
    observed = []  # (batch, the implementation's gradient), once per batch for both choices
    for batch in batches:
        try:
            observed.append((batch, np.asarray(grad_fn(*batch), dtype=np.float64)))
        except Exception:  # a probe the implementation fails on says nothing about iou_grad
            continue
    if not observed:
        return spec, False
    errors = {}
    for choice in ("detached", "through"):
        candidate = spec.replace(iou_grad=choice)
        total = 0.0
        for batch, got in observed:
            try:
                expected = loss_and_grad(*batch, candidate)[1].total
            except ValueError:  # nor does one the oracle refuses
                continue
            total += float(np.linalg.norm(got - expected))
        errors[choice] = total
    return spec.replace(iou_grad=min(errors, key=errors.get)), True
