"""Where a loss parts from the oracle, said in the loss's structure: which channels of which kind
of cell, and what that means for the user's code.

The five outputs (coord, obj, noobj, cls, total) do not say where a difference lies: a class
term applied in every cell changes the probes of every term. The gradient does. Each element of
d total / d pred belongs to one *part* of the loss (:data:`PARTS`): the responsible predictor's
centre, its size, its confidence; the empty cells' confidences; the object cells' other
predictors' confidences; the object cells' class scores; or channels no term reads (the empty
cells' class scores and boxes, the other predictors' boxes). :func:`locate` compares the loss's
gradient with the oracle's part by part on a few random batches (cells near a kink left out) and
names the first part that differs, with what the difference looks like: a gradient where the
oracle has none, none where it has one, a multiple of the oracle's, or another. When every
part's gradient matches and the values differ, the difference has no gradient (a constant or a
detached term), and its size per object cell is given. Without gradients, the values are
compared on the term probes (:mod:`.term_probes`), each of which isolates a term.

When no dialect reproduces the values, the closest by values may carry knobs that only make up
for a term no dialect has. :func:`closest_by_gradient` gives the dialect a few knobs away (searched
one knob at a time) under which the most parts of the loss's gradient are the oracle's: a term
without gradient cannot move them, and a term no dialect has stays in its own part, so that is the
dialect to hold the loss to.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from yolov1_loss.conformance.dialects import catalogue
from yolov1_loss.conformance.dialects.fitting import VALUE_KNOBS
from yolov1_loss.conformance.dialects.term_probes import TERM_WORDS, family_probes
from yolov1_loss.conformance.inputs.example import Example, Recipe, build
from yolov1_loss.conformance.suite.comparison import comparable_elements, fmt, grad_mismatch, part_masks, part_of
from yolov1_loss.conformance.suite.tolerances import differs, element_fields, value_tolerance, worst_element
from yolov1_loss.conformance.user_loss.implementation import Implementation, ImplementationError
from yolov1_loss.reference import LossSpec, loss, loss_and_grad
from yolov1_loss.reference.spec import CHOICES
from yolov1_loss.reference.spec import LAMBDAS as WEIGHT_NAMES
from yolov1_loss.reference.validate import pred_channel_name


class Part(NamedTuple):
    """A channel group of one kind of cell, and the term whose gradient reaches it."""

    name: str  # short, for a failure's "the difference lies in …"
    what: str  # the channels, in words (the subject of a sentence)
    term: str | None  # the term that reaches them, in words; None: no term reads them
    cells: str  # the kind of cell they lie in: 'empty' or 'object'
    stray: str | None = None  # for channels no term reads: what a gradient there means
    squared: str | None = None  # what an extra w·v² on them (v their value) means
    weight: str | None = None  # the λ that weighs their term


# In the order a blame names them; each part's elements: comparison.part_masks(example)[part.name].
PARTS = (
    Part(
        "the class scores of empty cells",
        "the class scores of empty cells",
        None,
        "empty",
        "the class term is applied in every cell, the paper applies it only where an object is",
    ),
    Part(
        "the boxes of empty cells",
        "the box channels (x, y, w, h) of empty cells",
        None,
        "empty",
        "a box term is applied in every cell, the paper applies coord only where an object is",
    ),
    Part(
        "the boxes of the other predictors",
        "the boxes of the object cells' predictors that are not responsible",
        None,
        "object",
        "coord (or the IoU) reaches every predictor of an object cell, the paper only the responsible one "
        "(the highest IoU)",
    ),
    Part(
        "coord (centres)",
        "the responsible predictors' centres (x̂, ŷ)",
        "coord's centre term (λ_coord·((x − x̂)² + (y − ŷ)²))",
        "object",
        weight="lambda_coord",
    ),
    Part(
        "coord (sizes)",
        "the responsible predictors' sizes (ŵ, ĥ)",
        "coord's size term (λ_coord·((f(w) − g(ŵ))² + …), wh_mode)",
        "object",
        weight="lambda_coord",
    ),
    Part(
        "obj",
        "the responsible predictors' confidences",
        "obj (λ_obj·(c* − ĉ)², c* the IoU or 1)",
        "object",
        squared="they pay the no-object term too, the paper spares the responsible predictor",
        weight="lambda_obj",
    ),
    Part(
        "noobj (empty cells)",
        "the confidences of empty cells",
        "the empty cells' no-object term (λ_noobj·ĉ²)",
        "empty",
        weight="lambda_noobj",
    ),
    Part(
        "noobj (object cells)",
        "the confidences of the object cells' other predictors",
        "their no-object term (noobj_scope)",
        "object",
        weight="lambda_noobj_object",
    ),
    Part("cls", "the class scores of object cells", "cls (λ_class·Σ(q − p)²)", "object", weight="lambda_class"),
)
NO_GRADIENT = "a term with no gradient"  # the part a value-only difference lies in
# What the other predictors' boxes getting a gradient means where the responsible one's gets none.
ANOTHER_RESPONSIBLE = (
    "another predictor than the oracle's is made responsible (the oracle's: the highest IoU with the target, "
    "in the dialect's IoU frame), and coord reaches that one"
)
OTHER_BOXES, RESPONSIBLE_BOX = "the boxes of the other predictors", ("coord (centres)", "coord (sizes)")

# The parts whose gradient each family of term probes is about: where none of them differs, the
# family's term has the oracle's gradient, whatever its probes' values say.
FAMILY_GRADIENTS = {
    "noobj": ("noobj (empty cells)",),
    "noobj_object": ("noobj (object cells)",),
    "cls": ("cls",),
    "obj": ("obj",),
    "coord": ("coord (centres)", "coord (sizes)", "the boxes of the other predictors"),
    "empty": ("the class scores of empty cells", "the boxes of empty cells"),
}

# The part each family of term probes isolates, for a loss without gradients.
FAMILY_PARTS = {
    "noobj": "noobj (empty cells)",
    "noobj_object": "noobj (object cells)",
    "cls": "cls",
    "obj": "obj",
    "coord": "coord",
    "empty": "the class scores and boxes of empty cells",
}

# The kind of cell ('empty' or 'object') each part a blame may name lies in, the term probes'
# parts too; a difference without gradient (NO_GRADIENT) may lie in either.
CELLS_OF = {
    **{part.name: part.cells for part in PARTS},
    FAMILY_PARTS["coord"]: "object",
    FAMILY_PARTS["empty"]: "empty",
}

# The knobs the search for the dialect nearest the loss's gradients moves, one at a time
# (noobj_scope between the two that need no weight of their own).
SEARCHED = {
    **{
        name: CHOICES[name]
        for name in ("iou_frame", "wh_mode", "signed_sqrt_eps", "conf_target", "iou_grad", "responsible")
    },
    "noobj_scope": ("cell", "predictor"),
    "iou_eps": VALUE_KNOBS["iou_eps"],
}


class Blame(NamedTuple):
    """Where a loss parts from the oracle, in words."""

    part: str  # the part that differs first: a name of PARTS, of FAMILY_PARTS, or NO_GRADIENT
    line: str  # what differs and what it means, in words a user can act on
    where: str | None  # the element shown: image, cell, channel, both gradients
    others: tuple  # the names of the other parts that differ
    spec: LossSpec  # the dialect compared with: the one the check holds the loss to
    gradients: bool = True  # whether gradients were compared (False: values on the term probes)

    def lines(self) -> list[str]:
        """The report's lines, right after its verdict."""
        lines = [f"what differs: {self.line}"]
        if self.where:
            lines.append(f"  where: {self.where}")
        if self.others:
            lines.append(f"  also differ: {', '.join(self.others)}")
        return lines

    def gradient_matches(self, family: str) -> bool:
        """Whether the gradient of the parts a family of term probes is about (:data:`FAMILY_GRADIENTS`)
        matches the oracle's on every probe (False where no gradient was compared)."""
        differing = {self.part, *self.others}
        return self.gradients and not differing.intersection(FAMILY_GRADIENTS[family])

    def to_dict(self) -> dict:
        return {"part": self.part, "line": self.line, "where": self.where, "others": list(self.others),
                "dialect": self.spec.knobs()}  # fmt: skip


class _Probe(NamedTuple):
    """One batch: the inputs (rounded to the loss's dtype), the loss's total and its gradient."""

    pred: np.ndarray
    target: np.ndarray
    total: np.ndarray  # () or (N,)
    grad: np.ndarray | None  # canonical d total / d pred


def probe_recipes(spec: LossSpec) -> tuple[Recipe, ...]:
    """Random batches where every part is non-zero (about a third of the cells hold an object,
    predictors scattered around it), and one with no object, where a term present in every
    image shows."""
    return (
        Recipe(spec, images=2, seed=11),
        Recipe(spec, images=3, seed=12),
        Recipe(spec, images=1, occupancy="empty", seed=13),
    )


def _recipe_batches(spec: LossSpec) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (pred, target) batches of :func:`probe_recipes`, canonical."""
    return [(ex.pred, ex.target) for ex in map(build, probe_recipes(spec))]


def _observe(impl: Implementation, spec: LossSpec, batches, progress=None) -> list[_Probe]:
    """The loss on each (pred, target) batch, rounded to its dtype; batches it fails on, or gives
    non-finite values on, are left out. ``progress(k, n)``: before its k-th call of n."""
    grads = "total" if impl.has_gradient else "none"
    out = []
    for k, (pred, target) in enumerate(batches, 1):
        if progress is not None:
            progress(k, len(batches))
        ex = Example(spec, pred, target).rounded(impl.dtype)
        try:
            got = impl.evaluate(ex.pred, ex.target, spec, grads=grads)
        except ImplementationError:
            continue
        total, grad = got.values["total"], got.grads.get("total")
        if np.all(np.isfinite(total)) and (grad is None or np.all(np.isfinite(grad))):
            out.append(_Probe(ex.pred, ex.target, total, grad))
    return out


class _Comparison(NamedTuple):
    """The loss's gradient against the oracle's under one dialect, on one probe."""

    example: Example
    total: np.ndarray  # the oracle's total, () or (N,)
    expected: np.ndarray  # the oracle's d total / d pred
    tolerance: np.ndarray
    bad: np.ndarray  # elements beyond tolerance, in cells away from kinks
    comparable: np.ndarray  # (N, S, S, 1): the cells away from kinks


def _compare(probe: _Probe, spec: LossSpec, dtype: str) -> _Comparison:
    """Raises ValueError where the oracle refuses the probe under ``spec``."""
    ex = Example(spec, probe.pred, probe.target)
    values, grads = loss_and_grad(ex.pred, ex.target, spec)
    comparable = comparable_elements(ex, dtype, project=False)
    tolerance, bad = grad_mismatch(ex, dtype, probe.grad, grads._asdict(), "total", comparable)
    return _Comparison(ex, np.asarray(values.total), grads.total, tolerance, bad, comparable)


class _Score(NamedTuple):
    """How far the loss's gradient is from the oracle's under one dialect, on the probes."""

    parts: int  # the parts of PARTS in which some element differs
    elements: int  # the elements that differ


def _mismatches(probes: list[_Probe], spec: LossSpec, dtype: str) -> _Score | None:
    """How many parts, and elements, of the gradient differ under ``spec``; None where the oracle
    refuses a probe."""
    try:
        comparisons = [(probe, _compare(probe, spec, dtype)) for probe in probes]
    except ValueError:
        return None
    return _Score(len(_differing_parts(comparisons)), sum(int(c.bad.sum()) for _, c in comparisons))


def _variants(spec: LossSpec):
    """``spec`` with one searched knob (or the reduction, between sum and mean) changed."""
    changes = [{name: value} for name, values in SEARCHED.items() for value in values if value != getattr(spec, name)]
    if spec.reduction in ("sum", "mean"):
        changes.append({"reduction": "mean" if spec.reduction == "sum" else "sum"})
    for change in changes:
        try:
            yield spec.replace(**change)
        except ValueError:  # a combination the spec refuses
            continue


def gradient_dialect(probes: list[_Probe], spec: LossSpec, dtype: str) -> LossSpec | None:
    """The dialect under which the most parts of the loss's gradient (:data:`PARTS`) are the
    oracle's, searched from ``spec`` one knob at a time (each step to the variant under which the
    fewest parts differ, then the fewest elements); None where no part is the oracle's under the
    dialect found (nothing then says which dialect the loss is near).

    Why parts, not every element: a term no dialect has (a class term in every cell, say) lies in
    a part of its own, whose elements differ under every dialect. Asking every element to match
    then rejects even the dialect the rest of the loss computes, and the values, which that term
    pulls towards whatever knobs make up for it, give a dialect under which the right terms seem
    wrong. Counting the parts that agree keeps the dialect under which the rest of the loss is the
    oracle's; the elements only break ties. A searched knob the gradients cannot tell apart is
    the nearest known dialect's (the values, no dialect's, cannot tell it either: iou_eps in
    float32, say)."""
    best, score = spec, _mismatches(probes, spec, dtype)
    for _ in SEARCHED:  # each step changes one knob; no more steps than knobs
        if score is None or score.elements == 0:  # None: the oracle refuses a probe under spec
            break
        scored = [(n, variant) for variant in _variants(best) if (n := _mismatches(probes, variant, dtype)) is not None]
        n, variant = min(scored, key=lambda scored_variant: scored_variant[0], default=(score, best))
        if n >= score:
            break
        best, score = variant, n
    if score is None or score.parts == len(PARTS):
        return None
    known = catalogue.nearest(best).spec(best.S, best.B, best.C)
    for name in SEARCHED:
        try:
            theirs = best.replace(**{name: getattr(known, name)})
        except ValueError:  # a combination the spec refuses
            continue
        if theirs != best and _mismatches(probes, theirs, dtype) == score:
            best = theirs
    return best


def _combination(actual: np.ndarray, columns: list, tolerance: np.ndarray) -> np.ndarray | None:
    """The coefficients c with ``actual`` = Σ c_k·columns_k within tolerance (by least squares),
    or None where no combination comes that close."""
    A = np.stack(columns, axis=-1)
    if not A.any():
        return None
    c = np.linalg.lstsq(A, actual, rcond=None)[0]
    return None if np.any(np.abs(A @ c - actual) > max(1.0, float(np.abs(c).max())) * tolerance) else c


def _how(part: Part, probe: _Probe, c: _Comparison, bad, inside) -> str:
    """What the difference in one part looks like, as the rest of a sentence about its channels
    (``bad``: its elements that differ; ``inside``: all of its elements away from kinks)."""
    actual, expected, tolerance = probe.grad, c.expected, c.tolerance
    if part.term is None:
        return f"get a gradient: {part.stray}"
    if np.all(np.abs(expected[bad]) <= tolerance[bad]):
        return f"get a gradient where the oracle's is 0: {part.term} reaches them"
    if np.all(np.abs(actual[bad]) <= tolerance[bad]):
        return f"get no gradient: {part.term} is missing, or detached"
    multiple = _combination(actual[inside], [expected[inside]], tolerance[inside])
    if multiple is not None:
        k = multiple[0]
        return f"get {k:.3g} times the oracle's gradient: {part.term} weighs {k:.3g} times the dialect's"
    with_square = _combination(actual[inside], [expected[inside], probe.pred[inside]], tolerance[inside])
    if part.squared and with_square is not None and with_square[1] > 1e-3:
        twice_w = with_square[1]
        return f"get an extra gradient, {twice_w:.3g} times their value: {part.squared} (an extra {twice_w / 2:.3g}·v²)"
    return f"get a gradient unlike the oracle's: {part.term} differs"


def _responsible_left_out(probe: _Probe, c: _Comparison, bad, masks) -> bool:
    """Whether, in the cells where the other predictors' boxes get a gradient (``bad``), the
    responsible one's box gets none where the oracle's gets some: another predictor is responsible."""
    cells = bad.any(axis=-1, keepdims=True)
    box = (masks[RESPONSIBLE_BOX[0]] | masks[RESPONSIBLE_BOX[1]]) & cells & c.comparable
    expected_some = box & (np.abs(c.expected) > c.tolerance)
    return bool(expected_some.any() and np.all(np.abs(probe.grad[expected_some]) <= c.tolerance[expected_some]))


def _differing_parts(comparisons: list[tuple[_Probe, _Comparison]], unfitted=frozenset()) -> list[tuple]:
    """The parts (:data:`PARTS`, in order) in which the loss's gradient differs on some probe,
    each as (the part, the first such probe, its comparison, its part masks, the part's elements
    there that differ). ``unfitted``: the weights identification could not fit (the paper's
    stand in for them): a part whose gradient differs from the oracle's only by such a weight
    matches."""
    masked = [(probe, c, part_masks(c.example)) for probe, c in comparisons]
    differing = []
    for part in PARTS:
        for probe, c, masks in masked:
            bad = c.bad & masks[part.name]
            inside = masks[part.name] & c.comparable
            if (
                part.weight in unfitted
                and _combination(probe.grad[inside], [c.expected[inside]], c.tolerance[inside]) is not None
            ):
                continue
            if bad.any():
                differing.append((part, probe, c, masks, bad))
                break
    return differing


def _by_gradient(comparisons: list[tuple[_Probe, _Comparison]], spec: LossSpec, unfitted=frozenset()):
    """(the first part that differs, its sentence, where, the other parts) under ``spec``, from
    each probe and its comparison under it; None when every part matches (:func:`_differing_parts`,
    ``unfitted`` its)."""
    differing = _differing_parts(comparisons, unfitted)
    if not differing:
        return None
    part, probe, c, masks, bad = differing[0]
    if part.name == OTHER_BOXES and _responsible_left_out(probe, c, bad, masks):
        how = f"get a gradient: {ANOTHER_RESPONSIBLE}"
    else:
        how = _how(part, probe, c, bad, masks[part.name] & c.comparable)
    at = worst_element(probe.grad, c.expected, c.tolerance, bad)
    fields = element_fields(spec, at)
    where = (
        f"image {fields['image']}, cell {fields['cell']}, channel {fields['channel']!r}: the loss's gradient "
        f"{probe.grad[at]:.4g}, the oracle's {c.expected[at]:.4g}"
    )
    return part.name, f"{part.what} {how}", where, tuple(other.name for other, *_ in differing[1:])


def _without_gradient(comparisons: list[tuple[_Probe, _Comparison]], dtype: str, identified) -> str | None:
    """When every gradient matches: the size of the value-only difference on each probe and its
    comparison, in words; None when the values match too."""
    extra, cells, per_image = 0.0, 0, None
    for probe, c in comparisons:
        ex, expected = c.example, c.total
        if not differs(probe.total, expected, value_tolerance(ex, dtype, "total")).any():
            continue
        difference = float(np.sum(probe.total - expected))
        if ex.has_object.any():
            extra, cells = extra + difference, cells + int(ex.has_object.sum())
        else:
            per_image = difference / ex.images
    if per_image is not None:
        size = f"about {per_image:.3g} per image, also in images with no object"
    elif cells:
        size = f"about {extra / cells:.3g} per object cell"
    else:
        return None
    line = f"the difference has no gradient: a constant or detached extra term of {size}"
    unmatched = [TERM_WORDS[term.family] for term in getattr(identified, "terms", ()) if not term.matches]
    if unmatched:
        their = "its" if len(unmatched) == 1 else "their"
        line += f"; it is what keeps {' and '.join(unmatched)} from matching on {their} own probes"
    return line


def _by_term_probes(impl: Implementation, spec: LossSpec) -> Blame | None:
    """For a loss without gradients: the first family of term probes on which its values differ."""
    for family, batches in family_probes(spec.S, spec.B, spec.C).items():
        for pred, target in batches:
            ex = Example(spec, pred, target).rounded(impl.dtype)
            try:
                got = impl.evaluate(ex.pred, ex.target, spec).values["total"]
                expected = np.asarray(loss(ex.pred, ex.target, spec).total)
            except (ImplementationError, ValueError):
                continue
            if differs(got, expected, value_tolerance(ex, impl.dtype, "total")).any():
                line = (
                    f"the values differ on the probes of {TERM_WORDS[family]}: the loss gives {fmt(got)} where the "
                    f"oracle gives {fmt(expected)} (without gradients, the check cannot say more)"
                )
                return Blame(FAMILY_PARTS[family], line, None, (), spec, gradients=False)
    return None


def closest_by_gradient(impl: Implementation, batches, progress=None) -> LossSpec | None:
    """The dialect under which the most parts of the loss's gradient are the oracle's on
    ``batches`` (canonical (pred, target): identification's probes, whose responsible predictors
    are decided), searched from ``impl.fixed_spec`` (:func:`gradient_dialect`); None without
    gradients, or where no part is the oracle's under any dialect a few knobs away. For a loss
    whose values no dialect reproduces, this is the closest: a term without gradient moves the fit
    of the values, never the gradients, and a term no dialect has moves only its own part.
    ``progress(k, n)``: before the loss's k-th call of n."""
    if not impl.has_gradient:
        return None
    probes = _observe(impl, impl.fixed_spec, batches, progress)
    return gradient_dialect(probes, impl.fixed_spec, impl.dtype) if probes else None


def locate(impl: Implementation, identified=None, closest: bool = False) -> Blame | None:
    """Where ``impl`` (held to ``impl.fixed_spec``) parts from the oracle, or None where the
    probes show no difference.

    ``identified``: the identification (its terms that fit no dialect are named when the
    difference has no gradient). ``closest``: the loss is held to the closest dialect of a loss no
    dialect reproduces (none named), whose weights that fit nothing are the paper's: a part whose
    gradient differs from the oracle's only by such a weight matches.
    """
    spec = impl.fixed_spec
    if not impl.has_gradient:
        return _by_term_probes(impl, spec)
    probes = _observe(impl, spec, _recipe_batches(spec))
    if not probes:
        return None
    unfitted = (
        frozenset(WEIGHT_NAMES) - identified.fitted_weights if closest and identified is not None else frozenset()
    )
    try:
        comparisons = [(probe, _compare(probe, spec, impl.dtype)) for probe in probes]
        found = _by_gradient(comparisons, spec, unfitted)
    except ValueError:  # the oracle refuses a probe under the dialect
        return None
    if found is not None:
        part, line, where, others = found
        return Blame(part, line, where, others, spec)
    line = _without_gradient(comparisons, impl.dtype, identified)
    return None if line is None else Blame(NO_GRADIENT, line, None, (), spec)


def part_shown(blame: Blame, failure) -> str | None:
    """The part of the loss a property's failure is to name (``failure``: a ConformanceFailure).

    Where it shows an element of the prediction, the part of that element (what the failure
    itself shows). Otherwise the first part ``blame`` names (the one that differs first,
    then the others) that lies in the kind of cell the failure's cell holds, or, without a cell,
    a kind its example holds: a failure on a grid with no empty cell never lies in the class
    scores of empty cells. None where no part blamed fits it.
    """
    found, example = failure.located(), failure.example
    if example is None:
        return blame.part
    cell = None if found["cell"] is None or found["image"] is None else (found["image"], *found["cell"])
    shown = None if cell is None or found["channel"] is None else _part_of_element(example, cell, found["channel"])
    if shown is not None:
        return shown
    has_object = example.has_object[cell] if cell is not None else example.has_object
    kinds = {"object"} if np.all(has_object) else {"empty"} if not np.any(has_object) else {"object", "empty"}
    return next((part for part in (blame.part, *blame.others) if CELLS_OF.get(part) in kinds | {None}), None)


def _part_of_element(example: Example, cell: tuple, channel: str) -> str | None:
    """The name of the part (:data:`PARTS`) holding prediction element ``cell`` (n, i, j),
    ``channel`` (its name, 'predictor 1 x'), under ``example.spec``; None where the name is none."""
    spec = example.spec
    names = [pred_channel_name(k, spec.C) for k in range(spec.pred_channels)]
    if channel not in names:
        return None
    return part_of(example, (*cell, names.index(channel)))
