"""check-encoder on encoders written from scratch (tests/encoding/scratch_encoders.py), each right
but for one classic bug, which the report's first lines name in words."""

import numpy as np
import pytest

from tests.check.helpers import run
from yolov1_loss.conformance.encoding.calling import EncoderCall
from yolov1_loss.conformance.encoding.cases import box_cases
from yolov1_loss.conformance.encoding.conventions import Conventions, encode_with
from yolov1_loss.conformance.encoding.encoder_check import EncoderOptions, check_encoder
from yolov1_loss.reference import encode

MODULE = "tests.encoding.scratch_encoders"
CALL = EncoderCall(S=4, B=2, C=3, framework="numpy", dtype="float64")


def checked(name: str, duplicates: str = "any"):
    return check_encoder(EncoderOptions(f"{MODULE}:{name}", CALL, duplicates=duplicates), here=True)


def test_the_spec_conventions_are_the_oracles_encoder():
    for case in box_cases(7, 20):
        np.testing.assert_array_equal(
            encode_with(case.boxes, case.labels, 7, 20, Conventions()), encode(case.boxes, case.labels, 7, 20)
        )


@pytest.mark.parametrize("name, policy", [("correct", "the first listed"), ("keeps_larger", "the larger (by area)")])
def test_a_correct_encoder_conforms_and_its_policy_is_named(name, policy):
    report = checked(name)
    assert report.verdict == "conforms" and report.exit_status == 0, report.lines()
    assert f"duplicates: a cell holding several centres keeps {policy}" in report.lines()


@pytest.mark.parametrize(
    "name, duplicates, words",
    [
        ("swapped", "any", "wrong: row and column swapped"),
        ("no_clamp", "any", "wrong: a centre at exactly 1.0 indexes cell S, which does not exist"),
        ("offsets_from_image_corner", "any", "wrong: the offsets x, y are taken from the image's corner"),
        ("sizes_times_S", "any", "wrong: w and h are multiplied by S"),
        (
            "keeps_last",
            "first",
            "wrong: two objects in one cell: the encoder keeps the last listed where the first listed is meant",
        ),
    ],
)
def test_each_classic_bug_is_named_first(name, duplicates, words):
    report = checked(name, duplicates)
    lines = report.lines()
    assert report.verdict == "differs" and report.exit_status == 1
    assert lines[1] == "verdict: DIFFERS"
    assert lines[2].startswith(words), lines[:4]
    assert sum(line.startswith("wrong:") for line in lines) == 1, lines  # that bug alone


def test_a_difference_shows_the_box_the_cell_both_grids_and_python():
    lines = checked("sizes_times_S").lines()
    text = "\n".join(lines)
    assert "on an object in each corner cell:" in text
    # the corner box of class 0 in cell (0, 0): w 0.2 and h 0.3, which the bug multiplies by 4
    assert (
        "cell (0, 0): the encoder's class 0, x 0.5, y 0.5, w 0.8, h 1.2; the oracle's class 0, x 0.5, y 0.5, w 0.2, h 0.3"
        in text
    )
    assert "encoder = load_callable('tests.encoding.scratch_encoders:sizes_times_S')" in text


def test_the_command_runs_the_encoder_in_its_own_process(tmp_path):
    source = tmp_path / "enc.py"
    source.write_text("import os\n\ndef encode(boxes, labels):\n    os._exit(3)\n")
    done = run("check-encoder", f"{source}:encode", "--S", 4, "--C", 3, "--framework", "numpy")
    assert done.returncode == 2
    assert "the encoder's process exited with status 3" in done.stdout
    conforms = run(
        "check-encoder", f"{MODULE}:correct", "--S", 4, "--C", 3, "--framework", "numpy", "--dtype", "float64"
    )
    assert conforms.returncode == 0 and "verdict: CONFORMS" in conforms.stdout


@pytest.mark.parametrize(
    "name, call",
    [
        ("channels_first", EncoderCall(S=4, B=2, C=3, layout="channels-first", framework="numpy", dtype="float64")),
        ("batched", EncoderCall(S=4, B=2, C=3, framework="numpy", dtype="float64", batch=True)),
    ],
)
def test_other_layouts_and_batches(name, call):
    report = check_encoder(EncoderOptions(f"{MODULE}:{name}", call), here=True)
    assert report.verdict == "conforms", report.lines()


def test_a_layout_that_fits_is_named():
    lines = check_encoder(EncoderOptions(f"{MODULE}:channels_first", CALL), here=True).lines()
    assert lines[1:3] == [
        "verdict: DIFFERS",
        "hint: its grids are the oracle's in the channels-first layout: try --layout channels-first",
    ]


def test_a_box_format_that_fits_is_named():
    lines = check_encoder(EncoderOptions(f"{MODULE}:corners", CALL), here=True).lines()
    assert lines[2] == "hint: its boxes are probably xyxy: try --box-format xyxy"
    assert checked("corners").verdict == "differs"
    fits = check_encoder(EncoderOptions(f"{MODULE}:corners", CALL, box_format="xyxy"), here=True)
    assert fits.verdict == "conforms", fits.lines()


def test_the_echoed_command_says_every_option_not_its_default(capsys):
    """The report's first line is the command with each option the user gave that is not its default."""
    from yolov1_loss.cli import main

    options = ["--S", "4", "--C", "3", "--layout", "channels-first", "--box-format", "xyxy"]
    options += ["--image-size", "448,448", "--duplicates", "first", "--batch", "--framework", "numpy"]
    main(["check-encoder", f"{MODULE}:batched", *options, "--in-process"])
    assert capsys.readouterr().out.splitlines()[0] == (
        f"yolov1-loss check-encoder {MODULE}:batched --layout channels-first --S 4 --C 3 --box-format xyxy "
        "--image-size 448,448 --duplicates first --batch --framework numpy"
    )
    plain = EncoderOptions(f"{MODULE}:correct", EncoderCall(S=7, B=2, C=20))
    assert plain.command() == f"yolov1-loss check-encoder {MODULE}:correct"
