"""The properties: plain functions ``check(implementation, example)`` that raise a
:class:`~conformance.suite.failure.ConformanceFailure` when the implementation breaks them.

Two against the oracle (values, gradients), the rest oracle-free. Each compares on the example
rounded to the implementation's dtype. ``PROPERTIES[name].applies(impl)`` says whether a
property can apply to an implementation at all (some need a gradient, some an implementation
that honours any spec); properties that need several images or a dialect with an exact
encoding return without checking on examples that have neither. Run them under Hypothesis with
:mod:`conformance.suite.runner`, or with ``@given`` as tests/conformance does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from yolov1_loss import reference
from yolov1_loss.conformance.inputs.example import Example, encode_target, exact_encoding_exists
from yolov1_loss.conformance.suite import finite_difference as fd
from yolov1_loss.conformance.suite.comparison import (
    Run,
    at_image,
    comparable_elements,
    fmt,
    oracle_responsible,
    oracle_values,
    part_masks,
)
from yolov1_loss.conformance.suite.failure import ImplementationRaised
from yolov1_loss.conformance.suite.tolerances import element_fields, smooth_cells, worst_element
from yolov1_loss.conformance.user_loss.implementation import OUTPUT_NAMES, Implementation, ImplementationError
from yolov1_loss.reference.loss import COMPONENTS
from yolov1_loss.reference.spec import WEIGHTS
from yolov1_loss.reference.validate import pred_channel_name, target_channel_name


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
    """Register ``function(run)`` as the property ``check(impl, example)`` of the same name;
    what the implementation raises becomes an ImplementationRaised report."""

    def register(function):
        name = function.__name__

        @functools.wraps(function)
        def check(impl: Implementation, example: Example) -> None:
            try:
                function(Run(name, impl, example))
            except ImplementationError as err:
                raise ImplementationRaised(
                    name, str(err), stage=err.stage, implementation=impl, example=example
                ) from err

        summary = function.__doc__.strip().splitlines()[0]
        PROPERTIES[name] = Property(name, check, summary, needs_gradient, needs_configurable)
        return check

    return register


# --- against the oracle ------------------------------------------------------------------------


@_property()
def values_match_oracle(run: Run) -> None:
    """Every component the implementation gives, and the total, equal the oracle's values."""
    run.check_values(run.values, oracle_values, "the oracle gives")


@_property(needs_gradient=True)
def gradients_match_oracle(run: Run) -> None:
    """The gradient of each component and of the total equals the oracle's (for implementations
    outside the project, only in cells a margin away from kinks)."""
    ex = run.ex
    expected = reference.loss_and_grad(ex.pred, ex.target, ex.spec)[1]._asdict()
    mask = comparable_elements(ex, run.impl.dtype, run.impl.project)
    run.check_grads(run.evaluate(grads="all").grads, expected, "the oracle's", mask=mask)


# --- oracle-free -------------------------------------------------------------------------------


@_property(needs_gradient=True)
def chain_rule(run: Run) -> None:
    """Backward scales with the incoming gradient: weighting the output by w weights the gradient by w."""
    spec, n_images = run.ex.spec, run.ex.images
    weights = np.linspace(-1.5, 2.5, n_images) if spec.reduction == "none" else 2.5
    unit = run.evaluate(grads="all").grads
    weighted = run.evaluate(grads="all", upstream=weights).grads
    w = np.reshape(weights, (-1, 1, 1, 1)) if np.ndim(weights) else weights
    run.check_grads(weighted, {name: w * g for name, g in unit.items()}, f"{fmt(weights)} × the unit-weight gradient")


@_property(needs_gradient=True)
def directional_derivative(run: Run) -> None:
    """⟨∇L, u⟩ equals the central difference of L along a random direction u (float64, cells away from kinks)."""
    impl, ex = run.impl.with_dtype("float64"), run.example
    u = fd.direction(ex, smooth_cells(ex, fd.MARGIN))
    grads = impl.evaluate(ex.pred, ex.target, ex.spec, grads="all").grads
    for name in OUTPUT_NAMES:
        if name not in grads:
            continue
        u_name = fd.without_detached_boxes(ex, u, name)
        analytic, central, tolerance = fd.mismatch(impl, ex, grads, name, u_name)
        if not (np.isfinite(central) and np.isfinite(tolerance)):
            raise run.fail(
                f"along a random direction, d {name} cannot be compared with a central difference: "
                f"a step of {fd.STEP:g} away from the example, the loss's {name} is not finite "
                f"(the central difference is {central:.6g})",
                component=name,
            )
        if not abs(analytic - central) <= tolerance:
            raise run.fail(
                f"along a random direction, d {name} from the gradient is {analytic:.10g} "
                f"but the central difference gives {central:.10g}",
                component=name,
                locate=fd.locate(impl, ex, grads, name, u_name),
            )


@_property()
def zero_at_exact_encoding(run: Run) -> None:
    """A prediction that encodes the target exactly has zero loss and zero gradient (in dialects where one exists)."""
    if not exact_encoding_exists(run.ex.spec):
        return
    run.ex = encode_target(run.ex).rounded(run.impl.dtype)
    evaluation = run.evaluate(grads=run.grads_wanted)

    def zeros(ex: Example) -> dict:
        return {name: np.zeros_like(value) for name, value in evaluation.values.items()}

    run.check_values(run.values, zeros, "where it should be", actual=evaluation.values)
    run.check_grads(evaluation.grads, {name: np.zeros_like(g) for name, g in evaluation.grads.items()}, "zero")


def _images_alone(run: Run, ex: Example, grads: str = "none"):
    """(values, gradients) the batch ``ex`` should give, from each image evaluated alone."""
    alone = [run.evaluate(ex.select_images([n]), grads=grads) for n in range(ex.images)]
    share = 1.0 / ex.images if ex.spec.reduction == "mean" else 1.0
    values = {}
    for name in alone[0].values:
        per_image = np.array([at_image(one.values[name], 0) for one in alone])
        values[name] = per_image if ex.spec.reduction == "none" else share * per_image.sum()
    return values, {name: share * np.concatenate([one.grads[name] for one in alone]) for name in alone[0].grads}


@_property()
def additive_over_images(run: Run) -> None:
    """A batch's loss is the sum of its images' losses (their mean under 'mean', one per image
    under 'none'), and so is its gradient."""
    if run.ex.images < 2:
        return
    batch = run.evaluate(grads=run.grads_wanted)
    values, grads = _images_alone(run, run.ex, run.grads_wanted)
    what = "the images one by one give"
    run.check_values(run.values, lambda ex: _images_alone(run, ex)[0], what, actual=batch.values, expected=values)
    run.check_grads(batch.grads, grads, "the images' own gradients")


@_property()
def invariant_to_image_order(run: Run) -> None:
    """Reordering the images reorders per-image values and gradients and changes nothing else."""
    if run.ex.images < 2:
        return
    order = np.roll(np.arange(run.ex.images), 1)
    back = np.argsort(order)

    def reordered(ex: Example, grads: str = "none"):
        moved = run.evaluate(ex.select_images(order), grads=grads)
        values = {name: (v[back] if v.ndim else v) for name, v in moved.values.items()}
        return values, {name: g[back] for name, g in moved.grads.items()}

    original = run.evaluate(grads=run.grads_wanted)
    values, grads = reordered(run.ex, run.grads_wanted)
    what = "in the original order"
    run.check_values(lambda ex: reordered(ex)[0], run.values, what, actual=values, expected=original.values)
    run.check_grads(grads, original.grads, what)


@_property(needs_configurable=True)
def linear_in_weights(run: Run) -> None:
    """The total is Σ λ_k · component_k: with one λ at 1 and the others 0 it is that component."""
    spec = run.ex.spec

    def from_unit_weights(ex: Example) -> dict:
        """Each component as the total with its λ at 1 and the others at 0; the total as Σ λ_k · those."""
        out = {}
        for term, weight in zip(COMPONENTS, WEIGHTS):
            out[term] = run.values(Example(_unit_weight(spec, weight), ex.pred, ex.target))["total"]
        out["total"] = sum(w * out[t] for t, w in zip(COMPONENTS, spec.weights()))
        return out

    run.check_values(run.values, from_unit_weights, "the totals with one λ at 1 and the others at 0 give")


def _unit_weight(spec, weight: str):
    """``spec`` with ``weight`` at 1 and the other λ at 0. Under noobj_scope='own_weight' the
    object cells' other predictors keep their share ρ of the noobj component (λ_noobj_object = ρ
    when λ_noobj = 1); where λ_noobj is 0 they pay nothing either ('cell', which the spec takes)."""
    knobs = {w: float(w == weight) for w in WEIGHTS}
    if spec.noobj_scope == "own_weight":
        if weight == "lambda_noobj":
            knobs["lambda_noobj_object"] = spec.noobj_object_factor
        else:
            knobs["noobj_scope"] = "cell"
    return spec.replace(**knobs)


def _stray_gradient(ex: Example, gradient: np.ndarray):
    """Where gradient reaches what the dialect ignores: (the stray element with the largest
    |gradient| (n, i, j, k), why, how many stray elements there are), or None.

    Empty cells: only confidences may get gradient. Object cells: at most one predictor's box
    (and, where the non-responsible predictors do not pay noobj, at most one predictor at all).
    When several do, the stray ones are those other than the oracle's responsible predictor
    (the implementation may pick another one only at an IoU tie, where any but one is stray).
    """
    spec = ex.spec
    C, B = spec.C, spec.B
    gets = gradient != 0  # NaN counts as gradient
    fields = [1, 2, 3, 4] if spec.noobj_object_factor != 0 else [0, 1, 2, 3, 4]
    responsible = oracle_responsible(ex)
    parts = part_masks(ex, responsible)
    stray = gets & (parts["the class scores of empty cells"] | parts["the boxes of empty cells"])
    empty = ~ex.has_object
    # Object cells: not the part masks, which fix the oracle's responsible predictor. The one kept
    # is the oracle's where it gets gradient, else the first that does; under noobj_object_factor 0
    # the other predictors' confidences are stray too.
    boxes = gets[..., C:].reshape(*gets.shape[:3], B, 5)
    receivers_of = boxes[..., fields].any(-1)  # (N, S, S, B)
    for n, i, j in np.argwhere(ex.has_object & (receivers_of.sum(-1) > 1)):
        receivers = list(np.flatnonzero(receivers_of[n, i, j]))
        keep = responsible[n, i, j] if responsible[n, i, j] in receivers else receivers[0]
        for b in receivers:
            if b != keep:
                stray[n, i, j, [C + 5 * b + f for f in fields]] = boxes[n, i, j, b, fields]
    if not stray.any():
        return None
    size = np.where(stray, np.nan_to_num(np.abs(gradient), nan=np.inf), -1.0)
    index = tuple(int(v) for v in np.unravel_index(np.argmax(size), size.shape))
    n, i, j, _ = index
    if empty[n, i, j]:
        return index, "an empty cell's class scores and boxes must get no gradient", int(stray.sum())
    what = "boxes" if spec.noobj_object_factor != 0 else "channels"
    receivers = ", ".join(map(str, np.flatnonzero(receivers_of[n, i, j])))
    why = (
        f"predictors {receivers} all get gradient on their {what}; only the responsible one may "
        f"(the oracle's: predictor {responsible[n, i, j]})"
    )
    return index, why, int(stray.sum())


@_property(needs_gradient=True)
def no_gradient_to_ignored_channels(run: Run) -> None:
    """No gradient reaches what the dialect ignores: empty cells' classes and boxes, the boxes of
    non-responsible predictors (and, under noobj_scope='cell', their confidences)."""
    gradient = run.evaluate(grads="total").grads["total"]
    stray = _stray_gradient(run.ex, gradient)
    if stray is not None:
        index, why, count = stray
        fields = element_fields(run.ex.spec, index)
        others = f" (the largest of {count} stray elements)" if count > 1 else ""
        raise run.fail(why + others, component="total", expected=0.0, actual=float(gradient[index]), **fields)


@_property()
def inputs_unchanged(run: Run) -> None:
    """The loss (forward and backward) leaves its inputs as they were; a report names the input as its component."""
    after = run.evaluate(grads="total" if run.impl.has_gradient else "none", keep_inputs=True).inputs_after
    inputs = (("pred", run.ex.pred, pred_channel_name), ("target", run.ex.target, target_channel_name))
    for (which, before, channel_name), now in zip(inputs, after):
        index = worst_element(now, before, 0.0)
        if index is not None:
            n, i, j, k = index
            raise run.fail(
                f"the loss wrote into its {which} input",
                component=which,
                image=n,
                cell=(i, j),
                channel=f"{which} {channel_name(k, run.ex.spec.C)}",
                expected=float(before[index]),
                actual=float(now[index]),
            )


def _same_as_plain_call(run: Run, options: dict, what: str, dtype: str | None = None) -> None:
    """A call with ``options`` gives what a plain call gives (values, then gradients)."""
    plain = run.evaluate(grads=run.grads_wanted)
    other = run.evaluate(grads=run.grads_wanted, **options)
    run.check_values(
        lambda ex: run.values(ex, **options), run.values, what, actual=other.values, expected=plain.values, dtype=dtype
    )
    run.check_grads(other.grads, plain.grads, what, dtype=dtype)


@_property()
def strided_inputs_agree(run: Run) -> None:
    """Non-contiguous inputs give the same values and gradients as contiguous ones."""
    _same_as_plain_call(run, {"strided": True}, "with contiguous inputs it is")


@_property()
def deterministic(run: Run) -> None:
    """Two calls on the same inputs give bitwise the same values and gradients."""
    _same_as_plain_call(run, {}, "the first call gave", dtype="exact")
