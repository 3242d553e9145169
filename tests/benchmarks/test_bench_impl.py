"""``bench --impl``: the user's loss runs in a worker process of its own, as ``check`` runs it.
A loss that exits, crashes or hangs while it is benchmarked is one line and exit 2, never bench's
own end; a loss in another layout is called in it; bench says which dialect it held the loss to."""

from __future__ import annotations

import re
import textwrap
import time

import pytest

from yolov1_loss.benchmarks import contenders
from yolov1_loss.cli import main

NAIVE = """
import os, signal, time
from yolov1_loss.benchmarks.naive import naive_loss
from yolov1_loss.reference import LossSpec, pred_to_canonical, target_to_canonical

SPEC = LossSpec.preset("ml_collection")

def in_layout(layout):
    def loss(pred, target):
        S = pred.shape[1]
        return naive_loss(pred_to_canonical(pred, layout, S, 2, 20), target_to_canonical(target, layout, S, 2, 20), SPEC)
    return loss

boxes_first = in_layout("boxes-first")
conf_last = in_layout("classes-first-conf-last")

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
def losses(tmp_path, monkeypatch):
    """The losses' file; the sweep times the user's loss alone (the project's contenders, timed
    first at every N, would add seconds to each run: tests/benchmarks/test_cli.py times them)."""
    monkeypatch.setattr(contenders, "project_contenders", lambda compile_backend=None: ())
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
        # (the import, of torch among others, is not what hangs: it gets a limit of its own)
        (
            "hangs",
            ("--timeout", "2", "--import-timeout", "60"),
            "no answer in 2 s during its first call on N=64 float32",
        ),
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
    assert f"Row {impl} computes its own dialect, ml_collection (identified from its values)." in out.splitlines()
    [row] = [line for line in out.splitlines() if line.startswith(impl) and "(×" in line]
    assert len(re.findall(r"s +\(×", row)) == 2  # timed at N = 1 and 64


def test_a_loss_that_fails_on_every_probe_gets_its_first_cause_and_checks_hint(losses, capsys):
    # Called classes-first, the boxes-first loss's target adapter refuses the 25 target channels
    # (it takes 7·7·30 = 1470 values an image), with a message of its own for each batch size
    # of the probes (1, 2 and 3 images); called boxes-first it computes ml_collection.
    impl = f"{losses}:boxes_first"
    assert bench(losses, "boxes_first") == 2
    err = capsys.readouterr().err.splitlines()
    said = err[[k for k, line in enumerate(err) if line.startswith("yolov1-loss bench:")][0] :]
    assert len(said) == 3, said
    assert said[0].startswith(f"yolov1-loss bench: --impl {impl}: the loss failed on every probe: on ")
    assert said[0].count("expected N images of 1470 values each") == 1
    assert said[0].endswith(" (the first of 3 causes; yolov1-loss check lists them all)")
    assert said[1:] == [
        "hint: called with --layout boxes-first, the loss runs and its values match ml_collection: "
        "its layout is probably boxes-first",
        f"  try: yolov1-loss bench --impl {impl} --layout boxes-first",
    ]


def test_a_loss_no_dialect_reproduces_gets_checks_hint_before_it_is_held_to_the_closest(losses, capsys):
    # Called classes-first, the conf-last loss runs (the shapes are the same) but reads the
    # confidence as x, and so on: no dialect reproduces it; called conf-last it computes ml_collection.
    impl = f"{losses}:conf_last"
    assert bench(losses, "conf_last") == 1  # held to the closest dialect, it differs from the oracle
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == [
        "hint: called with --layout classes-first-conf-last, the loss runs and its values match ml_collection: "
        "its layout is probably classes-first-conf-last",
        f"  try: yolov1-loss bench --impl {impl} --layout classes-first-conf-last",
    ]
    [row] = [line for line in out if line.startswith(f"Row {impl} computes its own dialect, ")]
    assert row.endswith(" (the closest: no dialect reproduces its values).")
