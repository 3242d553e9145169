"""The N=1 target's yardstick: a checkout of the commit the target was set on, loaded beside today's code."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from yolov1_loss.benchmarks.baseline import BASELINE_COMMIT, baseline_contender
from yolov1_loss.benchmarks.contenders import FUSED
from yolov1_loss.benchmarks.targets import TARGET_SPEC, _paired, baseline_targets
from yolov1_loss.cli import main

# A stand-in for the old tree: top-level reference and torch_impl whose loss is the sum of pred.
FAKE_REFERENCE = """
class LossSpec:
    @classmethod
    def preset(cls, name, **sizes):
        return (name, sizes)
"""
FAKE_TORCH_IMPL = """
from types import SimpleNamespace

def yolov1_loss(pred, target, spec, path):
    return SimpleNamespace(total=pred.sum(), spec=spec, path=path)
"""


@pytest.fixture
def clean_imports(monkeypatch):
    """sys.path and the top-level names reference and torch_impl as they were, after the test."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in ("reference", "torch_impl"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield
    for name in ("reference", "torch_impl"):
        sys.modules.pop(name, None)


def fake_tree(root):
    for package, text in (("reference", FAKE_REFERENCE), ("torch_impl", FAKE_TORCH_IMPL)):
        (root / package).mkdir()
        (root / package / "__init__.py").write_text(text)
    (root / "reference" / "spec.py").write_text("")
    (root / "torch_impl" / "fused.py").write_text("")
    return root


def test_a_directory_that_is_no_checkout_is_refused_with_how_to_make_one(tmp_path):
    with pytest.raises(
        ValueError, match=f"not a checkout of {BASELINE_COMMIT}.*git worktree add DIR {BASELINE_COMMIT}"
    ):
        baseline_contender(tmp_path)


def test_the_checkout_s_loss_is_built_in_the_spec_s_preset(tmp_path, clean_imports):
    contender = baseline_contender(fake_tree(tmp_path))
    assert contender.name == f"fused@{BASELINE_COMMIT}"
    pred = torch.ones(1, 7, 7, 30)
    assert float(contender.build(TARGET_SPEC)(pred, None)) == 7 * 7 * 30
    with pytest.raises(ValueError, match="runs a preset's dialect"):
        contender.build(TARGET_SPEC.replace(lambda_coord=1.5))


def test_a_package_of_the_same_name_imported_from_elsewhere_is_refused(tmp_path, clean_imports):
    elsewhere = types.ModuleType("reference")
    elsewhere.__file__ = str(tmp_path / "elsewhere" / "reference" / "__init__.py")
    sys.modules["reference"] = elsewhere
    tree = tmp_path / "tree"
    tree.mkdir()
    with pytest.raises(ValueError, match="`import reference` finds .*elsewhere.*, not the checkout's"):
        baseline_contender(fake_tree(tree))


def test_without_a_baseline_the_targets_say_how_to_measure_them():
    outcomes = baseline_targets(None)
    assert [o.measured for o in outcomes] == [None, None]
    assert all(f"give --baseline DIR, a checkout of {BASELINE_COMMIT}" in o.line() for o in outcomes)


def test_a_paired_target_checks_both_then_reports_both_times():
    outcome = _paired(FUSED, 1, "fused over itself", 2.0, budget_s=0)
    assert outcome.measured > 0 and outcome.detail.startswith("fused ") and ", fused " in outcome.detail


def test_a_wrong_baseline_loss_is_not_timed(tmp_path, clean_imports):
    contender = baseline_contender(fake_tree(tmp_path))  # its loss is the sum of pred: not the dialect
    outcome = _paired(contender, 1, "fused over a wrong loss", 2.0, budget_s=0)
    assert outcome.measured is None and "differs from the oracle" in outcome.reason


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--baseline", "x"], "--baseline goes with --targets on the CPU"),
        (["--targets", "--baseline", "/nonexistent"], f"/nonexistent is not a checkout of {BASELINE_COMMIT}"),
    ],
)
def test_bench_refuses_a_baseline_it_cannot_use(arguments, message, capsys):
    assert main(["bench", *arguments]) == 2
    assert message in capsys.readouterr().err
