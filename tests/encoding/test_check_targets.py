"""check --targets boxes|padded on losses that build their grid inside (tests/encoding/box_losses.py):
correct ones in two dialects conform; one whose encoder keeps the last of two centres in a cell and
one without the clamp at 1.0 differ, the report naming the encoding in words."""

import numpy as np
import pytest

from tests.check.helpers import run
from yolov1_loss.conformance.check import CheckOptions, in_process, run_check
from yolov1_loss.conformance.dialects.fitting import probe_sets
from yolov1_loss.conformance.encoding.box_targets import BoxTargets
from yolov1_loss.conformance.user_loss.implementation import Implementation
from yolov1_loss.reference import LossSpec, encode_batch, loss

MODULE = "tests.encoding.box_losses"
PADDED = BoxTargets("padded", "xyxy", "last", (448.0, 448.0))


def checked(name: str, targets: BoxTargets):
    options = CheckOptions(f"{MODULE}:{name}", S=4, B=2, C=3, dtype="float64", targets=targets)
    return run_check(in_process(options), options, max_examples=4)


@pytest.fixture(scope="module")
def reports():
    return {
        "PaperBoxes": checked("PaperBoxes", BoxTargets()),
        "ArticlePadded": checked("ArticlePadded", PADDED),
        "KeepsLast": checked("KeepsLast", BoxTargets(duplicates="first")),
        "NoClamp": checked("NoClamp", BoxTargets()),
        "Swapped": checked("Swapped", BoxTargets()),
    }


@pytest.mark.parametrize("name, dialect", [("PaperBoxes", "paper"), ("ArticlePadded", "article")])
def test_correct_losses_taking_boxes_conform(reports, name, dialect):
    report = reports[name]
    assert report.verdict == "conforms", report.summary()
    assert report.dialect.entry.name == dialect
    assert report.properties["box_encoding"] == "passed"


def test_the_command_says_how_the_targets_are_written(reports):
    assert reports["ArticlePadded"].command.endswith(
        "--targets padded --box-format xyxy --class-column last --image-size 448,448"
    )


@pytest.mark.parametrize(
    "name, words",
    [
        (
            "KeepsLast",
            "two objects in cell (0, 0): the loss keeps the last listed, the oracle's encoder the first listed",
        ),
        ("NoClamp", "a centre at exactly 1.0 indexes cell S, which does not exist"),
    ],
)
def test_an_encoding_bug_differs_and_is_named(reports, name, words):
    report = reports[name]
    assert report.verdict == "differs"
    (failure,) = report.failures
    assert failure.property == "box_encoding"
    assert failure.message.startswith(f"the loss's own encoding of boxes differs from the oracle's: {words}")


def test_an_encoding_bug_leads_the_report(reports):
    """The encoding bug, not the loss terms a wrong grid makes differ, is the report's first cause."""
    lines = reports["Swapped"].summary().splitlines()
    assert lines[1].startswith("verdict: DIFFERS"), lines[:3]
    first = next(line for line in lines if line.startswith("what differs:"))
    assert first.startswith(
        "what differs: the loss encodes its boxes unlike the oracle's encoder: row and column swapped"
    )
    assert lines.index(first) == 2


def test_soft_class_targets_are_handed_over_exactly():
    """The identification's probes hold class targets that are not one-hot: a loss that takes boxes
    and encodes them as the oracle does computes the oracle's loss of the probe's grid."""
    spec = LossSpec.preset("paper", S=4, C=3)

    def boxes_loss(pred, boxes, _spec):
        grids = encode_batch([b[:, 1:] for b in boxes], [b[:, 0].astype(int) for b in boxes], 4, 3)
        return loss(pred, grids, spec).total

    impl = Implementation("boxes", boxes_loss, framework="numpy", targets=BoxTargets())
    for pred, target in probe_sets(4, 2, 3)[0][:4]:
        assert not np.isin(target[..., :3], (0, 1)).all()  # soft classes indeed
        np.testing.assert_allclose(
            impl.evaluate(pred, target, spec).values["total"], loss(pred, target, spec).total, rtol=1e-12
        )


def test_the_worker_hands_the_loss_padded_boxes():
    done = run(
        "check",
        f"{MODULE}:ArticlePadded",
        "--S",
        4,
        "--C",
        3,
        "--dtype",
        "float64",
        "--max-examples",
        2,
        *"--targets padded --box-format xyxy --class-column last --image-size 448,448".split(),
    )
    assert done.returncode == 0, done.stdout
