"""The test items of the pytest plugin (conformance.pytest_plugin), collected when
``--yolov1-impl`` is given. Each property of conformance.properties is one item."""

from __future__ import annotations

import dataclasses

import pytest

from yolov1_loss.conformance import runner
from yolov1_loss.conformance.check import parse_overrides, resolve_dialect, user_implementation
from yolov1_loss.conformance.properties import PROPERTIES


def pytest_generate_tests(metafunc) -> None:
    if "property_name" in metafunc.fixturenames:
        xfail = set(metafunc.config.getoption("yolov1_xfail"))
        params = [pytest.param(name, marks=[pytest.mark.xfail(strict=True)] if name in xfail else [], id=name) for name in PROPERTIES]
        metafunc.parametrize("property_name", params)


@pytest.fixture(scope="session")
def yolov1_setup(request):
    """(implementation held to its dialect, identification) for the whole session."""
    option = request.config.getoption
    impl = user_implementation(
        option("yolov1_impl"), layout=option("yolov1_layout"), framework=option("yolov1_framework"),
        dtype=option("yolov1_dtype"), device=option("yolov1_device"), output=option("yolov1_output"),
        grad=option("yolov1_grad"),
    )
    S, B, C = option("yolov1_S"), option("yolov1_B"), option("yolov1_C")
    spec, identified = resolve_dialect(impl, S, B, C, option("yolov1_dialect"), parse_overrides(option("yolov1_set")))
    return dataclasses.replace(impl, fixed_spec=spec), identified


def test_dialect(yolov1_setup, request):
    """Under --yolov1-dialect auto, some dialect reproduces the loss's values."""
    if "dialect" in request.config.getoption("yolov1_xfail"):
        request.applymarker(pytest.mark.xfail(strict=True))
    impl, identified = yolov1_setup
    if request.config.getoption("yolov1_dialect") == "auto":
        assert identified.matches, "; ".join(identified.notes)


def test_conforms(yolov1_setup, property_name):
    impl, _ = yolov1_setup
    reason = PROPERTIES[property_name].applies(impl)
    if reason:
        pytest.skip(reason)
    failure = runner.find_failure(property_name, impl)
    if failure is not None:
        raise failure
