"""``yolov1-loss bench`` as a user runs it: the table, the JSON, the plot, a user's loss, exit statuses."""

from __future__ import annotations

import json
import re

import pytest
import torch

from yolov1_loss.benchmarks import contenders
from yolov1_loss.cli import main

USER_LOSSES = """
from yolov1_loss.benchmarks.naive import naive_loss
from yolov1_loss.reference import LossSpec

ML_COLLECTION = LossSpec.preset("ml_collection")
COORD_1 = ML_COLLECTION.replace(lambda_coord=1.0)

def ml_collection(pred, target):
    return naive_loss(pred, target, ML_COLLECTION)

def coord_1(pred, target):  # ml_collection with lambda_coord=1, another dialect; the total last in a tuple
    total = naive_loss(pred, target, COORD_1)
    return 0.5 * total, total
"""

PROJECT = ["reference", "naive", "autograd", "fused"]


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "bench_user_losses.py"
    path.write_text(USER_LOSSES)
    return path


@pytest.fixture
def only_the_users_loss(monkeypatch):
    """The sweep times the user's loss alone: the project's contenders, timed first at every N,
    would add seconds to a run whose point is the user's loss (the first test here times them)."""
    monkeypatch.setattr(contenders, "project_contenders", lambda compile_backend=None: ())


def test_quick_bench_prints_the_table_and_writes_json_and_plot(tmp_path, user_file, capsys):
    # The user's loss computes another dialect than the project's contenders (--preset's): each
    # row is held to, and timed in, its own, and the header says which.
    json_path, plot_path = tmp_path / "bench.json", tmp_path / "bench.png"
    impl = f"{user_file}:coord_1"
    status = main(
        ["bench", "--quick", "--no-compile", "--impl", impl, "--json", str(json_path), "--plot", str(plot_path)]
    )
    out = capsys.readouterr().out
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "Rows reference, naive, autograd, fused compute dialect ml_collection (--preset)."
    assert (
        lines[1]
        == f"Row {impl} computes its own dialect, ml_collection with lambda_coord=1.0 (identified from its values)."
    )
    assert lines[2].startswith("Each row is checked against the oracle in its own dialect before it is timed.")
    assert "so the times of rows in different dialects compare" in lines[2]
    assert "forward+backward, S=7 B=2 C=20, float32, cpu: median time per step (× the fastest at that N)" in out
    rows = {line.split()[0] for line in out.splitlines() if re.search(r"s +\(×", line)}  # (a timed cell)
    assert rows == {*PROJECT, impl}
    data = json.loads(json_path.read_text())
    assert data["settings"]["threads"] == 1 and data["machine"]["torch"] == torch.__version__
    timed = {(r["contender"], r["n"]) for r in data["results"] if r["timing"]}
    assert timed == {(name, n) for name in [*PROJECT, impl] for n in (1, 64)}
    assert plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_user_loss_that_differs_from_its_named_dialect_is_not_timed_and_fails_the_run(
    user_file, only_the_users_loss, capsys
):
    impl = f"{user_file}:coord_1"
    status = main(["bench", "--quick", "--no-compile", "--impl", impl, "--dialect", "ml_collection"])
    out = capsys.readouterr().out
    assert status == 1
    assert f"Row {impl} computes its own dialect, ml_collection (named by --dialect)." in out.splitlines()
    assert f"  {impl}: not timed, differs from the oracle: total " in out


def test_dialect_takes_any_catalogue_entry_as_check_does(user_file, only_the_users_loss, capsys):
    # ml_collection's later revision is an entry of the catalogue, not a preset; the loss computes
    # ml_collection (confidence pushed to 1), so held to the revision (the IoU target) it differs.
    impl = f"{user_file}:ml_collection"
    status = main(["bench", "--quick", "--no-compile", "--impl", impl, "--dialect", "ml_collection_658a37d"])
    out = capsys.readouterr().out
    assert status == 1
    assert f"Row {impl} computes its own dialect, ml_collection_658a37d (named by --dialect)." in out.splitlines()
    assert f"  {impl}: not timed, differs from the oracle: total " in out


def test_a_user_loss_in_another_dialect_named_with_set_is_timed_in_it(user_file, only_the_users_loss, capsys):
    # (Identified, the same loss is timed in its own dialect in the first test here.)
    impl = f"{user_file}:coord_1"
    options = ["--dialect", "ml_collection", "--set", "lambda_coord=1"]
    assert main(["bench", "--quick", "--no-compile", "--impl", impl, *options]) == 0
    out = capsys.readouterr().out
    assert (
        f"Row {impl} computes its own dialect, ml_collection with lambda_coord=1.0 (named by --dialect and --set)."
        in (out.splitlines())
    )
    assert "not timed" not in out


def test_an_impl_that_cannot_be_loaded_exits_2(capsys):
    assert main(["bench", "--impl", "no_such_module_anywhere:loss"]) == 2
    assert "cannot load --impl no_such_module_anywhere:loss" in capsys.readouterr().err


def test_zero_threads_exits_2(capsys):
    assert main(["bench", "--threads", "0"]) == 2
    assert "--threads must be >= 1" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_without_a_device_exits_2(capsys):
    assert main(["bench", "--device", "cuda"]) == 2
    assert "torch sees no CUDA device" in capsys.readouterr().err


def test_a_plot_without_matplotlib_exits_2_before_timing(tmp_path, monkeypatch, capsys):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real_find_spec(name, *a)
    )
    assert main(["bench", "--quick", "--no-compile", "--plot", str(tmp_path / "p.png")]) == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err
    assert not (tmp_path / "p.png").exists()
