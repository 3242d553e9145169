"""The properties: plain functions ``check(implementation, example)`` that raise a
:class:`~conformance.failure.ConformanceFailure` when the implementation breaks them.

Two against the oracle (values, gradients), the rest oracle-free. Each rounds the example to
the implementation's dtype first. Properties that need several images, a gradient, a dialect
with an exact encoding, or an implementation that honours any spec return without checking
where that does not hold (``PROPERTIES[name].applies(impl)`` says up front which ones can
apply at all). Run them under Hypothesis with :mod:`conformance.runner` or ``@given``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np

import reference
from reference.loss import _split, ious, responsible
from reference.spec import WEIGHTS
from reference.validate import pred_channel_name, target_channel_name

from conformance.compare import (
    comparable_cells,
    differs,
    element_fields,
    first_differing_cell,
    bisect,
    grad_tolerance,
    only_cell,
    smooth_cells,
    value_tolerance,
    worst_element,
)
from conformance.example import Example, encode_target, exact_encoding_exists
from conformance.failure import ConformanceFailure, ImplementationRaised
from conformance.implementation import OUTPUT_NAMES, Implementation, ImplementationError

# Central differences: the step, relative to 1 + the cell's largest input, and the margin from
# kinks (relative likewise) a cell needs to take part; the margin is far larger than the step
# times any slope of the kink quantities (IoUs, edges, sizes, distances) in these examples.
FD_STEP = 1e-6
FD_MARGIN = 1e-3
# The central difference's own error: truncation (step², relative to the directional
# derivative's terms) and rounding (ε·|L|/step). Calibrated on the oracle, whose gradient is
# exact: see tests/conformance/test_calibration.py.
FD_RTOL = 1e-5
FD_ROUNDING = 1e-13


@dataclass(frozen=True)
class Property:
    """A named property, its checking function, and what an implementation needs for it."""

    name: str
    check: Callable[[Implementation, Example], None]
    summary: str
    needs_gradient: bool = False
    needs_configurable: bool = False

    def applies(self, impl: Implementation) -> str | None:
        """None if the property can be checked on ``impl``, else why not."""
        if self.needs_gradient and not impl.has_gradient:
            return "the implementation gives no gradient"
        if self.needs_configurable and not impl.configurable:
            return "the implementation computes one fixed dialect"
        return None


PROPERTIES: dict[str, Property] = {}


def _property(needs_gradient: bool = False, needs_configurable: bool = False):
    """Register a property; exceptions of the implementation become ImplementationRaised."""

    def register(function):
        name = function.__name__

        @functools.wraps(function)
        def check(impl: Implementation, example: Example) -> None:
            try:
                function(impl, example)
            except ImplementationError as err:
                raise ImplementationRaised(
                    name, str(err), stage=err.stage, implementation=impl, example=example
                ) from err

        summary = function.__doc__.strip().splitlines()[0]
        PROPERTIES[name] = Property(name, check, summary, needs_gradient, needs_configurable)
        return check

    return register


def _fail(name, impl, example, message, **fields) -> ConformanceFailure:
    return ConformanceFailure(name, message, implementation=impl, example=example, **fields)


def _fmt(value) -> str:
    value = np.asarray(value)
    return f"{float(value):.10g}" if value.ndim == 0 else np.array2string(value, precision=10)


def _grads_wanted(impl: Implementation) -> str:
    return "all" if impl.has_gradient else "none"


def _at(value: np.ndarray, image: int) -> float:
    """A scalar output, or image ``image``'s entry of a per-image one."""
    return float(value if value.ndim == 0 else value[image])


def _responsible_in(example: Example, cell) -> tuple:
    """The oracle's responsible predictor in ``cell`` (n, i, j) and a note with every IoU;
    (None, None) if the cell holds no object."""
    if not example.has_object[cell]:
        return None, None
    alone = only_cell(example, cell)
    _, cells, _ = _split(alone.pred, alone.target, example.spec)
    iou = ious(cells, example.spec)[0]
    r = int(responsible(cells, iou, example.spec)[0])
    listed = ", ".join(f"{v:.6g}" for v in iou[0])
    return r, f"the oracle makes predictor {r} responsible (IoUs with the target: {listed})"


def _cell_fields(example: Example, cell, name, values_on: Callable[[Example], tuple], dtype) -> dict:
    """Report fields for output ``name`` in ``cell``: ``values_on(example)`` → (actual, expected)."""
    n, i, j = cell
    alone = only_cell(example, cell)
    actual, expected = values_on(alone)
    predictor, note = _responsible_in(example, cell)
    return {
        "image": n,
        "cell": (i, j),
        "predictor": predictor,
        "note": note,
        "actual": _at(np.asarray(actual), n),
        "expected": _at(np.asarray(expected), n),
        "tolerance": _at(value_tolerance(alone, dtype, name), n),
    }


def _locate_values(example: Example, name: str, values_on: Callable[[Example], tuple], dtype: str):
    """A deferred search for the first cell where ``values_on`` (→ actual, expected) differ."""

    def differs_on(sub: Example) -> bool:
        actual, expected = values_on(sub)
        return bool(differs(actual, expected, value_tolerance(sub, dtype, name)).any())

    def locate() -> dict:
        cell = first_differing_cell(example, differs_on)
        return {} if cell is None else _cell_fields(example, cell, name, values_on, dtype)

    return locate


def _check_values(prop, impl, example, ex, actual: dict, expected: dict, values_on_for, what: str, dtype=None):
    """Raise for the first output (coord, obj, noobj, cls, total) whose values differ.

    ``values_on_for(name)`` gives a function of a sub-example returning (actual, expected),
    used to find the cell. ``dtype`` picks the tolerance (default: the implementation's).
    """
    dtype = dtype or impl.dtype
    for name in OUTPUT_NAMES:
        if name not in actual or name not in expected:
            continue
        if differs(actual[name], expected[name], value_tolerance(ex, dtype, name)).any():
            raise _fail(
                prop,
                impl,
                example,
                f"{name} is {_fmt(actual[name])}, {what} {_fmt(expected[name])}",
                component=name,
                locate=_locate_values(ex, name, values_on_for(name), dtype),
            )


def _grad_size(grads, spec, name: str) -> np.ndarray:
    """The size of the terms of the gradient of ``name``: |∇name|, or Σ_k |λ_k ∇_k| for the total."""
    if name != "total":
        return np.abs(grads[name])
    weights = dict(zip(("coord", "obj", "noobj", "cls"), (getattr(spec, w) for w in WEIGHTS)))
    with np.errstate(invalid="ignore"):  # 0 · inf where a weight is 0: NaN, a tolerance no finite error passes
        return sum(abs(weights[k]) * np.abs(grads[k]) for k in weights if k in grads)


def _check_grads(prop, impl, example, ex, actual: dict, expected: dict, mask, what: str, dtype=None):
    """Raise for the first output whose gradient differs (where ``mask``), at its worst element."""
    dtype = dtype or impl.dtype
    for name in OUTPUT_NAMES:
        if name not in actual or name not in expected:
            continue
        tolerance = grad_tolerance(ex, dtype, name, _grad_size(expected, ex.spec, name))
        index = worst_element(actual[name], expected[name], tolerance, mask)
        if index is not None:
            bad = differs(actual[name], expected[name], tolerance)
            count = int((bad if mask is None else bad & mask).sum())
            raise _fail(
                prop,
                impl,
                example,
                f"d {name} / d pred differs from {what} at {count} element(s)",
                component=name,
                expected=float(expected[name][index]),
                actual=float(actual[name][index]),
                tolerance=float(tolerance[index]),
                **element_fields(ex.spec, index),
            )


def _evaluate(impl: Implementation, ex: Example, **options):
    return impl.evaluate(ex.pred, ex.target, ex.spec, **options)


def _oracle_values(ex: Example) -> dict:
    parts = reference.loss(ex.pred, ex.target, ex.spec)
    return {name: np.asarray(getattr(parts, name)) for name in OUTPUT_NAMES}


# --- against the oracle ------------------------------------------------------------------------


@_property()
def values_match_oracle(impl: Implementation, example: Example) -> None:
    """Every component the implementation gives, and the total, equal the oracle's values."""
    ex = example.rounded(impl.dtype)

    def values_on_for(name):
        return lambda sub: (_evaluate(impl, sub).values[name], _oracle_values(sub)[name])

    actual = _evaluate(impl, ex).values
    _check_values("values_match_oracle", impl, example, ex, actual, _oracle_values(ex), values_on_for, "the oracle gives")


@_property(needs_gradient=True)
def gradients_match_oracle(impl: Implementation, example: Example) -> None:
    """The gradient of each component and of the total equals the oracle's (for implementations
    outside the project, only in cells a margin away from kinks)."""
    ex = example.rounded(impl.dtype)
    actual = _evaluate(impl, ex, grads="all").grads
    expected = reference.loss_and_grad(ex.pred, ex.target, ex.spec)[1]._asdict()
    comparable = comparable_cells(ex, impl.dtype, impl.project)
    mask = None if comparable is None else comparable[..., None]
    _check_grads("gradients_match_oracle", impl, example, ex, actual, expected, mask, "the oracle's")


# --- oracle-free -------------------------------------------------------------------------------


def _upstream_weights(spec, n_images: int):
    """Backward weights that are not 1: 2.5, or per image a spread including negatives."""
    return np.linspace(-1.5, 2.5, n_images) if spec.reduction == "none" else 2.5


@_property(needs_gradient=True)
def chain_rule(impl: Implementation, example: Example) -> None:
    """Backward scales with the incoming gradient: weighting the output by w weights the gradient by w."""
    ex = example.rounded(impl.dtype)
    weights = _upstream_weights(ex.spec, ex.images)
    unit = _evaluate(impl, ex, grads="all").grads
    weighted = _evaluate(impl, ex, grads="all", upstream=weights).grads
    w = np.asarray(weights).reshape(-1, 1, 1, 1) if np.ndim(weights) else weights
    expected = {name: w * g for name, g in unit.items()}
    _check_grads("chain_rule", impl, example, ex, weighted, expected, None, f"{_fmt(weights)} × the unit-weight gradient")


def _direction(ex: Example, support: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random direction over ``support`` cells, each element scaled by its cell's size."""
    rng = np.random.default_rng(0)
    scale = 1.0 + np.maximum(np.abs(ex.pred).max(axis=-1), np.abs(ex.target).max(axis=-1))
    return rng.standard_normal(ex.pred.shape) * (scale * support)[..., None]


def _without_detached_boxes(ex: Example, u: np.ndarray, name: str) -> np.ndarray:
    """``u`` for output ``name``: where the IoU target is detached, obj (and so the total) has a
    gradient that deliberately ignores how c* = IoU moves with the box, so there the direction
    leaves the object cells' boxes alone."""
    spec = ex.spec
    if name not in ("obj", "total") or spec.conf_target != "iou" or spec.iou_grad != "detached":
        return u
    boxes = u[..., spec.C :].reshape(*u.shape[:3], spec.B, 5).copy()
    boxes[..., 1:] *= ~ex.has_object[..., None, None]
    return np.concatenate([u[..., : spec.C], boxes.reshape(*u.shape[:3], 5 * spec.B)], axis=-1)


def _fd_mismatch(impl, ex, grads, name, u) -> tuple[float, float, float]:
    """(directional derivative from the gradient, central difference, tolerance) of ``name`` along u."""
    step = FD_STEP
    plus = _evaluate(impl, Example(ex.spec, ex.pred + step * u, ex.target)).values[name].sum()
    minus = _evaluate(impl, Example(ex.spec, ex.pred - step * u, ex.target)).values[name].sum()
    with np.errstate(invalid="ignore"):  # a NaN or infinite gradient at a kink is off the support
        terms = np.where(u != 0, grads[name] * u, 0.0)
    analytic = float(terms.sum())
    central = float((plus - minus) / (2 * step))
    tolerance = FD_RTOL * float(np.abs(terms).sum()) + FD_ROUNDING * (abs(plus) + abs(minus)) / step
    return analytic, central, tolerance


@_property(needs_gradient=True)
def directional_derivative(impl: Implementation, example: Example) -> None:
    """⟨∇L, u⟩ equals the central difference of L along a random direction u (float64, cells away from kinks)."""
    impl = impl.with_dtype("float64")
    ex = example
    support = smooth_cells(ex, FD_MARGIN)
    u = _direction(ex, support)
    grads = _evaluate(impl, ex, grads="all").grads
    for name in OUTPUT_NAMES:
        if name not in grads:
            continue
        u_name = _without_detached_boxes(ex, u, name)
        analytic, central, tolerance = _fd_mismatch(impl, ex, grads, name, u_name)
        if not abs(analytic - central) <= tolerance:
            raise _fail(
                "directional_derivative",
                impl,
                example,
                f"along a random direction, d {name} from the gradient is {analytic:.10g} "
                f"but the central difference gives {central:.10g}",
                component=name,
                locate=_locate_fd(impl, ex, grads, name, u_name),
            )


def _locate_fd(impl, ex, grads, name, u):
    """A deferred search for one element whose partial derivative disagrees with its difference."""

    def along(elements: np.ndarray) -> np.ndarray:
        only = np.zeros(u.size)
        only[elements] = u.reshape(-1)[elements]
        return only.reshape(u.shape)

    def differs_on(elements) -> bool:
        analytic, central, tolerance = _fd_mismatch(impl, ex, grads, name, along(elements))
        return not abs(analytic - central) <= tolerance

    def locate() -> dict:
        element = bisect(np.flatnonzero(u), differs_on)
        if element is None:
            return {}
        index = np.unravel_index(element, u.shape)
        _, central, tolerance = _fd_mismatch(impl, ex, grads, name, along(np.array([element])))
        return {
            "expected": central / u[index],
            "actual": float(grads[name][index]),
            "tolerance": tolerance / abs(u[index]),
            **element_fields(ex.spec, tuple(int(i) for i in index)),
        }

    return locate


@_property()
def zero_at_exact_encoding(impl: Implementation, example: Example) -> None:
    """A prediction that encodes the target exactly has zero loss and zero gradient (in dialects where one exists)."""
    if not exact_encoding_exists(example.spec):
        return
    ex = encode_target(example).rounded(impl.dtype)
    evaluation = _evaluate(impl, ex, grads=_grads_wanted(impl))
    zeros = {name: np.zeros_like(v) for name, v in evaluation.values.items()}

    def values_on_for(name):
        return lambda sub: (_evaluate(impl, sub).values[name], np.zeros_like(evaluation.values[name]))

    _check_values("zero_at_exact_encoding", impl, example, ex, evaluation.values, zeros, values_on_for, "where it should be")
    zero_grads = {name: np.zeros_like(g) for name, g in evaluation.grads.items()}
    _check_grads("zero_at_exact_encoding", impl, example, ex, evaluation.grads, zero_grads, None, "zero")


def _batch_of_singles(impl: Implementation, ex: Example, grads: str):
    """The outputs the batch should give, assembled from each image evaluated alone."""
    singles = [_evaluate(impl, ex.select_images([n]), grads=grads) for n in range(ex.images)]
    share = 1.0 / ex.images if ex.spec.reduction == "mean" else 1.0
    values = {}
    for name in singles[0].values:
        per_image = np.array([_at(s.values[name], 0) for s in singles])
        values[name] = per_image if ex.spec.reduction == "none" else share * per_image.sum()
    grads_ = {name: share * np.concatenate([s.grads[name] for s in singles]) for name in singles[0].grads}
    return values, grads_


@_property()
def additive_over_images(impl: Implementation, example: Example) -> None:
    """A batch's loss is the sum of its images' losses (the mean under 'mean', one per image under 'none'); so is its gradient."""
    ex = example.rounded(impl.dtype)
    if ex.images < 2:
        return
    wanted = _grads_wanted(impl)
    batch = _evaluate(impl, ex, grads=wanted)
    values, grads = _batch_of_singles(impl, ex, wanted)

    def values_on_for(name):
        return lambda sub: (_evaluate(impl, sub).values[name], _batch_of_singles(impl, sub, "none")[0][name])

    _check_values("additive_over_images", impl, example, ex, batch.values, values, values_on_for, "the images one by one give")
    _check_grads("additive_over_images", impl, example, ex, batch.grads, grads, None, "the images' own gradients")


@_property()
def invariant_to_image_order(impl: Implementation, example: Example) -> None:
    """Reordering the images reorders per-image values and gradients and changes nothing else."""
    ex = example.rounded(impl.dtype)
    if ex.images < 2:
        return
    order = np.roll(np.arange(ex.images), 1)
    wanted = _grads_wanted(impl)

    def reordered(sub: Example, grads: str = "none"):
        moved = _evaluate(impl, sub.select_images(order), grads=grads)
        back = np.argsort(order)
        values = {k: (v[back] if v.ndim else v) for k, v in moved.values.items()}
        return values, {k: g[back] for k, g in moved.grads.items()}

    def values_on_for(name):
        return lambda sub: (reordered(sub)[0][name], _evaluate(impl, sub).values[name])

    original = _evaluate(impl, ex, grads=wanted)
    values, grads = reordered(ex, wanted)
    _check_values("invariant_to_image_order", impl, example, ex, values, original.values, values_on_for, "in the original order")
    _check_grads("invariant_to_image_order", impl, example, ex, grads, original.grads, None, "in the original order")


@_property(needs_configurable=True)
def linear_in_weights(impl: Implementation, example: Example) -> None:
    """The total is Σ λ_k · component_k: with one λ at 1 and the others 0 it is that component."""
    ex = example.rounded(impl.dtype)
    spec = ex.spec

    def unit_totals(sub: Example) -> dict:
        """component name → the total with that component's λ at 1 and the others at 0."""
        out = {}
        for component, weight in zip(("coord", "obj", "noobj", "cls"), WEIGHTS):
            only = spec.replace(**{w: float(w == weight) for w in WEIGHTS})
            out[component] = _evaluate(impl, Example(only, sub.pred, sub.target)).values["total"]
        return out

    def as_components(sub: Example) -> dict:
        units = unit_totals(sub)
        units["total"] = sum(getattr(spec, w) * units[c] for c, w in zip(("coord", "obj", "noobj", "cls"), WEIGHTS))
        return units

    def values_on_for(name):
        return lambda sub: (_evaluate(impl, sub).values[name], as_components(sub)[name])

    given = _evaluate(impl, ex).values
    what = "the totals with one λ at 1 and the others at 0 give"
    _check_values("linear_in_weights", impl, example, ex, given, as_components(ex), values_on_for, what)


def _stray_gradient(ex: Example, gradient: np.ndarray):
    """The first (n, i, j, k) that gets gradient it should not, and why; or None.

    Empty cells: only confidences. Object cells: at most one predictor's box; under
    noobj_scope='cell', at most one predictor at all (the responsible one).
    """
    spec = ex.spec
    C, B = spec.C, spec.B
    gets = gradient != 0  # NaN counts as gradient
    boxes = gets[..., C:].reshape(*gets.shape[:3], B, 5)
    has_object = ex.has_object
    classes_or_boxes = gets[..., :C].any(-1) | boxes[..., 1:].any(axis=(-1, -2))
    per_predictor = boxes[..., 1:].any(-1) if spec.noobj_scope == "predictor" else boxes.any(-1)
    for n, i, j in np.argwhere(has_object | classes_or_boxes):
        if not has_object[n, i, j]:
            k = next(k for k in range(C + 5 * B) if gets[n, i, j, k] and (k < C or (k - C) % 5))
            return (n, i, j, k), "an empty cell's class scores and boxes must get no gradient"
        receivers = np.flatnonzero(per_predictor[n, i, j])
        if len(receivers) > 1:
            b = receivers[1]
            fields = range(1, 5) if spec.noobj_scope == "predictor" else range(5)
            k = next(C + 5 * b + f for f in fields if gets[n, i, j, C + 5 * b + f])
            what = "boxes" if spec.noobj_scope == "predictor" else "channels"
            return (n, i, j, k), f"predictors {', '.join(map(str, receivers))} all get gradient on their {what}; only the responsible one may"
    return None


@_property(needs_gradient=True)
def no_gradient_to_ignored_channels(impl: Implementation, example: Example) -> None:
    """No gradient reaches what the dialect ignores: empty cells' classes and boxes, the boxes of
    non-responsible predictors (and, under noobj_scope='cell', their confidences)."""
    ex = example.rounded(impl.dtype)
    gradient = _evaluate(impl, ex, grads="total").grads["total"]
    stray = _stray_gradient(ex, gradient)
    if stray is not None:
        index, why = stray
        raise _fail(
            "no_gradient_to_ignored_channels",
            impl,
            example,
            why,
            component="total",
            expected=0.0,
            actual=float(gradient[index]),
            **element_fields(ex.spec, index),
        )


@_property()
def inputs_unchanged(impl: Implementation, example: Example) -> None:
    """The loss (forward and backward) leaves its inputs as they were."""
    ex = example.rounded(impl.dtype)
    after = _evaluate(impl, ex, grads="total" if impl.has_gradient else "none", keep_inputs=True).inputs_after
    for which, before, now, channel_name in (
        ("pred", ex.pred, after[0], pred_channel_name),
        ("target", ex.target, after[1], target_channel_name),
    ):
        index = worst_element(now, before, 0.0)
        if index is not None:
            n, i, j, k = index
            raise _fail(
                "inputs_unchanged",
                impl,
                example,
                f"the loss wrote into its {which} input",
                component=which,
                image=n,
                cell=(i, j),
                channel=f"{which} {channel_name(k, ex.spec.C)}",
                expected=float(before[index]),
                actual=float(now[index]),
            )


def _twice(prop: str, impl: Implementation, example: Example, second: dict, what: str, dtype=None) -> None:
    """Compare a plain evaluation with one under ``second`` options (values, then gradients)."""
    ex = example.rounded(impl.dtype)
    wanted = _grads_wanted(impl)
    first = _evaluate(impl, ex, grads=wanted)
    other = _evaluate(impl, ex, grads=wanted, **second)

    def values_on_for(name):
        return lambda sub: (_evaluate(impl, sub, **second).values[name], _evaluate(impl, sub).values[name])

    _check_values(prop, impl, example, ex, other.values, first.values, values_on_for, what, dtype)
    _check_grads(prop, impl, example, ex, other.grads, first.grads, None, what, dtype)


@_property()
def strided_inputs_agree(impl: Implementation, example: Example) -> None:
    """Non-contiguous inputs give the same values and gradients as contiguous ones."""
    _twice("strided_inputs_agree", impl, example, {"strided": True}, "with contiguous inputs it is")


@_property()
def deterministic(impl: Implementation, example: Example) -> None:
    """Two calls on the same inputs give bitwise the same values and gradients."""
    _twice("deterministic", impl, example, {}, "the first call gave", dtype="exact")
