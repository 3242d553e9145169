"""The words of the check report's lines: the warnings' heading, the term lines when no dialect
reproduces the values (they agree with the "what differs" line), the hint's command."""

from __future__ import annotations

from yolov1_loss.conformance.dialects.blame import NO_GRADIENT, Blame
from yolov1_loss.conformance.dialects.fitting import TermFit
from yolov1_loss.conformance.reports.check_report import CheckReport
from yolov1_loss.reference import LossSpec


def test_the_warnings_are_headed_as_they_are_grouped_by_kind_with_a_count_and_one_example():
    found = CheckReport(
        "losses.py:loss",
        "conforms",
        warnings={
            "UserWarning: a batch of shape (1, 7, 7, 30) (at losses.py:6)": 600,
            "UserWarning: this loss is deprecated (at losses.py:5)": 28,
        },
    )
    lines = found.summary().splitlines()
    at = lines.index("the loss warned (628 warnings, one line per kind, with a count and one example):")
    assert lines[at + 1 : at + 3] == [
        "  600× UserWarning: a batch of shape (1, 7, 7, 30) (at losses.py:6)",
        "  28× UserWarning: this loss is deprecated (at losses.py:5)",
    ]


def test_a_term_that_fails_on_its_probes_but_whose_gradient_matches_sends_the_reader_to_what_differs():
    coord = TermFit("coord", False, 0.1, {}, {}, None)
    assert coord.line() == "coord (box centres and sizes): no dialect reproduces it (relative residual 0.1)"
    assert coord.line(gradient_matches=True) == (
        "coord (box centres and sizes): no dialect reproduces it (relative residual 0.1; its gradient matches: "
        "see what differs)"
    )


def test_the_empty_cells_family_matches_by_reading_none_of_their_channels_not_by_a_weight():
    empty = TermFit("empty", True, 0.0, {"noobj": 0.5}, {"reduction": "sum"}, None)
    assert empty.line() == "the class scores and boxes of empty cells (no term reads them): matches: reads none of them"


def test_the_blame_says_which_families_gradients_match():
    spec = LossSpec(S=4, B=2, C=3)
    cls_everywhere = Blame("the class scores of empty cells", "…", "…", ("cls",), spec)
    assert not cls_everywhere.gradient_matches("empty") and not cls_everywhere.gradient_matches("cls")
    assert cls_everywhere.gradient_matches("coord") and cls_everywhere.gradient_matches("noobj")
    sizes = Blame("coord (sizes)", "…", "…", (), spec)
    assert not sizes.gradient_matches("coord") and sizes.gradient_matches("obj")
    assert Blame(NO_GRADIENT, "…", None, (), spec).gradient_matches("coord")
    # Without gradients (the term probes' values), nothing is said of them.
    assert not Blame("cls", "…", None, (), spec, gradients=False).gradient_matches("coord")
