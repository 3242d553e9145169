"""What exit 0 means: the loss computes the dialect named, or a known one (an entry of the
catalogue), values and gradients; anything else differs, in words, with the command that accepts
it (issue 17).

The verdict logic is held on identification (``fitting.identify`` on a loss's values, then the
report's verdict on them, as a check gives it once the properties pass) for every catalogue entry
and for the losses of ``scratch_losses.py``, written from scratch; a few run end to end, in this
process (``--in-process``), as a user runs them."""

from __future__ import annotations

import functools
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch

from yolov1_loss.conformance.check import Steps, hold_to_dialect
from yolov1_loss.conformance.dialects import catalogue
from yolov1_loss.conformance.dialects.fitting import identify
from yolov1_loss.conformance.dialects.hints import hint
from yolov1_loss.conformance.reports.check_report import CheckReport
from yolov1_loss.reference import LossSpec, loss, loss_and_grad

from . import scratch_losses
from .helpers import report, run, write

SCRATCH = Path(scratch_losses.__file__)
COMMAND = "yolov1-loss check losses.py:loss"


def first_lines(identified, dialect: str = "auto", overrides=None, accept_any: bool = False):
    """(the report's lines, its exit status) on an identification, as a check whose properties
    all pass gives them."""
    named = None if dialect == "auto" else dialect
    found = CheckReport("losses.py:loss", "conforms", spec=identified.spec, identified=identified,
                        command=COMMAND, named_dialect=named, overrides=dict(overrides or {}))  # fmt: skip
    hold_to_dialect(found, accept_any)
    return found.summary().splitlines(), found.exit_code


def pinned(lines: list[str]) -> tuple[str, dict]:
    """The --dialect and --set of the command a report offers to accept what the loss computes."""
    line = next(line for line in lines if "accept it with: " in line or "in CI: " in line)
    words = shlex.split(line.split(": ", 1)[1])
    dialect = words[words.index("--dialect") + 1]
    sets = dict(words[k + 1].split("=", 1) for k, word in enumerate(words) if word == "--set")
    numbers = {k for k, v in LossSpec().knobs().items() if isinstance(v, float)}
    return dialect, {k: float(v) if k in numbers else v for k, v in sets.items()}


def oracle_identified(spec: LossSpec):
    """The identification of a loss computing ``spec`` in float32 (values), with its gradient."""
    return identify(
        lambda pred, target: np.float32(loss(pred, target, spec).total),
        spec.S, spec.B, spec.C,
        grad_fn=lambda pred, target: loss_and_grad(pred, target, spec)[1].total,
    )  # fmt: skip


def torch_identified(function, **grid):
    """The identification of a torch loss ``function(pred, target)``, called in float32."""

    def values(pred, target):
        return function(torch.tensor(pred, dtype=torch.float32), torch.tensor(target, dtype=torch.float32)).item()

    def grad(pred, target):
        p = torch.tensor(pred, dtype=torch.float32, requires_grad=True)
        function(p, torch.tensor(target, dtype=torch.float32)).backward()
        return p.grad.numpy()

    return identify(values, grad_fn=grad, **grid)


# --- every catalogue entry -----------------------------------------------------------------------

GRID = dict(S=4, B=2, C=3)
ENTRIES = [entry for entry in catalogue.entries() if entry.expressible]
# Single changes that move a dialect off its entry (the first that lands on no entry is used).
AWAY = (("lambda_coord", 3.0), ("reduction", None), ("iou_frame", None), ("wh_mode", "linear"))


def one_knob_away(entry) -> tuple[str, LossSpec]:
    """(the knob, the entry's dialect with that knob changed) computing no known dialect, and
    nearest to ``entry`` still (or to the entry it computes the same as)."""
    spec = entry.spec(**GRID)
    flips = {"reduction": {"sum": "mean", "mean": "sum"}, "iou_frame": {"raw": "image", "image": "raw"}}
    for knob, value in AWAY:
        value = flips[knob].get(getattr(spec, knob), "sum") if value is None else value
        if knob == "lambda_coord":
            away = spec.replace(lambda_coord=value)
        else:
            away = spec.replace(**{knob: value})
        if not catalogue.computing(away) and not catalogue.differing(catalogue.nearest(away).spec(**GRID), spec):
            return knob, away
    raise AssertionError(f"no single change moves {entry.name} off the catalogue")


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_a_loss_computing_a_catalogue_entry_is_that_entry(entry):
    lines, status = first_lines(oracle_identified(entry.spec(**GRID)))
    # Two entries may compute the same values (one with its bug in backward): the one without a bug is named.
    named = catalogue.known(entry.spec(**GRID)) or entry
    assert lines[0] == COMMAND
    if named.bug is None:
        assert (status, lines[1]) == (0, "verdict: CONFORMS"), lines
        assert lines[2] == f"dialect: computes the same as {named.name}: {named.known_for} ({named.source})"
        dialect, sets = pinned(lines)
        assert (dialect, sets) == (named.name, {}), lines
    else:
        assert (status, lines[1]) == (1, f"verdict: DIFFERS from every known dialect but {named.name}, a known bug")
        assert f"  its bug: {named.bug}" in lines


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_one_knob_away_from_a_catalogue_entry_differs_and_the_pin_accepts_it(entry):
    knob, away = one_knob_away(entry)
    identified = oracle_identified(away)
    lines, status = first_lines(identified)
    assert (status, lines[1]) == (1, "verdict: DIFFERS from every known dialect"), lines
    assert [line for line in lines if line.startswith(f"    {knob}={getattr(away, knob)!r}")], lines
    dialect, sets = pinned(lines)
    assert knob in sets, lines
    lines, status = first_lines(identified, dialect, sets)  # the command, run
    assert (status, lines[1]) == (0, "verdict: CONFORMS"), lines


def test_end_to_end_a_public_implementations_dialect_conforms_and_one_knob_away_is_pinned(tmp_path):
    entry = next(e for e in ENTRIES if e.preset is None and e.bug is None)  # beyond the presets
    impl = write(tmp_path, "public.py", f"from yolov1_loss import YoloV1Loss\nloss = YoloV1Loss(**{entry.knobs!r})\n")
    result = run("check", "--in-process", f"{impl}:loss", "--max-examples", 1)
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout
    assert lines[1:3] == [
        "verdict: CONFORMS",
        f"dialect: computes the same as {entry.name}: {entry.known_for} ({entry.source})",
    ]
    away = write(
        tmp_path,
        "away.py",
        f"from yolov1_loss import YoloV1Loss\nloss = YoloV1Loss(**{entry.knobs!r}, lambda_coord=3.0)\n",
    )
    result = run("check", "--in-process", f"{away}:loss", "--max-examples", 1)
    lines = result.stdout.splitlines()
    assert result.returncode == 1, result.stdout
    assert lines[1:3] == ["verdict: DIFFERS from every known dialect", f"dialect: {entry.name} with lambda_coord=3.0"]
    assert lines[4].startswith("    lambda_coord=3.0: 3.0 weighs coord"), lines
    pin = f"yolov1-loss check {away}:loss --dialect {entry.name} --set lambda_coord=3"
    assert lines[5] == f"  if this is the dialect you mean, accept it with: {pin}"
    again = run("check", "--in-process", *shlex.split(pin)[2:], "--max-examples", 1)
    assert again.returncode == 0 and again.stdout.splitlines()[1] == "verdict: CONFORMS", again.stdout


# --- the losses of issue 17, written from scratch ----------------------------------------------


def test_a_loss_that_is_zero_everywhere_differs_from_every_known_dialect(tmp_path):
    result = run("check", "--in-process", f"{SCRATCH}:zero", "--max-examples", 1, "--json", tmp_path / "r.json")
    lines = result.stdout.splitlines()
    assert result.returncode == 1, result.stdout
    assert lines[:3] == [
        f"yolov1-loss check {SCRATCH}:zero",
        "verdict: DIFFERS from every known dialect",
        "dialect: none: the loss is 0 on every probe, it computes no term of the YOLOv1 loss",
    ]
    assert "accept it with" not in result.stdout and "in CI" not in result.stdout
    found = report(tmp_path / "r.json")
    assert found["verdict"] == "differs" and found["reason"] == "from every known dialect"
    assert found["dialect"]["identified"]["absent"] == ["lambda_coord", "lambda_obj", "lambda_noobj", "lambda_class"]


@pytest.mark.parametrize(
    "name, line",
    [
        (
            "no_class_term",
            "lambda_class=0.0: the loss has no class term: the class scores are never trained (paper: 1.0)",
        ),
        ("raw_iou", "iou_frame='raw': the IoU takes x, y (cell units) and w, h (image units) as they are"),
        ("divided_by_batch", "reduction='mean': the loss is divided by the number of images"),
        ("confidence_to_one", "conf_target='one': the responsible predictor's confidence is pushed to 1"),
    ],
)
def test_a_classic_bug_differs_from_every_known_dialect_and_is_said_in_words(name, line):
    identified = torch_identified(getattr(scratch_losses, name))
    lines, status = first_lines(identified)
    knob = line.split("=")[0]
    assert (status, lines[1]) == (1, "verdict: DIFFERS from every known dialect"), lines
    assert lines[2] == f"dialect: paper with {line.split(':')[0]}", lines
    assert lines[3].startswith("  the nearest known dialect is paper: the paper's loss"), lines
    assert lines[4].startswith(f"    {line}"), lines
    assert len([line for line in lines if line.startswith("    ")]) == 1, lines  # that knob alone
    assert pinned(lines)[0] == "paper" and list(pinned(lines)[1]) == [knob]
    again, status = first_lines(identified, *pinned(lines))  # the pin, run
    assert (status, again[1]) == (0, "verdict: CONFORMS"), again


def test_a_weight_at_the_noise_level_is_no_knob_and_the_real_bug_is_named(tmp_path):
    # 0.5 for every no-object weight (the paper's) with the IoU on raw x, y: was reported as
    # noobj_scope='own_weight' with lambda_noobj_object=0.50001, and the raw frame not flagged.
    result = run("check", "--in-process", f"{SCRATCH}:raw_iou", "--max-examples", 1)
    lines = result.stdout.splitlines()
    assert result.returncode == 1, result.stdout
    assert lines[1:3] == ["verdict: DIFFERS from every known dialect", "dialect: paper with iou_frame='raw'"]
    assert "noobj" not in "\n".join(lines[:6]) and "0.5000" not in result.stdout
    pin = f"yolov1-loss check {SCRATCH}:raw_iou --dialect paper --set iou_frame=raw"
    assert f"  if this is the dialect you mean, accept it with: {pin}" in lines
    again = run("check", "--in-process", *shlex.split(pin)[2:], "--max-examples", 1)
    assert again.returncode == 0, again.stdout
    assert again.stdout.splitlines()[:3] == [pin, "verdict: CONFORMS", "dialect: paper with iou_frame='raw', as named"]


def test_nan_on_some_ordinary_probes_is_a_difference(tmp_path):
    # Boxes under 1/300 of the image: valid, ordinary input; the properties happen not to draw them.
    result = run("check", "--in-process", f"{SCRATCH}:nan_on_tiny_boxes", "--max-examples", 1)
    lines = result.stdout.splitlines()
    assert result.returncode == 1, result.stdout
    assert lines[1] == (
        "verdict: DIFFERS: it fails on ordinary input where the oracle gives a value: "
        "on 4 of the 18 probes (4 of the 6 probes of 2 images), it returned nan"
    )
    assert lines[2].startswith("dialect: computes the same as paper: ")


def test_a_loss_wrong_only_from_eight_images_on_is_caught(tmp_path):
    result = run("check", "--in-process", f"{SCRATCH}:wrong_from_eight_images", "--max-examples", 1,
                 "--json", tmp_path / "r.json")  # fmt: skip
    lines = result.stdout.splitlines()
    assert result.returncode == 1, result.stdout
    assert lines[1] == "verdict: DIFFERS" and lines[2].startswith("dialect: computes the same as paper: ")
    failed = {f["property"]: f for f in report(tmp_path / "r.json")["failures"]}
    assert "values_match_oracle" in failed and "images=16" in failed["values_match_oracle"]["counterexample"], failed


@pytest.mark.parametrize("name", ["darknet_nan_on_some", "darknet_zero"])
def test_no_hint_to_a_layout_under_which_the_fit_is_no_dialect(name):
    # Called in the darknet layout the first gives NaN on half the probes, the second 0: neither is a dialect.
    result = run("check", "--in-process", f"{SCRATCH}:{name}", "--max-examples", 1)
    assert result.returncode == 2, result.stdout
    assert result.stdout.splitlines()[1].startswith("verdict: ERROR (the loss failed on every probe: ")
    assert "hint:" not in result.stdout


def test_a_hint_needs_a_plausible_fit():
    from yolov1_loss.conformance.user_loss.implementation import fixed_dialect

    impl = fixed_dialect(lambda pred, target: 0.0, LossSpec(), name="losses.py:loss")
    good = oracle_identified(LossSpec.preset("paper", **GRID))
    zero = good._replace(spec=good.spec.replace(lambda_class=0.0), absent=("lambda_class",))
    nan = good._replace(failed_probes="on 4 of the 18 probes (every probe of 3 images), it returned nan")

    def command_for(variant):
        return f"yolov1-loss check losses.py:loss --layout {variant.layout}"

    for implausible in (zero, nan):
        assert hint(impl, 4, 2, 3, lambda variant, found=implausible: found, command_for) is None
    advice = hint(impl, 4, 2, 3, lambda variant: good, command_for)
    assert advice.lines() == [
        "hint: called with --layout boxes-first, the loss runs and its values match paper: its layout is probably "
        "boxes-first",
        "  try: yolov1-loss check losses.py:loss --layout boxes-first",
    ]


# --- the named dialect, the lenient answer, the JSON report, progress --------------------------


def test_any_catalogue_entry_can_be_named_and_a_bug_entry_named_is_accepted_with_its_bug():
    for entry in ENTRIES:
        identified = oracle_identified(entry.spec(**GRID))
        lines, status = first_lines(identified, entry.name)
        assert (status, lines[1]) == (0, "verdict: CONFORMS"), lines
        assert lines[2] == f"dialect: {entry.name}, as named"
        assert (f"  its bug: {entry.bug}" in lines) == (entry.bug is not None)


def test_a_term_left_out_is_accepted_where_set_pins_it():
    no_class = torch_identified(scratch_losses.no_class_term)
    lines, status = first_lines(no_class, overrides={"lambda_class": 0.0})
    assert (status, lines[1]) == (0, "verdict: CONFORMS"), lines
    # The knob set on top is said with its meaning, not under the paper's description, which it contradicts.
    assert lines[2:4] == [
        "dialect: computes paper with lambda_class=0.0 set, as --set asks",
        "  lambda_class=0.0: the loss has no class term: the class scores are never trained (paper: 1.0)",
    ]
    zero = torch_identified(scratch_losses.zero)
    lines, status = first_lines(zero, overrides={"lambda_class": 0.0})  # the other three are not pinned
    assert (status, lines[1:3]) == (1, ["verdict: DIFFERS from every known dialect",
                                        "dialect: none: the loss is 0 on every probe, it computes no term of the YOLOv1 loss"])  # fmt: skip


def test_the_lenient_answer_accepts_any_dialect_with_every_term_only():
    raw = torch_identified(scratch_losses.raw_iou)
    lines, status = first_lines(raw, accept_any=True)
    assert (status, lines[1]) == (0, "verdict: CONFORMS")
    assert (
        lines[2]
        == "dialect: paper with iou_frame='raw' (no known dialect computes it; accepted under --accept-any-dialect)"
    )
    lines, status = first_lines(torch_identified(scratch_losses.no_class_term), accept_any=True)
    assert (status, lines[1]) == (1, "verdict: DIFFERS from every known dialect")  # a term left out is no dialect


def test_the_json_report_gives_undetermined_knobs_as_null():
    identified = oracle_identified(LossSpec.preset("article", **GRID))._replace(undetermined=("iou_grad",))
    found = CheckReport("losses.py:loss", "conforms", spec=identified.spec, identified=identified, command=COMMAND)
    hold_to_dialect(found)
    dialect = found.to_dict()["dialect"]
    assert dialect["knobs"]["iou_grad"] is None and dialect["undetermined"] == ["iou_grad"]
    assert dialect["knobs"]["wh_mode"] == "signed_sqrt"
    named = CheckReport(
        "losses.py:loss", "conforms", spec=identified.spec, identified=identified, named_dialect="article"
    )
    assert named.to_dict()["dialect"]["knobs"]["iou_grad"] == "through"  # named: nothing left undetermined


def test_steps_are_numbered_with_the_total_and_the_time_left_once_one_is_timed():
    lines, now = [], [0.0]
    steps = Steps(lines.append, clock=lambda: now[0])
    for k in range(1, 5):
        steps(k, 4, f"[{k}/4] property {k}")
        now[0] += 3.0  # each step takes 3 s
    assert lines == ["[1/4] property 1", "[2/4] property 2, about 9 s left", "[3/4] property 3, about 6 s left",
                     "[4/4] property 4, about 3 s left"]  # fmt: skip
    lines.clear()
    throttled = Steps(lines.append, every=1.0, clock=lambda: now[0])
    for k in range(1, 7):
        throttled(k, 6, f"call {k} of 6")
        now[0] += 0.4
    assert lines == ["call 1 of 6", "call 4 of 6, about 1 s left"]  # (3 steps in 1.2 s: 1.2 s for the last 3)


def test_identification_counts_the_loss_calls_for_progress():
    seen = []
    spec = LossSpec.preset("paper", **GRID)
    identify(lambda p, t: loss(p, t, spec).total, grad_fn=lambda p, t: loss_and_grad(p, t, spec)[1].total,
             progress=lambda k, n: seen.append((k, n)), **GRID)  # fmt: skip
    assert [k for k, _ in seen] == list(range(1, len(seen) + 1))
    assert seen[-1] == (36, 36)  # 18 probes, values and gradients


@functools.cache
def _readme_check_sample() -> list[str]:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text[text.index("## Checking your loss") :]
    block = section[section.index("```\nyolov1-loss check examples/user_loss.py") + 4 :]
    return block[: block.index("```")].strip("\n").splitlines()


def test_the_readmes_sample_is_what_the_command_prints():
    sample = _readme_check_sample()
    root = Path(__file__).resolve().parents[2]
    result = run("check", "--in-process", "examples/user_loss.py:YoloLoss", "--layout", "boxes-first", cwd=root)
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[: len(sample)] == sample
    assert "identifying the dialect: call 1 of 36 of the loss" in result.stderr
    assert "[2/12] gradients_match_oracle, about " in result.stderr
