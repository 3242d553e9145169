"""Blame by part of the loss (issue 17, item 4): which channels of which kind of cell differ from
the oracle, in words, never a term whose gradient matches.

Each loss is written here in torch (the project's paper loss with one thing changed) and run in
this process on a small grid; one check end to end asserts the report's first lines."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from yolov1_loss import LossSpec, YoloV1Loss, reference
from yolov1_loss.conformance.dialects.blame import FAMILY_GRADIENTS, NO_GRADIENT, closest_by_gradient, locate
from yolov1_loss.conformance.dialects.fitting import probe_sets
from yolov1_loss.conformance.mutants import MUTANTS
from yolov1_loss.conformance.user_loss.implementation import Implementation, fixed_dialect
from yolov1_loss.reference.loss import ious, split_cells

from .helpers import report, run, write

S, B, C = 4, 2, 3
PAPER = LossSpec(S=S, B=B, C=C)
_paper = YoloV1Loss(PAPER)


def _held_to(loss, spec: LossSpec = PAPER) -> Implementation:
    return fixed_dialect(loss, spec, name="loss under test")


def _objects(target):
    return target[..., C] == 1


def _paper_loss(pred, target):
    return _paper(pred, target).total


def test_a_loss_that_matches_has_nothing_to_blame():
    assert locate(_held_to(_paper_loss)) is None


def test_a_class_term_in_every_cell_is_blamed_on_the_empty_cells_class_scores():
    without_cls = YoloV1Loss(PAPER.replace(lambda_class=0.0))

    def loss(pred, target):
        return without_cls(pred, target).total + ((target[..., :C] - pred[..., :C]) ** 2).sum()

    found = locate(_held_to(loss))
    assert found.part == "the class scores of empty cells"
    assert found.line == (
        "the class scores of empty cells get a gradient: the class term is applied in every cell, "
        "the paper applies it only where an object is"
    )
    assert found.others == ()  # the object cells' class scores, and every other part, match
    assert "channel 'class " in found.where and "the oracle's 0" in found.where


def test_a_term_without_gradient_is_said_to_have_none_and_sized_per_object_cell():
    def loss(pred, target):  # 0.25 per object cell, from the target alone: no gradient
        return _paper_loss(pred, target) + 0.25 * _objects(target).sum()

    found = locate(_held_to(loss))
    assert found.part == NO_GRADIENT
    assert (
        found.line == "the difference has no gradient: a constant or detached extra term of about 0.25 per object cell"
    )


def _with_detached_iou_term(weight: float = 1.0, every_predictor: bool = False):
    """The paper's loss plus weight · Σ (1 − IoU)² over the object cells (the best IoU, or every
    predictor's), detached: values only."""

    def loss(pred, target):
        p, t = pred.detach().numpy(), target.detach().numpy()
        _, cells, _ = split_cells(p, t, PAPER)
        iou = ious(cells, PAPER)[0]
        extra = ((1 - iou) ** 2).sum() if every_predictor else ((1 - iou.max(axis=-1)) ** 2).sum()
        return _paper_loss(pred, target) + weight * float(extra)

    return loss


def test_a_detached_iou_term_is_not_blamed_on_coord_even_from_a_closest_dialect_it_misled():
    # Fitting values, such a term can pull the closest dialect's iou_frame and responsible off the
    # paper's; the gradients, which are the paper's, lead back to it, where every part matches.
    loss = _with_detached_iou_term()
    misled = PAPER.replace(iou_frame="raw", responsible="max_iou_else_min_rmse")
    assert closest_by_gradient(_held_to(loss, misled), probe_sets(S, B, C)[0]) == PAPER
    found = locate(_held_to(loss))
    assert found.part == NO_GRADIENT, found
    assert found.line.startswith("the difference has no gradient: a constant or detached extra term of about ")
    assert found.line.endswith(" per object cell")
    assert all(found.gradient_matches(family) for family in FAMILY_GRADIENTS)
    # Held to the misled dialect, the frame's gradients are what differs.
    assert locate(_held_to(loss, misled)).part != NO_GRADIENT


def test_knobs_the_gradients_cannot_tell_apart_are_the_nearest_known_dialects():
    # In float32, iou_eps = 1e-6 moves no gradient beyond its tolerance: the paper's 0 it is.
    loss = _with_detached_iou_term()
    float32 = dataclasses.replace(_held_to(loss, PAPER.replace(iou_eps=1e-6)), dtype="float32")
    assert closest_by_gradient(float32, probe_sets(S, B, C)[0]) == PAPER


def test_a_term_weighted_otherwise_is_given_as_a_multiple_of_the_oracles_gradient():
    triple_cls = YoloV1Loss(PAPER.replace(lambda_class=3.0))
    found = locate(_held_to(lambda pred, target: triple_cls(pred, target).total))
    assert found.part == "cls"
    assert found.line == (
        "the class scores of object cells get 3 times the oracle's gradient: cls (λ_class·Σ(q − p)²) weighs 3 "
        "times the dialect's"
    )


def test_a_missing_term_is_said_to_give_no_gradient():
    def loss(pred, target):  # the empty cells' confidences pay nothing
        confidences = pred[..., C::5][..., :B]
        empty = ~_objects(target)
        return _paper_loss(pred, target) - PAPER.lambda_noobj * (confidences**2).sum(-1)[empty].sum()

    found = locate(_held_to(loss))
    assert found.part == "noobj (empty cells)"
    assert found.line == (
        "the confidences of empty cells get no gradient: the empty cells' no-object term (λ_noobj·ĉ²) is "
        "missing, or detached"
    )


def test_a_stray_box_term_in_every_predictor_is_blamed_on_the_boxes_no_term_reads():
    def loss(pred, target):  # coord's centre term for every predictor of an object cell
        has = _objects(target)
        centres = torch.stack([pred[..., C + 5 * b + 1 : C + 5 * b + 3] for b in range(B)], dim=-2)
        extra = ((centres - target[..., None, C + 1 : C + 3]) ** 2).sum((-1, -2))[has].sum()
        return _paper_loss(pred, target) + extra

    found = locate(_held_to(loss))
    assert found.part == "the boxes of the other predictors"
    assert found.line.startswith("the boxes of the object cells' predictors that are not responsible get a gradient: ")
    assert "coord (centres)" in found.others  # the responsible one's centres pay it twice


def _mutant(name: str) -> Implementation:
    """A loss of the mutant zoo computing the paper's dialect but for its bug."""
    loss = MUTANTS[name].loss_class(PAPER)
    return _held_to(lambda pred, target: loss(pred, target)["total"])


def test_a_responsible_predictor_chosen_otherwise_is_said_so():
    found = locate(_mutant("responsible_by_confidence"))  # the most confident, not the highest IoU
    assert found.part == "the boxes of the other predictors"
    assert found.line == (
        "the boxes of the object cells' predictors that are not responsible get a gradient: another predictor than "
        "the oracle's is made responsible (the oracle's: the highest IoU with the target, in the dialect's IoU "
        "frame), and coord reaches that one"
    )


def test_a_responsible_predictor_that_pays_the_no_object_term_too_is_said_so():
    found = locate(_mutant("responsible_pays_noobj"))
    assert found.part == "obj"
    # λ_noobj·ĉ² more on the responsible predictor's confidence: 2·0.5·ĉ more gradient.
    assert found.line == (
        "the responsible predictors' confidences get an extra gradient, 1 times their value: they pay the no-object "
        "term too, the paper spares the responsible predictor (an extra 0.5·v²)"
    )


def test_without_gradients_the_term_probes_name_the_part():
    no_cls = PAPER.replace(lambda_class=0.0)

    def values(pred, target, spec):
        return reference.loss(pred, target, no_cls).total + float(((target[..., :C] - pred[..., :C]) ** 2).sum())

    impl = Implementation("numpy loss", values, framework="numpy", fixed_spec=PAPER)
    found = locate(impl)
    assert found.part == "the class scores and boxes of empty cells"
    assert found.line.startswith(
        "the values differ on the probes of the class scores and boxes of empty cells (no term reads them): "
    )


CLASS_TERM_IN_EVERY_CELL = """
    from yolov1_loss import LossSpec, YoloV1Loss
    _rest = YoloV1Loss(LossSpec(S=4, C=3, lambda_class=0.0))

    def loss(pred, target):
        return _rest(pred, target).total + ((target[..., :3] - pred[..., :3]) ** 2).sum()
"""


def test_the_report_opens_with_what_differs_and_every_failure_lies_there(tmp_path):
    impl = write(tmp_path, "losses.py", CLASS_TERM_IN_EVERY_CELL)
    out = tmp_path / "r.json"
    result = run("check", "--in-process", f"{impl}:loss", "--S", 4, "--C", 3, "--max-examples", 3, "--json", out)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[1].startswith("verdict: DIFFERS")
    assert lines[2] == (
        "what differs: the class scores of empty cells get a gradient: the class term is applied in every cell, "
        "the paper applies it only where an object is"
    )
    assert lines[3].startswith("  where: image ")
    # The term probes agree: every term matches on its own; the empty cells' class scores do not.
    assert "the class scores and boxes of empty cells (no term reads them): no dialect reproduces it" in result.stdout
    assert "noobj of empty cells: matches" in result.stdout
    found = report(out)
    assert found["blame"]["part"] == "the class scores of empty cells"
    assert found["failures"] and all(f["term"] == "the class scores of empty cells" for f in found["failures"])
    assert "the difference lies in noobj" not in result.stdout
    np.testing.assert_equal(found["blame"]["others"], [])


DETACHED_IOU_TERM = """
    from yolov1_loss import LossSpec, YoloV1Loss
    from yolov1_loss.reference.loss import ious, split_cells
    PAPER = LossSpec(S=4, C=3)
    _paper = YoloV1Loss(PAPER)

    def loss(pred, target):  # the paper's, plus 5 · Σ (1 − IoU)² over the object cells' predictors, detached
        _, cells, _ = split_cells(pred.detach().numpy(), target.detach().numpy(), PAPER)
        return _paper(pred, target).total + 5 * float(((1 - ious(cells, PAPER)[0]) ** 2).sum())
"""


def test_a_loss_with_a_term_without_gradient_is_held_to_the_dialect_of_its_gradients(tmp_path):
    # Its values fit paper with responsible='max_iou_else_min_rmse' and iou_eps=1e-06 best: knobs that
    # make up for the extra term, under which the (right) gradients would fail. Its gradients are the paper's.
    impl = write(tmp_path, "losses.py", DETACHED_IOU_TERM)
    out = tmp_path / "r.json"
    result = run("check", "--in-process", f"{impl}:loss", "--S", 4, "--C", 3, "--max-examples", 3, "--json", out)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[1] == "verdict: DIFFERS from every known dialect"
    assert lines[2].startswith("what differs: the difference has no gradient: a constant or detached extra term of ")
    assert "  the properties hold it to the closest, paper" in lines
    found = report(out)
    assert found["dialect"]["knobs"]["responsible"] == "max_iou" and found["dialect"]["knobs"]["iou_eps"] == 0.0
    assert found["properties"]["gradients_match_oracle"] == "passed"
    assert [f["property"] for f in found["failures"]] == ["values_match_oracle"]
    # The terms whose probes its extra term spoils say that their gradient matches, as the line above does.
    coord = next(line for line in lines if line.startswith("    coord (box centres and sizes): "))
    assert coord.startswith("    coord (box centres and sizes): no dialect reproduces it (relative residual ")
    assert coord.endswith("; its gradient matches: see what differs)")
    assert "    the class scores and boxes of empty cells (no term reads them): matches: reads none of them" in lines
