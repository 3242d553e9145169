"""The meta-test: the suite catches every mutant of the zoo under its ci profile (yolov1-ci), with a report
that names the component (or the input written into) and the cell; and it does not flag the
zoo's correct base (tests/conformance/test_properties.py holds the project's own
implementations to every property under the same profile)."""

from __future__ import annotations

import inspect

import pytest
from hypothesis import settings

from yolov1_loss.conformance.mutants import MUTANTS, correct_torch_loss
from yolov1_loss.conformance.mutants.base import TorchLoss
from yolov1_loss.conformance.suite import profiles
from yolov1_loss.conformance.suite.runner import first_failure

CI = settings.get_profile(profiles.CI)  # the suite's own, as a check runs it (not Hypothesis's built-in "ci")


@pytest.mark.parametrize("mutant", MUTANTS.values(), ids=list(MUTANTS))
def test_mutant_is_caught_with_a_located_report(mutant):
    failure = first_failure(mutant.implementation(), settings=CI)
    assert failure is not None, f"{mutant.name} ({mutant.bug}) passed every property"
    assert failure.component in mutant.shows_in, f"{mutant.name}: the report names {failure.component!r}\n{failure}"
    assert failure.image is not None and failure.cell is not None, f"{mutant.name}: no cell located\n{failure}"
    report = str(failure)
    i, j = failure.cell
    assert f"image {failure.image}, cell ({i}, {j})" in report
    assert f"component: {failure.component}" in report
    assert "expected:" in report and "actual:" in report
    assert mutant.implementation().repro in report


def test_the_correct_base_is_not_flagged():
    assert first_failure(correct_torch_loss(), settings=CI) is None


def test_the_zoo_holds_at_least_15_mutants_of_one_overridden_method_each():
    assert len(MUTANTS) >= 15
    base_methods = {name for name, _ in inspect.getmembers(TorchLoss, inspect.isfunction)}
    for mutant in MUTANTS.values():
        assert issubclass(mutant.loss_class, TorchLoss)
        overridden = [name for name in vars(mutant.loss_class) if name in base_methods]
        assert len(overridden) == 1, f"{mutant.name} overrides {overridden}"
    assert len({m.loss_class for m in MUTANTS.values()}) == len(MUTANTS)
