"""The heatmaps' outlines and the sentences that stand in for maps with nothing on them, on the
page of ``class_loss_on_empty_cells``'s failure of gradients_match_oracle (one S = 7 example)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.reports.html_pages import Page, failure_report
from yolov1_loss.conformance.reports.html.evidence import Term
from yolov1_loss.conformance.reports.html.page import GRADIENTS_AGREE, TERMS_AGREE, page


@pytest.fixture(scope="module")
def report():
    return failure_report("class_loss_on_empty_cells", S=7, prop="gradients_match_oracle")[0]


def test_each_map_outlines_the_named_cell_solid_and_its_own_largest_dashed(report):
    named = report.failures[0].located()["cell"]
    assert named is not None
    parsed = Page(page(report))
    outlines, heatmaps = parsed.outlines[0], parsed.heatmaps[0]
    assert set(outlines) == set(heatmaps) and len(outlines) > 2
    for name, values in heatmaps.items():
        assert outlines[name]["solid"] == [tuple(named)], name
        magnitude = np.nan_to_num(np.abs(values), nan=np.inf)
        largest = [np.unravel_index(magnitude.argmax(), values.shape)] if magnitude.any() else []
        assert outlines[name]["dashed"] == [tuple(int(v) for v in c) for c in largest], name
    # the largest differences lie elsewhere than the named cell on some map, so the two are told apart
    assert any(o["dashed"] and o["dashed"] != o["solid"] for o in outlines.values())
    assert "outlined in black: the cell the report names; outlined dashed: each map&#x27;s largest |value|" in (
        page(report)
    )


def test_differences_all_within_tolerance_are_said_in_a_sentence_not_drawn(report):
    shown = report.pictures[0]
    agreeing = dataclasses.replace(
        shown,
        gradient={name: np.zeros_like(v) for name, v in shown.gradient.items()},
        terms={name: Term(t.oracle.copy(), t.oracle, t.tolerance) for name, t in shown.terms.items()},
    )
    text = page(dataclasses.replace(report, pictures=[agreeing]))
    assert Page(text).heatmaps == [{}]  # no gradient map, no term map
    assert GRADIENTS_AGREE.replace("'", "&#x27;") in text and TERMS_AGREE in text
    drawn = page(report)  # the same page with the differences: maps, no sentence
    assert "gradient:class scores" in drawn and "term:cls" in drawn
    assert GRADIENTS_AGREE.replace("'", "&#x27;") not in drawn and TERMS_AGREE not in drawn
