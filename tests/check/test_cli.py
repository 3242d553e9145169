"""``yolov1-loss check`` and ``yolov1-loss vectors`` end to end, run as a user runs them.

These hold the check's findings to account, not its isolation (tests/check/test_isolation.py
does that), so the loss runs in the checker's process (``--in-process``), which starts faster."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from yolov1_loss.conformance.mutants import MUTANTS
from yolov1_loss.reference import PRESETS

from .helpers import command, report, run, write

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# The preset under which each mutant's bug shows (a fallback bug needs darknet's fallback,
# an ε bug needs ε inside the abs, a detaching bug a detached target, and so on).
MUTANT_PRESETS = {
    "fallback_ignores_cap": "darknet",
    "signed_sqrt_eps_ignored": "ml_collection",
    "iou_ignores_sqrt_output": "paper",
    "conf_target_not_detached": "paper",
    "x_and_y_in_different_frames": "paper",
    "sqrt_on_target_only": "article",
    "root_backward_ignores_upstream": "motokimura",
}
# Options a mutant needs for its bug to be visible at all: a hard-coded C = 20 is right when
# C is 20; ε inside or outside the abs moves √|v| by ~1e-6 relative, below float32's rounding
# unless v is within a few ε of 0, so that one is checked in float64.
MUTANT_OPTIONS = {
    "hard_coded_twenty_classes": ["--C", 25],
    "signed_sqrt_eps_ignored": ["--dtype", "float64"],
}


def test_the_console_script_exits_with_the_verdicts_status(tmp_path):
    # The one run as a user runs it: the installed script, its exit status and its output.
    impl = write(
        tmp_path,
        "own.py",
        """
        from yolov1_loss.torch_impl import YoloV1Loss
        loss = YoloV1Loss(preset="paper")
    """,
    )
    done = subprocess.run(
        [*command(), "check", f"{impl}:loss", "--max-examples", "3"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: CONFORMS" in done.stdout


@pytest.mark.parametrize("preset", list(PRESETS))
def test_the_projects_own_loss_conforms_and_its_preset_is_named(tmp_path, preset):
    impl = write(
        tmp_path,
        "own.py",
        f"""
        from yolov1_loss.torch_impl import YoloV1Loss
        loss = YoloV1Loss(preset={preset!r})
    """,
    )
    result = run("check", "--in-process", f"{impl}:loss", "--max-examples", 10, "--json", tmp_path / "r.json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verdict: CONFORMS" in result.stdout
    assert f"dialect: computes the same as {preset}: " in result.stdout
    data = report(tmp_path / "r.json")
    assert data["verdict"] == "conforms" and data["dialect"]["preset"] == preset
    assert data["value_match"] is True and data["grad_match"] is True
    assert data["dialect"]["knobs"]["lambda_coord"] == 5.0
    assert {"torch", "numpy", "python", "yolov1-loss"} <= set(data["versions"])


def test_the_bundled_boxes_first_example(tmp_path):
    result = run(
        "check",
        "--in-process",
        f"{EXAMPLES / 'user_loss.py'}:YoloLoss",
        "--layout",
        "boxes-first",
        "--json",
        tmp_path / "r.json",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dialect: computes the same as motokimura: " in result.stdout
    assert report(tmp_path / "r.json")["setup"]["layout"] == "boxes-first"


def test_a_darknet_layout_loss(tmp_path):
    impl = write(
        tmp_path,
        "planar.py",
        """
        from yolov1_loss import reference
        from yolov1_loss.torch_impl import YoloV1Loss
        _loss = YoloV1Loss(preset="darknet")

        def loss(pred, target):  # darknet's planar layout, converted by the project's adapters
            return _loss(reference.pred_to_canonical(pred, "darknet", 7, 2, 20),
                         reference.target_to_canonical(target, "darknet", 7, 2, 20)).total
    """,
    )
    result = run("check", "--in-process", f"{impl}:loss", "--layout", "darknet", "--max-examples", 10)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dialect: computes the same as darknet: " in result.stdout


def test_non_default_weights_are_identified(tmp_path):
    impl = write(
        tmp_path,
        "weights.py",
        """
        from yolov1_loss.torch_impl import YoloV1Loss
        loss = YoloV1Loss(preset="article", lambda_coord=3.0, lambda_noobj=0.2)
    """,
    )
    result = run("check", "--in-process", f"{impl}:loss", "--max-examples", 5, "--json", tmp_path / "r.json")
    assert result.returncode == 1, result.stdout + result.stderr  # weights no known dialect uses
    knobs = report(tmp_path / "r.json")["dialect"]["knobs"]
    assert (knobs["lambda_coord"], knobs["lambda_noobj"], knobs["lambda_obj"]) == (3.0, 0.2, 1.0)
    assert "dialect: article with lambda_coord=3.0, lambda_noobj=0.2" in result.stdout


MUTANT_FILE = """
    from yolov1_loss.conformance.mutants import MUTANTS
    from yolov1_loss.reference import LossSpec
    _loss = MUTANTS[{name!r}].loss_class(LossSpec.preset({preset!r}, C={C}))

    def loss(pred, target):
        return _loss(pred, target)
"""


@pytest.mark.parametrize("name", list(MUTANTS))
def test_every_mutant_differs_and_the_report_names_a_component(tmp_path, name):
    preset = MUTANT_PRESETS.get(name, "paper")
    options = MUTANT_OPTIONS.get(name, [])
    C = options[1] if options[:1] == ["--C"] else 20
    impl = write(tmp_path, "mutant.py", MUTANT_FILE.format(name=name, preset=preset, C=C))
    result = run(
        "check",
        "--in-process",
        f"{impl}:loss",
        "--dialect",
        preset,
        "--max-examples",
        1,
        *options,
        "--json",
        tmp_path / "r.json",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "verdict: DIFFERS" in result.stdout
    failures = report(tmp_path / "r.json")["failures"]
    assert failures
    named = {f["component"] for f in failures}
    assert named & set(MUTANTS[name].shows_in), (named, result.stdout)
    assert any(f"component: {c}" in result.stdout for c in MUTANTS[name].shows_in)


def test_a_loss_that_raises_in_backward_is_judged_on_its_values_and_the_users_line_is_named(tmp_path):
    # The article's own code under current PyTorch: an in-place write into a tensor that abs saved.
    impl = write(
        tmp_path,
        "inplace.py",
        """
        import torch
        from yolov1_loss.torch_impl import YoloV1Loss
        _loss = YoloV1Loss(preset="article")

        def loss(pred, target):
            boxes = pred[..., 21:25] * 1.0
            root = torch.sqrt(torch.abs(boxes[..., 2:4]) + 1e-6)  # abs saves its input ...
            boxes[..., 2:4] = torch.sign(boxes[..., 2:4]) * root  # ... which this overwrites
            return _loss(pred, target).total + 0.0 * boxes.sum()
    """,
    )
    result = run("check", "--in-process", f"{impl}:loss", "--max-examples", 5, "--json", tmp_path / "r.json")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "verdict: DIFFERS" in result.stdout
    data = report(tmp_path / "r.json")
    assert data["value_match"] is True and data["properties"]["values_match_oracle"] == "passed"
    assert data["properties"]["gradients_match_oracle"] == "failed"
    assert "iou_grad" in data["dialect"]["identified"]["undetermined"]
    # Undetermined, so no value: not the preset's "detached".
    assert data["dialect"]["knobs"]["iou_grad"] is None and "iou_grad" in data["dialect"]["undetermined"]
    [failure] = data["failures"]
    assert "modified by an inplace operation" in failure["message"]
    assert f"the in-place write at {impl}:9 changed what {impl}:8 saved for backward" in failure["message"]
    assert "torch/autograd" not in result.stdout
    assert result.stdout.count("raised in backward") == 1  # said once, not once per property or per wrapper


def test_a_numpy_loss_with_and_without_its_gradient(tmp_path):
    impl = write(
        tmp_path,
        "numpy_loss.py",
        """
        import numpy as np
        from yolov1_loss import reference
        SPEC = reference.LossSpec.preset("ml_collection")

        def loss(pred, target):
            return reference.loss(pred, target, SPEC).total

        def grad(pred, target):
            return reference.loss_and_grad(pred, target, SPEC)[1].total
    """,
    )
    result = run(
        "check",
        "--in-process",
        f"{impl}:loss",
        "--framework",
        "numpy",
        "--grad",
        "grad",
        "--dtype",
        "float64",
        "--max-examples",
        10,
        "--json",
        tmp_path / "r.json",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    data = report(tmp_path / "r.json")
    assert data["dialect"]["preset"] == "ml_collection" and data["grad_match"] is True
    result = run(
        "check",
        "--in-process",
        f"{impl}:loss",
        "--framework",
        "numpy",
        "--max-examples",
        10,
        "--json",
        tmp_path / "r.json",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert report(tmp_path / "r.json")["grad_match"] is None


def test_output_selects_an_item(tmp_path):
    impl = write(
        tmp_path,
        "tupled.py",
        """
        from yolov1_loss.torch_impl import YoloV1Loss
        _loss = YoloV1Loss(preset="paper")

        def loss(pred, target):
            parts = _loss(pred, target)
            return parts.total, parts.coord
    """,
    )
    assert run("check", "--in-process", f"{impl}:loss", "--output", "0", "--max-examples", 5).returncode == 0
    result = run("check", "--in-process", f"{impl}:loss", "--output", "7", "--max-examples", 5)
    assert result.returncode == 2 and "give an index" in result.stdout


def test_an_implementation_that_cannot_be_loaded(tmp_path):
    result = run("check", "--in-process", f"{tmp_path / 'missing.py'}:loss")
    assert result.returncode == 2
    assert "no such file" in result.stdout
    result = run("check", "--in-process", "examples_do_not_exist:loss")
    assert result.returncode == 2 and "No module named" in result.stdout


def test_vectors_round_trip(tmp_path):
    vectors = tmp_path / "vectors"
    written = run("vectors", "--out", vectors, "--preset", "article")
    assert written.returncode == 0, written.stderr
    index = json.loads((vectors / "index.json").read_text())
    assert {v["dialect"] for v in index["vectors"]} == {"article"} and len(index["vectors"]) >= 12
    good = write(
        tmp_path,
        "good.py",
        """
        from yolov1_loss.torch_impl import YoloV1Loss
        loss = YoloV1Loss(preset="article")
    """,
    )
    result = run("check", "--in-process", f"{good}:loss", "--vectors", vectors, "--dialect", "article")
    assert result.returncode == 0, result.stdout + result.stderr
    bad = write(tmp_path, "bad.py", MUTANT_FILE.format(name="class_loss_on_empty_cells", preset="article", C=20))
    result = run("check", "--in-process", f"{bad}:loss", "--vectors", vectors, "--dialect", "article")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "vector article-" in result.stdout
    result = run("check", "--in-process", f"{good}:loss", "--vectors", vectors, "--dialect", "paper")
    assert result.returncode == 2 and "holds no vectors for this dialect" in result.stdout


def test_held_to_the_wrong_dialect_the_report_names_the_one_that_matches(tmp_path):
    result = run(
        "check",
        "--in-process",
        f"{EXAMPLES / 'user_loss.py'}:YoloLoss",
        "--layout",
        "boxes-first",
        "--dialect",
        "paper",
        "--max-examples",
        5,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "verdict: DIFFERS from the dialect named" in result.stdout
    assert "dialect: paper, as named" in result.stdout
    assert "the values match another dialect: motokimura; it differs in:" in result.stdout


def test_when_no_dialect_matches_the_closest_is_named(tmp_path):
    impl = write(tmp_path, "mutant.py", MUTANT_FILE.format(name="class_loss_on_empty_cells", preset="article", C=20))
    result = run("check", "--in-process", f"{impl}:loss", "--max-examples", 5, "--json", tmp_path / "r.json")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no dialect reproduces the values" in result.stdout
    identified = report(tmp_path / "r.json")["dialect"]["identified"]
    assert identified["matches"] is False and identified["residual"] > 1e-4
