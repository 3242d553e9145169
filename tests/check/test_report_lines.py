"""The words of the check report's lines: the warnings' heading, the term lines when no dialect
reproduces the values (they agree with the "what differs" line), the hint's command."""

from __future__ import annotations

from yolov1_loss.conformance.reports.check_report import CheckReport


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
