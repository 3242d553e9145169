"""``yolov1-loss bench`` as a user runs it: the table, the JSON, the plot, a user's loss, exit statuses."""

from __future__ import annotations

import json

import pytest
import torch

from yolov1_loss.cli import main

USER_LOSSES = """
from yolov1_loss.benchmarks.naive import naive_loss
from yolov1_loss.reference import LossSpec

SPEC = LossSpec.preset("ml_collection")

def right(pred, target):
    return 0.5 * naive_loss(pred, target, SPEC), {"loss": naive_loss(pred, target, SPEC)}["loss"]

def wrong(pred, target):
    return naive_loss(pred, target, SPEC.replace(lambda_coord=1.0))
"""

PROJECT = ["reference", "naive", "autograd", "fused"]


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "bench_user_losses.py"
    path.write_text(USER_LOSSES)
    return path


def test_quick_bench_prints_the_table_and_writes_json_and_plot(tmp_path, user_file, capsys):
    json_path, plot_path = tmp_path / "bench.json", tmp_path / "bench.png"
    impl = f"{user_file}:right"
    status = main(
        ["bench", "--quick", "--no-compile", "--impl", impl, "--json", str(json_path), "--plot", str(plot_path)]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert "forward+backward, S=7 B=2 C=20, float32, cpu: median time per step (× the fastest at that N)" in out
    rows = {line.split()[0] for line in out.splitlines() if "s (×" in line}
    assert rows == {*PROJECT, impl}
    data = json.loads(json_path.read_text())
    assert data["settings"]["threads"] == 1 and data["machine"]["torch"] == torch.__version__
    timed = {(r["contender"], r["n"]) for r in data["results"] if r["timing"]}
    assert timed == {(name, n) for name in [*PROJECT, impl] for n in (1, 64)}
    assert plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_user_loss_that_differs_from_its_named_dialect_is_not_timed_and_fails_the_run(user_file, capsys):
    impl = f"{user_file}:wrong"
    status = main(["bench", "--quick", "--no-compile", "--impl", impl, "--dialect", "ml_collection"])
    out = capsys.readouterr().out
    assert status == 1
    assert f"  {impl}: not timed, differs from the oracle: total " in out


def test_dialect_takes_any_catalogue_entry_as_check_does(user_file, capsys):
    # ml_collection's later revision is an entry of the catalogue, not a preset; the loss computes
    # ml_collection (confidence pushed to 1), so held to the revision (the IoU target) it differs.
    impl = f"{user_file}:right"
    status = main(["bench", "--quick", "--no-compile", "--impl", impl, "--dialect", "ml_collection_658a37d"])
    out = capsys.readouterr().out
    assert status == 1
    assert f"{impl} is checked and timed in the dialect named (--dialect): ml_collection_658a37d" in out
    assert f"  {impl}: not timed, differs from the oracle: total " in out


def test_a_user_loss_in_another_dialect_is_timed_in_its_identified_dialect(user_file, capsys):
    # Under --dialect auto (the default) the loss is held to the dialect check identifies, as
    # check holds it: here ml_collection with lambda_coord=1, not the sweep's dialect.
    impl = f"{user_file}:wrong"
    assert main(["bench", "--quick", "--no-compile", "--impl", impl]) == 0
    assert "not timed" not in capsys.readouterr().out
    assert (
        main(
            [
                "bench",
                "--quick",
                "--no-compile",
                "--impl",
                impl,
                "--dialect",
                "ml_collection",
                "--set",
                "lambda_coord=1",
            ]
        )
        == 0
    )


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
