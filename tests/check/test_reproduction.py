"""A failure that ``check`` reports on a user's loss can be reproduced by pasting its Python."""

from __future__ import annotations

import textwrap

import pytest

from yolov1_loss.conformance.check import CheckOptions, run_check
from yolov1_loss.conformance.suite.failure import ConformanceFailure
from yolov1_loss.conformance.user_loss.loading import user_implementation


def test_the_pasted_reproduction_raises_the_same_report(tmp_path):
    path = tmp_path / "wrong.py"
    path.write_text(
        textwrap.dedent("""
        from yolov1_loss.conformance.mutants import MUTANTS
        from yolov1_loss.reference import LossSpec
        _loss = MUTANTS["responsible_pays_noobj"].loss_class(LossSpec.preset("article"))

        def loss(pred, target):
            return _loss(pred, target)
    """)
    )
    report = run_check(user_implementation(f"{path}:loss"), CheckOptions(f"{path}:loss", dialect="article"), 5)
    assert report.verdict == "differs"
    failure = report.failures[0]
    with pytest.raises(ConformanceFailure) as raised:
        exec(failure.reproduction(), {})
    assert raised.value.property == failure.property
    assert raised.value.located()["component"] == failure.located()["component"] == "noobj"
