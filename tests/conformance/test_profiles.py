"""The settings profiles: what each sets, and selecting one with --hypothesis-profile.

(That an unrelated project's session registers none of them: tests/check/test_pytest_plugin.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

from yolov1_loss.conformance.suite.profiles import CI_EXAMPLES, PROFILES, suite_settings

ROOT = Path(__file__).resolve().parents[2]


def test_ci_is_derandomized_without_deadline_or_database():
    ci = settings.get_profile("yolov1-ci")
    assert ci.derandomize and ci.deadline is None and ci.database is None
    assert ci.max_examples == CI_EXAMPLES


def test_thorough_runs_ten_times_the_ci_examples_and_dev_fewer():
    assert settings.get_profile("yolov1-thorough").max_examples == 10 * CI_EXAMPLES
    assert settings.get_profile("yolov1-dev").max_examples < CI_EXAMPLES


def test_the_suite_runs_under_ci_unless_a_profile_is_chosen():
    if settings.get_current_profile_name() not in PROFILES:
        assert suite_settings() == settings.get_profile("yolov1-ci")
    else:
        assert suite_settings() == settings.default


@pytest.mark.parametrize("profile", ["yolov1-dev", "yolov1-thorough"])
def test_hypothesis_profile_selects_a_suite_profile_from_the_command_line(tmp_path, profile):
    probe = tmp_path / "test_probe.py"
    probe.write_text(
        "from hypothesis import settings\n"
        "from yolov1_loss.conformance.suite.profiles import suite_settings\n"
        "def test_probe():\n"
        f"    assert settings.get_current_profile_name() == {profile!r}\n"
        f"    assert suite_settings().max_examples == settings.get_profile({profile!r}).max_examples\n"
    )
    command = [sys.executable, "-m", "pytest", "-q", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT)]
    result = subprocess.run(
        [*command, f"--hypothesis-profile={profile}", "-p", "no:cacheprovider", "-n", "0", str(probe)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
