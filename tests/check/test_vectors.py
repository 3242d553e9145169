"""``yolov1-loss vectors`` and ``check --vectors``: gradients compared wherever the stored point
allows, any dialect, and vector folders read as untrusted input."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from .helpers import report, run, write

GOOD = """
    from yolov1_loss.torch_impl import YoloV1Loss
    loss = YoloV1Loss(preset="paper")
"""
CUT_COORD_GRADIENT = """
    from yolov1_loss.torch_impl import YoloV1Loss
    _loss = YoloV1Loss(preset="paper")

    def loss(pred, target):
        parts = _loss(pred, target)
        return parts.total - 5 * parts.coord + 5 * parts.coord.detach()  # the same values, no coord gradient
"""


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    """A folder of paper and article vectors at S=7, B=2, C=20 (written once for the module)."""
    folder = tmp_path_factory.mktemp("vectors") / "set"
    result = run("vectors", "--out", folder, "--preset", "paper", "--preset", "article")
    assert result.returncode == 0, result.stderr
    return folder


def replay(tmp_path, folder, source=GOOD, *options, isolated=False):
    # The replay is the point here, not the isolation: the loss runs in the checker's process
    # (but for one test, which replays through the loss's own process, as users run it).
    impl = write(tmp_path, "loss.py", source)
    where = () if isolated else ("--in-process",)
    result = run("check", f"{impl}:loss", *where, "--vectors", folder, *options, "--json", tmp_path / "r.json")
    return result, report(tmp_path / "r.json")


def test_a_correct_loss_passes_with_gradients_compared_at_float32(tmp_path, vectors):
    result, data = replay(tmp_path, vectors, isolated=True)
    assert result.returncode == 0, result.stdout
    compared = [name for name, status in data["properties"].items() if name.endswith("gradient") and status == "passed"]
    assert len(compared) >= 10, data["properties"]
    assert data["grad_match"] is True and data["value_match"] is True


def test_a_cut_coord_gradient_is_caught_at_float32(tmp_path, vectors):
    result, data = replay(tmp_path, vectors, CUT_COORD_GRADIENT)
    assert result.returncode == 1, result.stdout
    assert data["grad_match"] is False and data["value_match"] is True
    assert any("channel 'predictor" in line for line in result.stdout.splitlines())


def test_vectors_of_other_dialects_are_counted_not_silently_skipped(tmp_path, vectors):
    result, data = replay(tmp_path, vectors)
    (left_out,) = data["left_out"]  # (the dialect as the report words it: 'article' or "preset 'article'")
    assert left_out.startswith("12 vector(s) of other dialects or grids (12 of ") and "article" in left_out
    assert left_out.endswith(" at S=7, B=2, C=20)")
    assert "left out of the properties: 12 vector(s) of other dialects" in result.stdout


def test_vectors_take_knobs_and_replay_the_identified_dialect(tmp_path):
    folder = tmp_path / "weighted"
    assert run("vectors", "--out", folder, "--preset", "paper", "--set", "lambda_coord=3").returncode == 0
    source = """
        from yolov1_loss.torch_impl import YoloV1Loss
        loss = YoloV1Loss(preset="paper", lambda_coord=3.0)
    """
    # Identified, not named: no known dialect weighs coord 3, so only the lenient answer accepts it.
    result, _ = replay(tmp_path, folder, source, "--accept-any-dialect")
    assert result.returncode == 0, result.stdout
    result, _ = replay(tmp_path, folder, source, "--dialect", "paper", "--set", "lambda_coord=3")
    assert result.returncode == 0, result.stdout


def test_vectors_refuse_to_overwrite_a_folder_of_vectors_unless_forced(tmp_path, vectors):
    folder = tmp_path / "copy"
    shutil.copytree(vectors, folder)
    before = (folder / "index.json").read_text()
    result = run("vectors", "--out", folder, "--preset", "darknet")
    assert result.returncode == 2 and "holds test vectors already" in result.stderr
    assert (folder / "index.json").read_text() == before
    assert run("vectors", "--out", folder, "--preset", "darknet", "--force").returncode == 0


def tampered(tmp_path, vectors, change):
    """A copy of the vectors with ``change(folder, index)`` applied; the index is rewritten."""
    folder = tmp_path / "tampered"
    shutil.copytree(vectors, folder)
    index = json.loads((folder / "index.json").read_text())
    change(folder, index)
    (folder / "index.json").write_text(json.dumps(index))
    return folder


def first_paper_entry(index):
    return next(e for e in index["vectors"] if e["dialect"] == "paper")


TAMPERINGS = {
    "outside": (lambda folder, index: first_paper_entry(index).update(file="../outside.npz"), "lies outside"),
    "absolute": (lambda folder, index: first_paper_entry(index).update(file="/etc/passwd"), "lies outside"),
    "symlink": (
        lambda folder, index: _replace(folder, index, lambda p: (p.unlink(), p.symlink_to("/etc/hostname"))),
        "a symbolic link",
    ),
    "fifo": (lambda folder, index: _replace(folder, index, lambda p: (p.unlink(), os.mkfifo(p))), "not a regular file"),
    "truncated": (
        lambda folder, index: _replace(folder, index, lambda p: p.write_bytes(p.read_bytes()[:100])),
        "not a readable .npz file",
    ),
    "empty": (lambda folder, index: _replace(folder, index, lambda p: p.write_bytes(b"")), "not a readable .npz file"),
    "missing": (lambda folder, index: _replace(folder, index, lambda p: p.unlink()), "No such file"),
    "bad_json": (None, "not valid JSON"),  # the index itself
    "no_file_key": (lambda folder, index: first_paper_entry(index).pop("file"), "lacks file"),
}


def _replace(folder, index, action):
    action(folder / first_paper_entry(index)["file"])


@pytest.mark.parametrize("how", list(TAMPERINGS))
def test_a_tampered_folder_is_an_error_in_one_clear_line(tmp_path, vectors, how):
    change, expected = TAMPERINGS[how]
    if change is None:
        folder = tmp_path / "tampered"
        shutil.copytree(vectors, folder)
        (folder / "index.json").write_text("{not json")
    else:
        folder = tampered(tmp_path, vectors, change)
    result, data = replay(tmp_path, folder)
    assert result.returncode == 2, result.stdout
    assert expected in data["error"], data["error"]
    assert "Traceback" not in result.stdout + result.stderr
    assert data["verdict"] == "error"
