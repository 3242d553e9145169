"""Every property, as its own test, on every correct implementation: the project's own
(oracle, torch_impl's paths in float64 and float32, on CUDA too where there is one) and the
zoo's independent torch base.

Runs under the suite's profile (ci unless --hypothesis-profile says otherwise), with the hard
recipes (every preset and hard case) as explicit examples before Hypothesis's own.
"""

from __future__ import annotations

import pytest
from hypothesis import given

from yolov1_loss.conformance.inputs import strategies
from yolov1_loss.conformance.mutants import correct_torch_loss
from yolov1_loss.conformance.suite.profiles import suite_settings
from yolov1_loss.conformance.suite.properties import PROPERTIES
from yolov1_loss.conformance.user_loss.implementation import project_implementations, torch_impl_available

IMPLEMENTATIONS = [*project_implementations(), correct_torch_loss(), correct_torch_loss().with_dtype("float32")]


def _cases():
    for impl in IMPLEMENTATIONS:
        for name, prop in PROPERTIES.items():
            if prop.applies(impl) is not None:
                continue
            if name == "directional_derivative" and impl.dtype == "float32":
                continue  # it runs the implementation in float64: the float64 case covers it
            yield pytest.param(impl, name, id=f"{impl.label}-{name}")


def test_the_project_torch_implementation_is_covered():
    assert torch_impl_available(), "torch_impl.yolov1_loss cannot be imported"
    on_cpu = [impl for impl in IMPLEMENTATIONS if impl.name.startswith("torch_impl") and impl.device == "cpu"]
    assert len(on_cpu) == 4  # 2 paths × 2 dtypes


@pytest.mark.parametrize(("impl", "name"), list(_cases()))
@suite_settings()
@strategies.with_hard_examples()
@given(example=strategies.examples())
def test_property_holds(impl, name, example):
    PROPERTIES[name].check(impl, example)
