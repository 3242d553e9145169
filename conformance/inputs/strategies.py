"""Hypothesis strategies for loss specs and test inputs.

Hypothesis draws only the structure (grid size, dialect, images, occupancy, the hard case of
each object cell, a seed); :func:`conformance.inputs.example.build` fills the arrays. Every strategy
shrinks toward the smallest grid, one image, the default dialect and the plainest case.

    >>> from hypothesis import given
    >>> from conformance import strategies
    >>> @given(strategies.examples(specs=strategies.specs(presets=["article"])))
    ... def test_mine(example): ...
"""

from __future__ import annotations

from hypothesis import example
from hypothesis import strategies as st

from yolov1_loss.conformance.inputs.example import CELL_CASES, OCCUPANCIES, Recipe, build
from yolov1_loss.reference.spec import CHOICES, LAMBDAS, PRESETS, LossSpec

MAX_S, MAX_B, MAX_C, MAX_IMAGES = 9, 4, 25, 4
# The images of a batch as training gives it, in one explicit example of every property: a loss
# wrong only from 8 images on is caught there (the drawn examples hold at most MAX_IMAGES).
TRAINING_BATCH = 16

# Values worth meeting for each numeric knob: the presets' own first, then others.
IOU_EPS_VALUES = (0.0, 1e-6, 0.01)
CLAMP_EPS_VALUES = (1e-6, 1e-3, 0.05)
LOSS_SCALES = (1.0, 0.5, 2.0)
WEIGHT_VALUES = (1.0, 0.5, 5.0, 0.0, 2.0, 0.1)


def sizes(S=None, B=None, C=None):
    """(S, B, C) triples: S in 1–9, B in 1–4, C in 1–25, or the given fixed values."""
    return st.tuples(
        st.just(S) if S else st.integers(1, MAX_S),
        st.just(B) if B else st.integers(1, MAX_B),
        st.just(C) if C else st.integers(1, MAX_C),
    )


def knob_combinations():
    """Dicts of every dialect knob and weight, each drawn independently (any combination)."""
    words = {name: st.sampled_from(values) for name, values in CHOICES.items()}
    numbers = {
        "iou_eps": st.sampled_from(IOU_EPS_VALUES),
        "loss_scale": st.sampled_from(LOSS_SCALES) | st.floats(0.01, 10.0, allow_subnormal=False),
        "sqrt_clamp_eps": st.sampled_from(CLAMP_EPS_VALUES),
        **{name: st.sampled_from(WEIGHT_VALUES) | st.floats(0.0, 10.0, allow_subnormal=False) for name in LAMBDAS},
    }
    # (a spec refuses noobj_scope='own_weight' with lambda_noobj = 0: its noobj counts relative to it)
    return st.fixed_dictionaries({**words, **numbers}).filter(
        lambda k: k["noobj_scope"] != "own_weight" or k["lambda_noobj"] != 0
    )


def specs(presets=tuple(PRESETS), random_knobs: bool = True, S=None, B=None, C=None):
    """LossSpecs: a named preset from ``presets`` or (if ``random_knobs``) any knob combination."""
    dialects = [st.sampled_from(list(presets)).map(lambda name: PRESETS[name])] if presets else []
    if random_knobs:
        dialects.append(knob_combinations())
    if not dialects:
        raise ValueError("specs() needs at least one preset or random_knobs=True")
    return st.builds(lambda size, knobs: LossSpec(*size, **knobs), sizes(S, B, C), st.one_of(dialects))


def recipes(specs=specs(), images=st.integers(1, MAX_IMAGES) | st.just(0)):
    """Recipes: a spec, 0–4 images (1 first), an occupancy, 1–3 hard cases, a magnitude, a seed."""
    return st.builds(
        Recipe,
        spec=specs,
        images=images,
        occupancy=st.sampled_from(OCCUPANCIES),
        cases=st.lists(st.sampled_from(CELL_CASES), min_size=1, max_size=3).map(tuple),
        magnitude=st.sampled_from([1.0, 1024.0]),
        seed=st.integers(0, 2**32 - 1),
    )


def examples(specs=specs(), images=st.integers(1, MAX_IMAGES) | st.just(0)):
    """:class:`conformance.inputs.example.Example` s built from :func:`recipes`."""
    return recipes(specs, images).map(build)


# Dialects off the presets' beaten track, for the explicit examples.
ODD_DIALECTS = (
    dict(
        noobj_scope="predictor",
        iou_frame="raw",
        wh_mode="linear",
        conf_target="one",
        responsible="max_iou_else_min_rmse",
        iou_eps=0.01,
        reduction="none",
        loss_scale=2.0,
        lambda_coord=2.0,
        lambda_obj=0.5,
        lambda_noobj=0.1,
        lambda_class=5.0,
    ),
    dict(
        noobj_scope="cell",
        iou_frame="image",
        wh_mode="signed_sqrt",
        signed_sqrt_eps="inside",
        iou_grad="through",
        reduction="mean",
        lambda_noobj=2.0,
    ),
    dict(
        iou_frame="raw",
        wh_mode="sqrt",
        iou_grad="through",
        responsible="max_iou_else_min_rmse",
        iou_eps=1e-6,
        reduction="none",
        loss_scale=0.5,
    ),
    dict(  # public code's: the object cells' other predictors pay 1, empty cells 0.5; clamped roots
        noobj_scope="own_weight",
        lambda_noobj_object=1.0,
        wh_mode="clamped_sqrt",
        sqrt_clamp_eps=1e-3,
        iou_grad="through",
    ),
)


def hard_recipes(spec: LossSpec | None = None) -> list:
    """A handful of recipes that meet every hard case in every preset and a few odd dialects.

    Each puts one of each CELL_CASES in every cell of two full 3×3 images (B and C vary, C = 22
    among them); then an empty batch, an all-empty grid, a large-magnitude 7×7 batch, and a 3×3
    batch of :data:`TRAINING_BATCH` images. With ``spec``, the same recipes in that one dialect and
    grid size. Hypothesis's own examples are
    few under the ci profile and start small, so tests run these first as explicit examples.
    """
    if spec is None:
        grids = ((2, 20), (3, 4), (2, 22), (1, 1), (4, 5))
        specs = [LossSpec.preset(name, S=3, B=b, C=c) for name, (b, c) in zip(PRESETS, grids)]
        specs += [LossSpec(S=3, B=b, C=c, **knobs) for knobs, (b, c) in zip(ODD_DIALECTS, grids)]
        plain, small = LossSpec(S=7), LossSpec(S=3)
    else:
        specs, plain, small = [spec], spec, spec
    recipes = [Recipe(s, images=2, occupancy="full", cases=CELL_CASES, seed=n) for n, s in enumerate(specs)]
    return recipes + [
        Recipe(plain, images=0),
        Recipe(plain, images=2, occupancy="empty"),
        Recipe(plain, images=3, cases=("random", "tie", "exact"), magnitude=1024.0, seed=1),
        Recipe(small, images=TRAINING_BATCH, cases=("random", "tie", "exact", "disjoint"), seed=2),
    ]


def with_hard_examples(spec: LossSpec | None = None, argument: str = "example"):
    """Decorator for a ``@given`` test: :func:`hard_recipes` as explicit examples of ``argument``."""

    def decorate(test):
        for recipe in reversed(hard_recipes(spec)):
            test = example(**{argument: build(recipe)})(test)
        return test

    return decorate
