"""The walkthrough article's eleven printed values (docs/spec.md, "The article's worked example"), preset 'article'."""

import numpy as np
import pytest

from yolov1_loss.explain import report
from yolov1_loss.reference import LossSpec, loss
from yolov1_loss.reference.article import CASES, case_inputs

ARTICLE = LossSpec.preset("article")


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"case{c.number}-{c.component}")
def test_article_value(case):
    value = getattr(loss(*case_inputs(case), ARTICLE), case.component)
    assert value == pytest.approx(case.article_value, abs=case.tolerance), case.setup


def test_case_1_is_the_float64_rounding_of_the_epsilon_in_g():
    # With box 0 = target, coord is (√w − √(w + 1e-6))² + (√h − √(h + 1e-6))², about
    # (1e-6)² (1/(4w) + 1/(4h)) = 1e-12 (1/9.6 + 1/12.8) = 1.823e-13 to first order.
    value = loss(*case_inputs(CASES[0]), ARTICLE).coord
    assert value == pytest.approx(1e-12 * (1 / 9.6 + 1 / 12.8), rel=1e-5)


def test_only_the_named_component_moves_in_each_case():
    # Each case changes one term; the other object terms stay at their box-equals-target values.
    for case in CASES[6:9]:
        parts = loss(*case_inputs(case), ARTICLE)
        assert parts.noobj == 0.0
        assert parts.obj == pytest.approx(1.0, abs=1e-5)  # ĉ_0 = 0, IoU ≈ 1


def test_explain_prints_every_case_with_the_article_value():
    text = report("article")
    for case in CASES:
        line = next(line for line in text.splitlines() if line.strip().startswith(f"{case.number} "))
        value = float(line.split()[-2])
        assert value == pytest.approx(case.article_value, abs=case.tolerance)


def test_explain_works_in_every_preset():
    for preset in ("paper", "darknet", "ml_collection", "motokimura"):
        text = report(preset)
        assert f"preset {preset!r}" in text
        assert len([line for line in text.splitlines() if line[:4].strip().isdigit()]) == len(CASES)


def test_case_inputs_refuse_another_grid():
    with pytest.raises(ValueError, match="S=7, B=2, C=20"):
        case_inputs(CASES[0], LossSpec(S=5))
    assert np.all(case_inputs(CASES[9])[1] == 0)
