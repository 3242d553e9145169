"""Every argument and output path is checked before the work starts: one line, exit 2, and the
loss never loaded (its module leaves a mark when it is imported)."""

from __future__ import annotations

import pytest

from .helpers import run, write

MARKING_LOSS = """
    from pathlib import Path
    Path(__file__).with_name("imported").write_text("")
    from yolov1_loss.torch_impl import YoloV1Loss
    loss = YoloV1Loss(preset="paper")
"""


def refused(tmp_path, *options, command="check"):
    """Runs ``command`` on the marking loss; asserts exit 2 with one line and the loss not imported."""
    impl = write(tmp_path, "loss.py", MARKING_LOSS)
    args = (command, f"{impl}:loss") if command == "check" else (command,)
    result = run(*args, *options)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "imported").exists(), "the loss was loaded before the options were checked"
    return lines[0]


def test_json_to_a_folder(tmp_path):
    assert (
        refused(tmp_path, "--json", tmp_path)
        == f"yolov1-loss check: --json {tmp_path}: a folder; give the path of a file"
    )


def test_json_into_a_missing_folder(tmp_path):
    where = tmp_path / "missing" / "r.json"
    assert refused(tmp_path, "--json", where) == f"yolov1-loss check: --json {where}: no folder {where.parent}"


def test_json_where_nothing_can_be_written(tmp_path):
    # (/proc takes no new files, even from root, for whom permission bits do not count)
    line = refused(tmp_path, "--json", "/proc/yolov1-report.json")
    assert line.startswith("yolov1-loss check: --json /proc/yolov1-report.json: cannot be written (")


def test_vectors_from_a_missing_folder(tmp_path):
    where = tmp_path / "no-vectors"
    assert refused(tmp_path, "--vectors", where) == f"yolov1-loss check: --vectors {where}: no such folder"


@pytest.mark.parametrize("seconds", ["inf", "nan", "-1", "0"])
def test_timeout_must_be_positive_and_finite(tmp_path, seconds):
    line = refused(tmp_path, "--timeout", seconds)
    assert line.startswith("yolov1-loss check: timeout must be a positive, finite number of seconds, got ")


@pytest.mark.parametrize("seconds", ["inf", "nan", "-1"])
def test_import_timeout_must_be_positive_and_finite(tmp_path, seconds):
    line = refused(tmp_path, "--import-timeout", seconds)
    assert line.startswith("yolov1-loss check: import_timeout must be a positive, finite number of seconds, got ")


def test_a_negative_weight_is_refused_under_any_dialect(tmp_path):
    for dialect in ("auto", "paper"):
        line = refused(tmp_path, "--dialect", dialect, "--set", "lambda_coord=-1")
        assert line == "yolov1-loss check: LossSpec.lambda_coord must be >= 0, got -1.0"


@pytest.mark.parametrize(
    "option, value, bound",
    [("--S", "100000", "at B=2, C=20, S can be at most"), ("--B", "1000000", "at S=7, C=20, B can be at most")],
)
def test_a_grid_beyond_the_machines_memory_is_refused_with_the_bound(tmp_path, option, value, bound):
    line = refused(tmp_path, option, value)
    assert "a check at S=" in line and "more than this machine's memory" in line and bound in line


def test_the_memory_bound_is_what_a_check_holds_at_the_grid_it_names(tmp_path):
    from yolov1_loss.conformance.grid_limits import check_bytes, machine_memory
    from yolov1_loss.reference import LossSpec

    line = refused(tmp_path, "--S", "100000")
    largest = int(line.rsplit("at most ", 1)[1])
    assert check_bytes(LossSpec(S=largest)) <= machine_memory() < check_bytes(LossSpec(S=largest + 1))


def test_the_memory_bound_counts_the_images_a_check_holds():
    """CHECK_IMAGES is the count of the probes' images (on a small grid with B = 2: their number
    does not depend on S or C, and B = 1 has one family fewer) and of the largest example."""
    from yolov1_loss.conformance.dialects.fitting import probe_sets
    from yolov1_loss.conformance.dialects.term_probes import family_probes
    from yolov1_loss.conformance.grid_limits import CHECK_IMAGES
    from yolov1_loss.conformance.inputs.strategies import MAX_IMAGES

    general = [batch for batches in probe_sets(1, 2, 1) for batch in batches]
    families = [batch for batches in family_probes(1, 2, 1).values() for batch in batches]
    assert CHECK_IMAGES == sum(len(pred) for pred, _ in general + families) + MAX_IMAGES


def test_the_default_grid_is_the_specs():
    from yolov1_loss.conformance.grid_limits import DEFAULT_GRID
    from yolov1_loss.reference import LossSpec

    assert DEFAULT_GRID == {name: getattr(LossSpec(), name) for name in ("S", "B", "C")}


@pytest.mark.parametrize("option", ["--json", "--plot"])
def test_bench_output_to_a_folder(tmp_path, option):
    line = refused(tmp_path, "--quick", "--no-compile", option, tmp_path, command="bench")
    assert line == f"yolov1-loss bench: {option} {tmp_path}: a folder; give the path of a file"


def test_a_file_the_check_of_json_makes_is_removed_again(tmp_path):
    where = tmp_path / "r.json"
    refused(tmp_path, "--json", where, "--vectors", tmp_path / "missing")  # refused after --json's check
    assert not where.exists()
