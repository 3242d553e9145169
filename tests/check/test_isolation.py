"""Hostile and broken losses: the loss runs in its own process, so whatever it does there (exit,
crash, hang, patch the oracle, leave threads) is a finding in a report that is still written,
never a faked verdict or a hung checker; and losses that fail on some inputs, or in the usual
ways, get findings and hints in words. (Tests of findings that need no isolation run the loss
in the checker's process, ``--in-process``, which starts faster.)"""

from __future__ import annotations

import time

from .helpers import report, run, write

CORRECT = """
    from yolov1_loss.torch_impl import YoloV1Loss
    _loss = YoloV1Loss(preset="paper")
"""


def check(tmp_path, body: str, *options, isolated: bool = False):
    impl = write(tmp_path, "hostile.py", CORRECT + body)
    where = () if isolated else ("--in-process",)
    result = run("check", f"{impl}:loss", "--max-examples", 3, *where, *options, "--json", tmp_path / "r.json")
    return result, report(tmp_path / "r.json")


def test_a_loss_that_calls_os_exit_is_an_error_with_a_report(tmp_path):
    result, data = check(
        tmp_path,
        """
    import os
    def loss(pred, target):
        os._exit(0)
    """,
        isolated=True,
    )
    assert result.returncode == 2
    assert "verdict: ERROR" in result.stdout
    assert "exited with status 0 during forward" in data["error"]


def test_a_loss_that_calls_sys_exit(tmp_path):
    result, data = check(
        tmp_path,
        """
    import sys
    def loss(pred, target):
        sys.exit(3)
    """,
        isolated=True,
    )
    assert result.returncode == 2
    assert "called sys.exit(3)" in result.stdout


def test_a_segfault_is_named(tmp_path):
    result, data = check(
        tmp_path,
        """
    import ctypes
    def loss(pred, target):
        return ctypes.string_at(0)
    """,
        isolated=True,
    )
    assert result.returncode == 2
    assert "killed by SIGSEGV (a segmentation fault) during forward" in data["error"]
    assert "hostile.py" in data["error"]  # the crash's Python stack, which names the user's line


def test_a_hung_loss_times_out(tmp_path):
    start = time.monotonic()
    result, data = check(
        tmp_path,
        """
    import time
    def loss(pred, target):
        time.sleep(1e6)
    """,
        "--timeout",
        1,
        "--import-timeout",  # (importing torch is not what hangs)
        60,
        isolated=True,
    )
    assert time.monotonic() - start < 60
    assert result.returncode == 2
    assert "no answer in 1 s during forward" in data["error"]


def test_a_thread_or_process_left_running_neither_holds_the_check_nor_outlives_it(tmp_path):
    from .test_untrusted_loss import gone

    pid = tmp_path / "pid"
    start = time.monotonic()
    result, _ = check(
        tmp_path,
        f"""
    import subprocess, sys, threading, time
    threading.Thread(target=time.sleep, args=(1e6,)).start()  # not a daemon
    _child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1e6)"])
    open({str(pid)!r}, "w").write(str(_child.pid))
    def loss(pred, target):
        return _loss(pred, target).total
    """,
        isolated=True,
    )
    assert result.returncode == 0, result.stdout
    assert time.monotonic() - start < 120
    assert gone([int(pid.read_text())])


def test_patching_the_oracle_in_the_loss_process_changes_nothing(tmp_path):
    result, data = check(
        tmp_path,
        """
    import numpy as np
    from yolov1_loss import reference
    from yolov1_loss.reference import loss as loss_module

    def loss(pred, target):
        return 2 * _loss(pred, target).total  # wrong by a factor of 2 ...

    _real = reference.loss_and_grad
    def _fake(pred, target, spec):  # ... and an oracle that agrees with it
        parts, grads = _real(pred, target, spec)
        return parts._replace(total=2 * parts.total), grads._replace(total=2 * grads.total)
    reference.loss_and_grad = loss_module.loss_and_grad = _fake
    """,
        "--dialect",
        "paper",
        isolated=True,
    )
    assert result.returncode == 1, result.stdout
    assert data["properties"]["values_match_oracle"] == "failed"


def test_a_loss_that_raises_on_a_batch_without_objects_is_still_judged_on_the_rest(tmp_path):
    result, data = check(
        tmp_path,
        """
    def loss(pred, target):
        if target[..., 20].sum() == 0:
            raise ValueError("no objects")
        return _loss(pred, target).total
    """,
    )
    assert result.returncode == 1, result.stdout  # ordinary input: a difference
    assert "finding: on a batch with no object, the loss raised in forward: ValueError: no objects" in result.stdout
    assert "a batch with no object" in data["left_out"]
    assert data["properties"]["values_match_oracle"] == "passed"
    assert data["value_match"] is True


def test_a_failure_on_an_empty_batch_is_a_warning_and_a_real_bug_still_shows(tmp_path):
    result, data = check(
        tmp_path,
        """
    def loss(pred, target):
        if pred.shape[0] == 0:
            raise ValueError("empty")
        conf = pred[..., 20]
        return _loss(pred, target).total + 0.5 * (conf - conf.detach()).sum()  # a gradient bug
    """,
    )
    assert result.returncode == 1, result.stdout
    assert "verdict: DIFFERS" in result.stdout
    assert "warning (degenerate input): on an empty batch (N = 0), the loss raised in forward" in result.stdout
    assert data["properties"]["gradients_match_oracle"] == "failed"


def test_a_failure_only_on_an_empty_batch_is_a_warning_unless_strict(tmp_path):
    body = """
    def loss(pred, target):
        if pred.shape[0] == 0:
            raise ValueError("empty")
        return _loss(pred, target).total
    """
    result, data = check(tmp_path, body)
    assert result.returncode == 0, result.stdout
    assert data["inputs"] == [
        {"input": "an empty batch (N = 0)", "degenerate": True, "problem": data["inputs"][0]["problem"]}
    ]
    result, _ = check(tmp_path, body, "--strict")
    assert result.returncode == 1


def test_a_nan_on_an_empty_batch_is_named_in_words(tmp_path):
    result, data = check(
        tmp_path,
        """
    def loss(pred, target):
        return _loss(pred, target).total / pred.shape[0] * pred.shape[0] if pred.shape[0] else pred.sum() / 0.0 * 0.0
    """,
    )
    assert "on an empty batch (N = 0), the loss gives total nan where the oracle gives 0.0" in result.stdout


def test_a_per_image_loss_is_identified_and_checked(tmp_path):
    result, data = check(
        tmp_path,
        """
    loss = YoloV1Loss(preset="article", reduction="none")
    """,
    )
    assert result.returncode == 0, result.stdout
    assert data["dialect"]["knobs"]["reduction"] == "none"
    assert data["properties"]["chain_rule"] == "passed"  # with upstream weights that differ per image


def test_nan_on_some_batch_sizes_is_said_in_words_and_judged(tmp_path):
    result, data = check(
        tmp_path,
        """
    def loss(pred, target):
        total = _loss(pred, target).total
        return total * float("nan") if pred.shape[0] == 3 else total
    """,
    )
    assert result.returncode == 1, result.stdout
    assert "on 4 of the 18 probes (every probe of 3 images), it returned nan" in result.stdout
    assert data["dialect"]["preset"] == "paper"


def test_arguments_in_the_wrong_order_get_a_hint_and_can_be_checked_as_they_are(tmp_path):
    body = """
    def loss(target, pred):
        return _loss(pred, target).total
    """
    result, data = check(tmp_path, body)
    assert result.returncode == 2
    assert "hint: called with --args target,pred, the loss runs and its values match paper" in result.stdout
    result, _ = check(tmp_path, body, "--args", "target,pred")
    assert result.returncode == 0, result.stdout


def test_a_boxes_first_loss_without_its_layout_gets_a_hint():
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "user_loss.py"
    result = run("check", f"{example}:YoloLoss", "--max-examples", 3, "--in-process")
    assert result.returncode == 2
    assert "hint: called with --layout boxes-first, the loss runs and its values match motokimura" in result.stdout


def test_a_total_and_a_dict_need_no_flag_and_other_outputs_say_what_to_do(tmp_path):
    result, _ = check(
        tmp_path,
        """
    def loss(pred, target):
        parts = _loss(pred, target)
        return parts.total, {"coord": parts.coord.item()}
    """,
    )
    assert result.returncode == 0, result.stdout
    result, data = check(
        tmp_path,
        """
    def loss(pred, target):
        return {"coord": 1.0}, "a note"
    """,
    )
    assert result.returncode == 2
    assert "--output names the item that is the total" in result.stdout


def test_the_losss_warnings_are_counted_once_each_kind(tmp_path):
    result, data = check(
        tmp_path,
        """
    import warnings
    def loss(pred, target):
        warnings.warn("this loss is deprecated")
        warnings.warn(f"a batch of shape {tuple(pred.shape)}, {pred.shape[0] * 1.5} half-images")
        return _loss(pred, target).total
    """,
        isolated=True,
    )
    assert result.returncode == 0, result.stdout
    [(deprecated, count), (sizes, size_count)] = data["warnings"].items()
    assert deprecated.startswith("UserWarning: this loss is deprecated (at ") and count > 100
    assert sizes.startswith("UserWarning: a batch of shape (") and size_count == count  # one kind, sizes aside
    assert result.stdout.count("this loss is deprecated") == 1
    assert result.stdout.count("a batch of shape") == 1


def test_progress_numbers_every_property_and_the_summary_names_what_did_not_apply(tmp_path):
    result, _ = check(
        tmp_path,
        """
    loss = _loss
    """,
    )
    for k in range(1, 13):
        assert f"[{k}/12]" in result.stderr
    assert "linear_in_weights: not applicable: the implementation computes one fixed dialect" in result.stdout


def test_max_examples_zero_is_a_usage_error(tmp_path):
    impl = write(tmp_path, "own.py", CORRECT + "    loss = _loss\n")
    result = run("check", f"{impl}:loss", "--max-examples", 0)
    assert result.returncode == 2 and "--max-examples must be at least 1" in result.stderr


def test_json_to_standard_output(tmp_path):
    import json

    impl = write(tmp_path, "own.py", CORRECT + "    loss = _loss\n")
    result = run("check", f"{impl}:loss", "--max-examples", 3, "--in-process", "--json", "-")
    assert result.returncode == 0
    assert json.loads(result.stdout)["verdict"] == "conforms"
    assert "verdict: CONFORMS" in result.stderr
    assert not (tmp_path / "-").exists()
