"""check --html: the page of a known mutant's check, read back. The mutant adds the class term
in every cell (``class_loss_on_empty_cells``): by its definition, its cls differs from the
oracle's by Σ_k (q_k − p_k)² in each empty cell and by nothing in object cells, and the
gradient of its total by −2(q − p) on the class scores of empty cells alone."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.check.helpers import run, write
from tests.reports.html_pages import Page, failure_report, network_references, reproduced_example
from yolov1_loss.conformance.inputs.example import Recipe, build
from yolov1_loss.conformance.mutants import MUTANTS, correct_torch_loss
from yolov1_loss.conformance.reports.check_report import CheckReport
from yolov1_loss.conformance.reports.html.evidence import picture
from yolov1_loss.conformance.reports.html.page import page
from yolov1_loss.conformance.suite.comparison import oracle_responsible
from yolov1_loss.conformance.user_loss.implementation import Implementation
from yolov1_loss.reference import LossSpec

MUTANT_LOSS = """
    from yolov1_loss.conformance.mutants import MUTANTS
    from yolov1_loss.reference import LossSpec

    _loss = MUTANTS["{name}"].loss_class(LossSpec(S={S}))

    def loss(pred, target):
        return _loss(pred, target)
"""


def mutant_page(tmp_path, name: str, S: int = 7) -> tuple:
    """(the exit status of check --html on the mutant held to the paper, the page's text)."""
    path = write(tmp_path, "wrong.py", MUTANT_LOSS.format(name=name, S=S))
    html = tmp_path / "report.html"
    checked = run("check", f"{path}:loss", "--in-process", "--dialect", "paper", "--dtype", "float64",
                  "--S", S, "--max-examples", 5, "--html", html)  # fmt: skip
    return checked.returncode, html.read_text()


@pytest.fixture(scope="module")
def classes_everywhere(tmp_path_factory):
    return mutant_page(tmp_path_factory.mktemp("html"), "class_loss_on_empty_cells")


def test_the_page_parses_and_says_the_verdict_in_the_text_reports_words(classes_everywhere):
    status, text = classes_everywhere
    assert status == 1
    parsed = Page(text)  # raises where an element closes out of order
    assert "verdict: DIFFERS from the dialect named" in text
    assert "dialect: paper, as named" in text
    assert 'values_match_oracle</td><td class="failed">failed' in text
    assert len(parsed.grids) == len(parsed.heatmaps) >= 1


def assert_heatmaps_show_the_class_term_in_empty_cells(heatmaps: dict, ex, image: int) -> None:
    """The heatmaps of ``class_loss_on_empty_cells`` on image ``image`` of ``ex``, against the
    mutant's definition: cls off by Σ_k (q_k − p_k)² in empty cells, no other term off; the
    gradient off by 2(p − q) on the class scores of empty cells alone."""
    p, q = ex.pred[image, ..., : ex.spec.C], ex.target[image, ..., : ex.spec.C]
    empty = ~ex.has_object[image]
    extra = np.where(empty, ((q - p) ** 2).sum(axis=-1), 0.0)
    np.testing.assert_allclose(heatmaps["term:cls"], extra, rtol=1e-9, atol=0)
    assert ((heatmaps["term:cls"] != 0) == (extra != 0)).all()
    np.testing.assert_allclose(heatmaps["term:total"], extra, rtol=1e-9, atol=0)  # λ_class = 1
    for term in ("coord", "obj", "noobj"):
        assert not heatmaps[f"term:{term}"].any(), term
    d = 2 * (p - q) * empty[..., None]
    furthest = np.take_along_axis(d, np.abs(d).argmax(axis=-1)[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(heatmaps["gradient:class scores"], furthest, rtol=1e-9, atol=0)
    others = [v for name, v in heatmaps.items() if name.startswith("gradient:") and "class" not in name]
    assert len(others) == 2 * ex.spec.B and not any(v.any() for v in others)


def test_the_broken_terms_heatmap_is_non_zero_exactly_in_the_cells_it_breaks():
    report, ex = failure_report("class_loss_on_empty_cells", S=7, prop="gradients_match_oracle")
    parsed = Page(page(report))
    empty = ~ex.has_object[0]
    assert empty.any() and (~empty).any()  # cells it breaks and cells it leaves alone
    assert parsed.images == [0]
    assert_heatmaps_show_the_class_term_in_empty_cells(parsed.heatmaps[0], ex, 0)
    assert {cell for cell, has in parsed.grids[0].items() if has} == set(zip(*np.nonzero(~empty)))


def test_the_checks_page_draws_each_failing_example(classes_everywhere):
    parsed = Page(classes_everywhere[1])
    assert len(parsed.heatmaps) >= 2  # (values and gradients fail)
    for k, (heatmaps, image) in enumerate(zip(parsed.heatmaps, parsed.images)):
        ex = reproduced_example(parsed.pres[f"repro-{k}"])
        assert_heatmaps_show_the_class_term_in_empty_cells(heatmaps, ex, image)
        assert {cell for cell, has in parsed.grids[k].items() if has} == set(zip(*np.nonzero(ex.has_object[image])))


def test_the_page_holds_no_reference_to_a_network_resource(classes_everywhere):
    assert network_references(classes_everywhere[1]) == []
    assert network_references('<img src="x.png"> <a href="https://example.org">') != []  # the search finds them


def test_a_loss_that_gives_only_a_total_says_so_and_shows_the_total():
    spec = LossSpec(S=3, B=2, C=2)
    only_total = Implementation(
        name="total only",
        loss=lambda pred, target, s: MUTANTS["class_loss_on_empty_cells"].loss_class(s)(pred, target)["total"],
    )
    shown = picture(only_total, build(Recipe(spec, seed=1)), 0, "one example")
    assert not shown.exposes_terms
    assert any("only a total" in note for note in shown.notes)
    assert shown.terms["total"].loss is not None and shown.terms["cls"].loss is None


def test_a_conforming_loss_shows_its_terms_beside_the_oracles(tmp_path):
    spec = LossSpec(S=3, B=2, C=2)
    report = CheckReport("correct", "conforms", spec=spec)
    report.pictures = [picture(correct_torch_loss(), build(Recipe(spec, seed=2)), 0, "one example")]
    heatmaps = Page(page(report)).heatmaps[0]
    ex = build(Recipe(spec, seed=2))
    has = ex.has_object[0]
    assert has.any() and (~has).any()
    p, q = ex.pred[0, ..., :2], ex.target[0, ..., :2]
    np.testing.assert_allclose(heatmaps["cls (the oracle)"], np.where(has, ((q - p) ** 2).sum(-1), 0.0), rtol=1e-12)
    for term in ("coord", "obj", "noobj", "cls", "total"):
        np.testing.assert_allclose(
            heatmaps[f"{term} (the loss)"], heatmaps[f"{term} (the oracle)"], rtol=1e-12, atol=1e-15
        )


def test_the_plugin_writes_the_page_of_the_properties_it_ran(pytester):
    pytester.makepyfile(losses=MUTANT_LOSS.format(name="class_loss_on_empty_cells", S=7).replace("\n    ", "\n"))
    html = pytester.path / "report.html"
    result = pytester.runpytest(
        "--yolov1-in-process", "--yolov1-impl=losses.py:loss", "--yolov1-dialect=paper", "--yolov1-dtype=float64",
        f"--yolov1-html={html}", "-k", "values_match_oracle", "--hypothesis-profile", "yolov1-dev",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    text = html.read_text()
    parsed = Page(text)
    assert "verdict: DIFFERS from the dialect named" in text
    assert 'values_match_oracle</td><td class="failed">failed' in text
    assert len(parsed.heatmaps) == 1 and parsed.heatmaps[0]["term:cls"].any()


def test_html_with_vectors_is_refused_in_one_line(tmp_path):
    refused = run("check", "x.py:loss", "--vectors", tmp_path, "--html", tmp_path / "r.html")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "yolov1-loss check: --html draws the properties' examples; it does not go with --vectors, which replays stored ones"
    ]


def test_the_grid_circles_the_cells_where_the_loss_makes_another_predictor_responsible():
    # responsible_by_confidence makes the most confident predictor responsible
    report, ex = failure_report("responsible_by_confidence", S=7, prop="gradients_match_oracle")
    has = ex.has_object[0]
    confident = ex.pred[0, ..., ex.spec.C :: 5].argmax(axis=-1)  # each cell's confidences, one per predictor
    oracles = oracle_responsible(ex)[0]
    expected = {(i, j, int(confident[i, j])) for i, j in zip(*np.nonzero(has & (confident != oracles)))}
    assert expected
    assert set(Page(page(report)).loss_responsible) == expected


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_page_the_disk_refuses_after_the_run_is_one_line_and_exit_2(tmp_path):
    # /dev/full passes the check made before the run (it opens for appending) and refuses every write
    path = write(tmp_path, "raises.py", "def loss(pred, target):\n    raise RuntimeError('no')\n")
    checked = run("check", f"{path}:loss", "--in-process", "--html", "/dev/full")
    assert checked.returncode == 2
    assert checked.stderr.strip().splitlines()[-1] == (
        "yolov1-loss check: --html /dev/full: not written: No space left on device"
    )
