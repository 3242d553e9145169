"""What ``check`` says about hand-written losses with one failure mode each: the dialect in plain
words, term by term when nothing matches, and blame on the element that differs.

Each asserts the report's content, not only the exit status. The loss runs in the checker's
process (``--in-process``), as in test_cli.py."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from yolov1_loss.conformance.suite.failure import ConformanceFailure

from .helpers import report, run, write

PAPER_WITH = """
    from yolov1_loss import LossSpec, YoloV1Loss
    loss = YoloV1Loss(LossSpec({knobs}))
"""


def _check(tmp_path, source: str, *options, examples: int = 3):
    impl = write(tmp_path, "losses.py", source)
    out = tmp_path / "r.json"
    result = run("check", "--in-process", f"{impl}:loss", "--max-examples", examples, "--json", out, *options)
    return result, report(out), f"{impl}:loss"


def test_a_classic_bug_that_is_another_dialect_is_explained_and_pinned(tmp_path):
    # No square roots on w and h: a dialect no known implementation computes, which is what a bug looks like.
    result, found, target = _check(tmp_path, PAPER_WITH.format(knobs="wh_mode='linear'"))
    assert result.returncode == 1, result.stdout  # not a known dialect: it differs ...
    out = result.stdout.splitlines()
    assert out[1] == "verdict: DIFFERS from every known dialect"
    assert out[2] == "dialect: paper with wh_mode='linear'"
    assert out[3].startswith("  the nearest known dialect is paper: the paper's loss")
    assert out[4].startswith(
        "    wh_mode='linear' (unusual: no known dialect uses it): w and h enter without square roots"
    )
    pin = f"yolov1-loss check {target} --dialect paper --set wh_mode=linear"
    assert out[5] == f"  if this is the dialect you mean, accept it with: {pin}"  # ... and how to accept it
    assert found["dialect"]["diagnosis"]["pin"] == pin and found["dialect"]["diagnosis"]["nearest"] == "paper"
    # The lenient answer, clearly named: any dialect the values match conforms.
    lenient = run("check", "--in-process", target, "--max-examples", 3, "--accept-any-dialect")
    assert lenient.returncode == 0 and "verdict: CONFORMS" in lenient.stdout, lenient.stdout
    assert "accepted under --accept-any-dialect" in lenient.stdout


def test_the_pinned_command_holds_the_loss_to_its_dialect(tmp_path):
    knobs = "noobj_scope='own_weight', lambda_noobj_object=1.0, wh_mode='clamped_sqrt'"
    result, found, target = _check(tmp_path, PAPER_WITH.format(knobs=knobs))
    assert result.returncode == 1, result.stdout
    pin = found["dialect"]["diagnosis"]["pin"]
    assert "--set noobj_scope=own_weight" in pin and "--set lambda_noobj_object=1" in pin
    assert "--set wh_mode=clamped_sqrt" in pin
    assert "wh_mode='clamped_sqrt' (unusual: no known dialect uses it)" in result.stdout
    words = pin.split()[2:]  # the command as printed, run again
    again = run("check", "--in-process", *words, "--max-examples", 3)
    assert again.returncode == 0 and "verdict: CONFORMS" in again.stdout, again.stdout
    assert "the values match another dialect" not in again.stdout


def test_the_paper_held_to_a_loss_with_roots_on_both_sides_says_why(tmp_path):
    # √ŵ against √w is wh_mode='sqrt'; the paper's network outputs √w itself.
    result, found, target = _check(tmp_path, PAPER_WITH.format(knobs="wh_mode='sqrt'"), "--dialect", "paper")
    assert result.returncode == 1
    assert "verdict: DIFFERS from the dialect named" in result.stdout
    assert "dialect: paper, as named" in result.stdout
    assert "the values match another dialect: paper with wh_mode='sqrt'; it differs in:" in result.stdout
    assert "the paper's network outputs √w" in result.stdout
    assert "not told apart" not in result.stdout  # the dialect was named: nothing to tell apart
    assert "to hold the loss to this dialect" not in result.stdout
    pin = f"yolov1-loss check {target} --dialect paper --set wh_mode=sqrt"
    assert f"if this is the dialect you mean, accept it with: {pin}" in result.stdout


L1_CLASSES = """
    from yolov1_loss import LossSpec, YoloV1Loss
    _rest = YoloV1Loss(LossSpec(lambda_class=0.0))

    def loss(pred, target):
        has = target[..., 20] == 1
        return _rest(pred, target).total + (target[..., :20] - pred[..., :20]).abs().sum(-1)[has].sum()
"""


def _readme_sample(after: str) -> list[str]:
    """The lines of the README's first sample output after the words ``after``."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = text[text.index(after) :]
    block = block[block.index("```\n") + 4 :]
    return block[: block.index("```")].strip("\n").splitlines()


def test_a_loss_that_fits_no_dialect_in_one_term_is_told_term_by_term_as_the_readme_shows(tmp_path):
    write(tmp_path, "losses.py", L1_CLASSES)
    result = run("check", "--in-process", "losses.py:loss", "--max-examples", 3, "--json", "r.json", cwd=tmp_path)
    found = report(tmp_path / "r.json")
    assert result.returncode == 1
    sample = _readme_sample("(`tests/check/test_diagnosis.py`'s `L1_CLASSES`)")
    assert sample[0] == "yolov1-loss check losses.py:loss" and sample[2].startswith("what differs: ")
    assert result.stdout.splitlines()[: len(sample)] == sample
    out = result.stdout
    assert "term by term, on probes where only that term can be non-zero:" in out
    assert "cls (class scores): no dialect reproduces it (relative residual" in out
    assert "coord (box centres and sizes): matches, weight 5 (lambda_coord · loss_scale)" in out
    assert "noobj of empty cells: matches, weight 0.5" in out
    # The class weight fits nothing, so it is not printed as fitted; the others are.
    assert "lambda_class=1 (not fitted: the paper's)" in out
    assert "not told apart" not in out
    identified = found["dialect"]["identified"]
    assert identified["fitted_weights"] == ["lambda_coord", "lambda_noobj", "lambda_noobj_object", "lambda_obj"]
    # Every failure is blamed on the class term, which the term probes isolate.
    failures = {f["property"]: f for f in found["failures"]}
    assert failures["values_match_oracle"]["term"] == "cls"
    assert "component: total (the difference lies in cls)" in out
    assert failures["gradients_match_oracle"]["channel"].startswith("class ")


STRAY_GRADIENT = """
    import torch
    from yolov1_loss import YoloV1Loss
    _paper = YoloV1Loss()

    def loss(pred, target):
        # Zero in value, but predictor 0's y, w, h and confidence get gradient in every object cell.
        has = (target[..., 20] == 1).unsqueeze(-1)
        p0 = pred[..., 20:25]
        return _paper(pred, target).total + ((p0 - p0.detach()) * has).sum()
"""


def test_a_stray_gradient_is_blamed_on_the_predictor_that_is_not_responsible(tmp_path):
    result, found, _ = _check(tmp_path, STRAY_GRADIENT)
    failure = next(f for f in found["failures"] if f["property"] == "no_gradient_to_ignored_channels")
    # The oracle's responsible predictor there is 1 (predictor 0 is responsible where its gradient is right).
    assert failure["predictor"] == 0, failure
    assert "(the oracle's: predictor 1)" in failure["message"]
    assert failure["actual"] != 0
    assert "stray elements" in failure["message"]


NAN_ON_NEGATIVE_SIZES = """
    import torch
    from yolov1_loss import YoloV1Loss
    _paper = YoloV1Loss()

    def loss(pred, target):
        # log of the predicted sizes of object cells: NaN where one is negative
        has = (target[..., 20] == 1).unsqueeze(-1)
        sizes = torch.cat([pred[..., 23:25], pred[..., 28:30]], dim=-1)
        return _paper(pred, target).total + (torch.log(sizes) * 0 * has).sum()
"""


def test_a_non_finite_total_names_a_cell_whose_own_contribution_is_not_finite(tmp_path):
    result, found, _ = _check(tmp_path, NAN_ON_NEGATIVE_SIZES)
    failure = next(f for f in found["failures"] if f["property"] == "values_match_oracle")
    assert "total is nan" in failure["message"], failure["message"]
    assert math.isnan(failure["actual"]), failure  # the named cell alone gives NaN
    assert failure["expected"] is not None and math.isfinite(failure["expected"])


def test_no_expected_value_or_tolerance_is_printed_as_nan():
    failure = ConformanceFailure(
        "directional_derivative", "m", component="total", expected=float("nan"), actual=1.0, tolerance=np.nan
    )
    text = str(failure)
    assert "nan" not in text.lower()
    assert failure.to_dict()["tolerance"] is None
