"""The pytest plugin: the conformance properties as test items in a user's own session."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from yolov1_loss.conformance.properties import PROPERTIES


def pytest_in(directory, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *map(str, args)],
        capture_output=True, text=True, timeout=600, cwd=directory,
    )


def user_loss(tmp_path, source: str):
    path = tmp_path / "losses.py"
    path.write_text(textwrap.dedent(source))
    return path


def test_a_conforming_loss_passes_every_property(tmp_path):
    loss = user_loss(tmp_path, """
        from yolov1_loss.torch_impl import YoloV1Loss
        loss = YoloV1Loss(preset="motokimura")
    """)
    result = pytest_in(tmp_path, f"--yolov1-impl={loss}:loss", "--hypothesis-profile", "dev")
    assert result.returncode == 0, result.stdout
    # One item per property and one for the dialect; the one that needs a loss honouring any
    # spec is skipped with its reason.
    assert f"{len(PROPERTIES)} passed, 1 skipped" in result.stdout


def test_a_wrong_loss_fails_with_the_report(tmp_path):
    loss = user_loss(tmp_path, """
        from yolov1_loss.conformance.mutants import MUTANTS
        from yolov1_loss.reference import LossSpec
        _loss = MUTANTS["class_loss_on_empty_cells"].loss_class(LossSpec.preset("article"))

        def loss(pred, target):
            return _loss(pred, target)
    """)
    result = pytest_in(tmp_path, f"--yolov1-impl={loss}:loss", "--yolov1-dialect", "article", "-k", "values_match_oracle")
    assert result.returncode == 1, result.stdout
    assert "test_conforms[values_match_oracle]" in result.stdout
    assert "component: cls" in result.stdout


def test_items_can_be_selected_and_marked_expected_to_fail(tmp_path):
    loss = user_loss(tmp_path, """
        from yolov1_loss.torch_impl import YoloV1Loss
        loss = YoloV1Loss(preset="paper")
    """)
    result = pytest_in(tmp_path, f"--yolov1-impl={loss}:loss", "--yolov1-dialect", "article",
                       "--yolov1-xfail", "values_match_oracle", "-k", "values_match_oracle or dialect")
    assert result.returncode == 0, result.stdout
    assert "1 passed" in result.stdout and "1 xfailed" in result.stdout


def test_without_the_option_the_plugin_adds_nothing(tmp_path):
    result = pytest_in(tmp_path)
    assert result.returncode == 5  # pytest's "no tests were collected"
