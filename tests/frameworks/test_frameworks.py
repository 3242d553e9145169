"""check on JAX and TensorFlow (Keras) losses: the examples conform, each kind of bug is caught,
and a check of a torch loss imports neither framework.

The losses are tests/frameworks/losses.py's (written from docs/spec.md) and examples/'s. To keep
the suite's time, most checks run in this process on a 2 × 2 grid with one class and few examples;
the worker runs where it is what is tested (the examples' command lines, a hang).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.fft  # noqa: F401 (before the plugin's nested sessions: pytester forgets what is first imported in one)
import pytest
from hypothesis import Phase
from hypothesis import settings as Settings

from yolov1_loss import reference
from yolov1_loss.cli import main
from yolov1_loss.conformance.check import (
    CheckOptions,
    _eager_only,
    _fails_on,
    in_process,
    options_hint,
    run_check,
    settings_for,
)
from yolov1_loss.conformance.inputs.example import Recipe, build
from yolov1_loss.conformance.inputs.input_classes import INPUT_CLASSES
from yolov1_loss.conformance.suite import runner
from yolov1_loss.reference import LossSpec

ROOT = Path(__file__).resolve().parents[2]
LOSSES = "tests/frameworks/losses.py"
GRID = dict(S=2, B=2, C=1)
FRAMEWORKS = {"jax": "jax", "tensorflow": "tf"}  # framework -> the prefix of its losses in LOSSES
COMPILED = {"jax": "jax.jit", "tensorflow": "tf.function"}
# A short search: a few examples, no shrinking (a failure is reported as found).
QUICK = Settings(settings_for(4, None), phases=(Phase.explicit, Phase.generate))


def loss(framework: str, name: str, dialect: str = "paper", **options):
    """(the in-process implementation of LOSSES' ``{prefix}_{name}``, held to ``dialect``; its options)."""
    o = CheckOptions.from_strings(f"{LOSSES}:{FRAMEWORKS[framework]}_{name}", framework=framework, **GRID, **options)
    return dataclasses.replace(in_process(o), fixed_spec=LossSpec.preset(dialect, **GRID)), o


# --- the examples, as a user runs them (in this process: the worker is tested by the hangs) -----


@pytest.mark.parametrize(
    "target, framework, dialect",
    [("examples/jax_loss.py:yolo_loss", "jax", "paper"), ("examples/keras_loss.py:YoloLoss", "keras", "ml_collection")],
)
def test_the_examples_conform_and_their_dialect_is_named(target, framework, dialect, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    grid = ["--S", "2", "--C", "1", "--max-examples", "1", "--in-process"]
    assert main(["check", target, "--framework", framework, *grid]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "verdict: CONFORMS"
    assert lines[2].startswith(f"dialect: computes the same as {dialect}:")
    assert "--dtype float32" in lines[0]  # the report states the dtype checked


# --- a second dialect, each framework, in this process ----------------------------------------


@pytest.mark.parametrize("framework, name, dialect", [("jax", "article", "article"), ("tensorflow", "paper", "paper")])
def test_a_loss_in_another_dialect_conforms(framework, name, dialect):
    o = CheckOptions.from_strings(f"{LOSSES}:{FRAMEWORKS[framework]}_{name}", framework=framework, **GRID)
    report = run_check(in_process(o), o, max_examples=1)
    assert report.verdict == "conforms", report.summary()
    assert report.exit_code == 0
    assert report.dialect.lines()[0].startswith(f"dialect: computes the same as {dialect}:")


# --- bugs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(
    "bug, dialect",
    [
        ("iou_target_detached", "article"),  # stop_gradient where the dialect lets gradient through
        ("iou_target_through", "paper"),  # none where it stops it
    ],
)
def test_a_gradient_only_bug_is_caught_with_the_element_named(framework, bug, dialect):
    impl, _ = loss(framework, bug, dialect)
    ex = build(Recipe(impl.fixed_spec, images=2, seed=0))
    spec = impl.fixed_spec
    right = reference.loss(ex.pred, ex.target, spec).total  # the values are the dialect's
    assert np.isclose(impl.evaluate(ex.pred, ex.target, spec).values["total"], right, rtol=1e-5)
    failure = runner.find_failure("gradients_match_oracle", impl, settings=QUICK)
    assert failure is not None
    failure.located()
    text = str(failure)
    assert "where:" in text and "cell (" in text and "channel" in text, text


# zoo.py's bugs, ported (tests/frameworks/losses.py): each changes the values.
ZOO_VALUE_BUGS = ["swapped_lambdas", "union_keeps_intersection", "class_loss_on_empty_cells", "responsible_pays_noobj"]


@pytest.mark.parametrize("bug", ZOO_VALUE_BUGS)
def test_the_zoo_value_bugs_ported_to_jax_are_caught(bug):
    impl, _ = loss("jax", bug)
    assert runner.find_failure("values_match_oracle", impl, settings=QUICK) is not None


def test_a_hand_written_gradient_missing_its_factor_two_is_caught_in_tensorflow():
    impl, _ = loss("tensorflow", "half_gradient")  # zoo SquaredErrorHalfGradient, by tf.custom_gradient
    assert runner.find_failure("values_match_oracle", impl, settings=QUICK) is None
    assert runner.find_failure("gradients_match_oracle", impl, settings=QUICK) is not None


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_loss_that_fails_only_compiled_is_a_finding_in_words(framework):
    impl, _ = loss(framework, "eager_only")
    (finding,) = _eager_only(impl)
    assert not finding.degenerate
    line = finding.line()
    assert line.startswith(f"finding: on an ordinary batch, it runs eagerly but raises under {COMPILED[framework]}: ")
    assert "losses.py:" in line  # the user's line
    assert _eager_only(loss(framework, "paper")[0]) == []


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_loss_that_raises_on_a_batch_with_no_object_is_a_finding(framework):
    impl, _ = loss(framework, "raises_without_objects")
    (no_object,) = [c for c in INPUT_CLASSES if c.words == "a batch with no object"]
    problem = _fails_on(impl, no_object)
    assert problem.startswith("the loss raised in forward: ValueError: no object in the batch (at ")
    assert "losses.py:" in problem
    assert not no_object.degenerate  # a finding, not a warning


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_loss_that_hangs_times_out_with_exit_status_2(framework, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    target = f"{LOSSES}:{FRAMEWORKS[framework]}_hangs"  # (the loss runs in its worker: the default)
    assert main(["check", target, "--framework", framework, "--timeout", "2", "--import-timeout", "60"]) == 2
    out = capsys.readouterr().out
    assert "verdict: ERROR" in out and "no answer in 2 s" in out and "--timeout" in out


# --- hints ---------------------------------------------------------------------------------------


def test_a_keras_order_hint_for_a_tensorflow_loss_written_pred_first():
    impl, o = loss("tensorflow", "paper_pred_first")
    assert impl.arguments == "target,pred"  # Keras's order, the framework's default
    found = options_hint(impl, o)
    assert found is not None and found.arguments == "pred,target" and found.layout is None
    assert "--args pred,target" in found.command


def test_a_layout_hint_for_a_jax_loss_in_another_layout():
    impl, o = loss("jax", "paper_boxes_first")
    found = options_hint(impl, o)
    assert found is not None and found.layout == "boxes-first" and found.arguments is None
    assert "--layout boxes-first" in found.command


# --- options, dtypes ------------------------------------------------------------------------------


def test_keras_is_tensorflow_called_target_first_unless_args_say_otherwise():
    keras = CheckOptions.from_strings("m.py:f", framework="keras")
    assert (keras.framework, keras.arguments) == ("tensorflow", "target,pred")
    assert keras.command() == "yolov1-loss check m.py:f --framework tensorflow --dtype float32"
    swapped = CheckOptions.from_strings("m.py:f", framework="tensorflow", arguments="pred,target")
    assert swapped.command().endswith("--args pred,target")
    assert CheckOptions.from_strings("m.py:f", framework="jax").arguments == "pred,target"
    with pytest.raises(ValueError, match="--device places torch tensors"):
        CheckOptions.from_strings("m.py:f", framework="jax", device="cuda")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_float64_is_float64(framework):
    """The oracle's total to 1e-12 (float32 would miss it by about 1e-5 relative)."""
    impl, _ = loss(framework, "paper", dtype="float64")
    ex = build(Recipe(impl.fixed_spec, images=2, seed=1))
    parts, grads = reference.loss_and_grad(ex.pred, ex.target, impl.fixed_spec)
    got = impl.evaluate(ex.pred, ex.target, impl.fixed_spec, grads="total")
    assert got.values["total"] == pytest.approx(parts.total, rel=1e-12)
    np.testing.assert_allclose(got.grads["total"], grads.total, rtol=1e-9, atol=1e-9)


def test_a_check_of_a_torch_loss_imports_neither_framework():
    code = (
        "import sys\n"
        "from yolov1_loss.cli import main\n"
        "status = main(['check', 'examples/user_loss.py:YoloLoss', '--layout', 'boxes-first', '--in-process',\n"
        "               '--S', '2', '--C', '1', '--max-examples', '1'])\n"
        "print(status, sorted(m for m in ('jax', 'tensorflow', 'keras') if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.stdout.splitlines()[-1] in ("0 []", "1 []"), run.stdout + run.stderr


# --- the pytest plugin, bench ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "target, framework, dialect",
    [("examples/jax_loss.py:yolo_loss", "jax", "paper"), ("examples/keras_loss.py:YoloLoss", "keras", "ml_collection")],
)
def test_the_plugin_takes_the_framework(pytester, target, framework, dialect):
    """test_dialect under --yolov1-framework (Keras's argument order its default), the loss in its
    worker (a nested session forgets the modules first imported in it: TensorFlow and JAX both
    in one process so aborted)."""
    path, attr = target.split(":")
    pytester.makepyfile(**{Path(path).stem: (ROOT / path).read_text()})  # (the session's files are its folder's)
    args = [f"--yolov1-impl={Path(path).name}:{attr}", f"--yolov1-framework={framework}", f"--yolov1-dialect={dialect}"]
    result = pytester.runpytest(*args, "--yolov1-S=2", "--yolov1-C=1", "-k", "test_dialect")
    result.assert_outcomes(passed=1, deselected=12)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_bench_times_a_framework_loss_checked_against_the_oracle(framework):
    from yolov1_loss.benchmarks.contenders import first_user_call, time_user_case, user_case
    from yolov1_loss.benchmarks.timing import Timing

    impl, _ = loss(framework, "paper")
    case = user_case(impl, impl.fixed_spec, 3, "float32", "cpu", 1)
    total, grad, _ = first_user_call(case)
    parts, grads = reference.loss_and_grad(*case.canonical, impl.fixed_spec)
    assert total == pytest.approx(parts.total, rel=1e-5)
    np.testing.assert_allclose(grad, grads.total, rtol=1e-4, atol=1e-4)
    beats = []
    timing, cuda = time_user_case(case, "forward+backward", 0.05, None, lambda: beats.append(1))
    assert isinstance(timing, Timing) and timing.median_s > 0 and beats and cuda == {}


def test_bench_refuses_what_a_framework_loss_cannot_be_timed_on():
    from yolov1_loss.benchmarks.contenders import isolated_contender

    refuses = isolated_contender("l.py:f", None, {}, "jax").refuses
    spec = LossSpec()
    import torch

    assert refuses(spec, "cpu", torch.float32, "forward+backward") is None
    assert "no backward pass alone" in refuses(spec, "cpu", torch.float32, "backward")
    assert "bfloat16" in refuses(spec, "cpu", torch.bfloat16, "forward")
    assert "--device is torch's" in refuses(spec, "cuda", torch.float32, "forward")
    assert isolated_contender("l.py:f", None, {}).refuses(spec, "cpu", torch.float32, "backward") is None


def test_bench_says_a_framework_row_runs_on_the_frameworks_own_threads():
    from argparse import Namespace

    from yolov1_loss.bench import header

    args = Namespace(threads=1, device="cpu", preset="paper", impl="l.py:f", framework="keras")
    said = header(args, ["fused"], "paper")
    assert said.endswith("Timed on 1 CPU thread (row l.py:f: tensorflow's own thread pool).")
    assert header(Namespace(**{**vars(args), "framework": "torch"}), ["fused"], "paper").endswith("1 CPU thread.")
