"""Run properties under Hypothesis outside pytest: find an implementation's first failure.

>>> from conformance import runner, implementation
>>> failure = runner.find_failure("values_match_oracle", implementation.oracle())
>>> failure is None
True
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given
from hypothesis import seed as hypothesis_seed
from hypothesis import settings as Settings
from hypothesis import strategies as st

from yolov1_loss.conformance.inputs import strategies
from yolov1_loss.conformance.inputs.example import Example
from yolov1_loss.conformance.suite.failure import ConformanceFailure
from yolov1_loss.conformance.suite.profiles import suite_settings
from yolov1_loss.conformance.suite.properties import PROPERTIES, Property
from yolov1_loss.conformance.user_loss.implementation import Implementation


def examples_for(impl: Implementation):
    """The examples an implementation can be held to: any spec if it honours the one it is
    given, else only its own dialect (and grid size)."""
    if impl.configurable:
        return strategies.examples()
    return strategies.examples(specs=st.just(impl.fixed_spec))


def find_failure(
    prop: Property | str,
    impl: Implementation,
    examples=None,
    settings: Settings | None = None,
    seed: int | None = None,
    skip: Callable[[Example], bool] | None = None,
) -> ConformanceFailure | None:
    """Run one property on ``impl`` over Hypothesis examples; the (shrunk) failure, or None.

    ``examples`` defaults to :func:`examples_for`; ``settings`` to the suite's profile;
    ``seed`` (with settings that are not derandomized) fixes Hypothesis's random choices;
    ``skip(example)`` true: that example is not checked (an input class left out).
    Raises ValueError if the property cannot apply to ``impl``.
    """
    prop = PROPERTIES[prop] if isinstance(prop, str) else prop
    reason = prop.applies(impl)
    if reason:
        raise ValueError(f"{prop.name} does not apply to {impl.name}: {reason}")

    @(settings or suite_settings())
    @strategies.with_hard_examples(impl.fixed_spec)
    @given(examples if examples is not None else examples_for(impl))
    def run(example):
        if skip is None or not skip(example):
            prop.check(impl, example)

    if seed is not None:
        run = hypothesis_seed(seed)(run)

    try:
        run()
    except ConformanceFailure as failure:
        return failure
    return None


def first_failure(impl: Implementation, examples=None, settings: Settings | None = None, properties=None):
    """Run the applicable properties in order (default: all of PROPERTIES); the first failure, or None."""
    for name in properties or PROPERTIES:
        prop = PROPERTIES[name]
        if prop.applies(impl) is None:
            failure = find_failure(prop, impl, examples, settings)
            if failure is not None:
                return failure
    return None
