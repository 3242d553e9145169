"""``bench --impl``: the user's loss runs in a worker process of its own, as ``check`` runs it.
A loss that exits, crashes or hangs while it is benchmarked is one line and exit 2, never bench's
own end; a loss in another layout is called in it; bench says which dialect it held the loss to."""

from __future__ import annotations

import textwrap
import time

import pytest

from yolov1_loss.cli import main

NAIVE = """
import os, signal, time
from yolov1_loss.benchmarks.naive import naive_loss
from yolov1_loss.reference import LossSpec, pred_to_canonical, target_to_canonical

SPEC = LossSpec.preset("ml_collection")

def boxes_first(pred, target):
    S = pred.shape[1]
    return naive_loss(
        pred_to_canonical(pred, "boxes-first", S, 2, 20), target_to_canonical(target, "boxes-first", S, 2, 20), SPEC
    )

def on_64(then):  # the naive loss, until bench gives it a batch of 64 images (after identification, on 1 to 3)
    def loss(pred, target):
        if pred.shape[0] == 64:
            then()
        return naive_loss(pred, target, SPEC)
    return loss

exits = on_64(lambda: os._exit(0))
crashes = on_64(lambda: os.kill(os.getpid(), signal.SIGSEGV))
hangs = on_64(lambda: time.sleep(1e6))
"""


@pytest.fixture
def losses(tmp_path):
    path = tmp_path / "bench_naive_losses.py"
    path.write_text(textwrap.dedent(NAIVE))
    return path


def bench(losses, name, *options):
    return main(["bench", "--quick", "--no-compile", "--impl", f"{losses}:{name}", *options])


@pytest.mark.parametrize(
    "name, options, what",
    [
        ("exits", (), "the loss's process exited with status 0 during its first call on N=64 float32"),
        (
            "crashes",
            (),
            "the loss's process was killed by SIGSEGV (a segmentation fault) during its first call on N=64",
        ),
        ("hangs", ("--timeout", "3"), "no answer in 3 s during its first call on N=64 float32"),
    ],
)
def test_a_loss_that_exits_crashes_or_hangs_is_one_line_and_exit_2(losses, capsys, name, options, what):
    start = time.monotonic()
    assert bench(losses, name, *options) == 2
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if line.startswith("yolov1-loss bench:")]
    assert line.startswith(f"yolov1-loss bench: --impl {losses}:{name}: {what}")
    assert "Traceback" not in err
    assert time.monotonic() - start < 60


def test_a_boxes_first_loss_is_benchmarked_in_its_layout_and_its_dialect_said(losses, capsys):
    impl = f"{losses}:boxes_first"
    assert bench(losses, "boxes_first", "--layout", "boxes-first") == 0
    out = capsys.readouterr().out
    [said] = [line for line in out.splitlines() if line.startswith(f"{impl} is checked and timed in ")]
    assert said.startswith(f"{impl} is checked and timed in the dialect identified from its values: ")
    assert said.endswith("ml_collection") or said.endswith("'ml_collection'")  # (the dialect in words)
    [row] = [line for line in out.splitlines() if line.startswith(impl) and "(×" in line]
    assert row.count("s (×") == 2  # timed at N = 1 and 64
