"""The report's first lines name the cause a stranger would look for: a hint (another layout)
before any blame computed under the wrong one; a buggy loss held to the dialect the rest of it
computes, so that only its bug is blamed; a failure's part that fits its own cell; knobs set on
top of a known dialect said with their meanings. Each loss is written here, run in this process
(``--in-process``), and the report's words are asserted."""

from __future__ import annotations

from pathlib import Path

from yolov1_loss import LossSpec, YoloV1Loss
from yolov1_loss.conformance.dialects import catalogue, words
from yolov1_loss.conformance.dialects.blame import Blame, closest_by_gradient, part_shown
from yolov1_loss.conformance.dialects.fitting import probe_sets
from yolov1_loss.conformance.inputs.example import Recipe, build
from yolov1_loss.conformance.suite.failure import ConformanceFailure
from yolov1_loss.conformance.user_loss.implementation import fixed_dialect

from .helpers import report, run, write
from .test_verdict import first_lines, oracle_identified

# The paper's loss with wh_mode='sqrt' (the network outputs w), and a class term in every cell:
# the empty cells' class scores are pushed to the target's (0) too.
CLS_EVERYWHERE = """
    from yolov1_loss import LossSpec, YoloV1Loss

    S, B, C = {S}, 2, {C}
    _paper_sqrt = YoloV1Loss(LossSpec(S=S, B=B, C=C, wh_mode="sqrt"))


    def loss(pred, target):
        empty = target[..., C] == 0
        stray = ((pred[..., :C] - target[..., :C]) ** 2).sum(-1)[empty].sum()
        return _paper_sqrt(pred, target).total + stray
"""

# The same paper loss (wh_mode='sqrt') written for the boxes-first layout: per cell
# [(x, y, w, h, c) × B, p_1 … p_C], the target [(x, y, w, h, o) × B, q_1 … q_C].
BOXES_FIRST = """
    import torch
    from yolov1_loss import LossSpec, YoloV1Loss

    S, B, C = 4, 2, 3
    _paper_sqrt = YoloV1Loss(LossSpec(S=S, B=B, C=C, wh_mode="sqrt"))


    def loss(pred, target):
        boxes = pred[..., : 5 * B].reshape(*pred.shape[:-1], B, 5)
        boxes = torch.cat([boxes[..., 4:], boxes[..., :4]], dim=-1).flatten(-2)  # (c, x, y, w, h) × B
        canonical_target = torch.cat([target[..., -C:], target[..., 4:5], target[..., :4]], dim=-1)
        return _paper_sqrt(torch.cat([pred[..., 5 * B :], boxes], dim=-1), canonical_target).total
"""


def _check(tmp_path, source: str, *options):
    write(tmp_path, "losses.py", source)
    options = ("--in-process", "losses.py:loss", "--max-examples", 1, "--json", "r.json", *options)
    return run("check", *options, cwd=tmp_path), report(tmp_path / "r.json")


def _readme_sample(after: str) -> list[str]:
    """The lines of the README's first sample output after the words ``after``."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = text[text.index(after) :]
    block = block[block.index("```\n") + 4 :]
    return block[: block.index("```")].strip("\n").splitlines()


def test_a_loss_in_another_layout_is_told_so_right_after_the_verdict_and_nothing_is_blamed(tmp_path):
    result, found = _check(tmp_path, BOXES_FIRST, "--S", 4, "--C", 3)
    lines = result.stdout.splitlines()
    assert result.returncode == 1, result.stdout
    assert lines[1:4] == [
        "verdict: DIFFERS from every known dialect",
        "hint: called with --layout boxes-first, the loss runs and its values match paper with wh_mode='sqrt': "
        "its layout is probably boxes-first",
        "  try: yolov1-loss check losses.py:loss --layout boxes-first --S 4 --C 3",
    ]
    assert lines[: len(sample := _readme_sample("`BOXES_FIRST`), checked without"))] == sample
    # A blame computed under the layout checked would point elsewhere: none is made (a failure
    # still names the term of the element it shows), nor the term-by-term lines.
    assert lines[4].startswith("dialect: as checked, no dialect reproduces the values")
    assert "what differs:" not in result.stdout and "term by term" not in result.stdout
    assert found["blame"] is None
    assert found["hints"][0]["layout"] == "boxes-first" and found["hints"][0]["arguments"] is None


def test_the_cause_of_arguments_swapped_is_said_in_words():
    from yolov1_loss.conformance.dialects.hints import Hint

    swapped = Hint(
        "--args target,pred", "paper", "yolov1-loss check losses.py:loss --args target,pred", None, "target,pred"
    )
    assert swapped.cause() == "it probably takes its arguments as (target, pred)"
    both = swapped._replace(flags="--layout darknet --args target,pred", layout="darknet")
    assert both.cause() == "its layout is probably darknet and it takes its arguments as (target, pred)"


def test_a_class_term_in_every_cell_is_held_to_the_dialect_the_rest_computes_and_only_that_is_blamed(tmp_path):
    # At S = 7, C = 20 the stray class term pulls the fit of the values to ml_collection's knobs
    # (iou_frame='raw', conf_target='one'); the term-by-term fits and the gradients say the paper's.
    result, found = _check(tmp_path, CLS_EVERYWHERE.format(S=7, C=20))
    lines = result.stdout.splitlines()
    assert result.returncode == 1, result.stdout
    assert lines[1:3] == [
        "verdict: DIFFERS from every known dialect",
        "what differs: the class scores of empty cells get a gradient: the class term is applied in every cell, "
        "the paper applies it only where an object is",
    ]
    assert lines[3].startswith("  where: ") and not lines[4].startswith("  also differ:"), result.stdout
    assert "  the properties hold it to the closest, paper with wh_mode='sqrt'" in lines
    assert found["blame"]["others"] == []
    for failure in found["failures"]:  # only batches holding empty cells fail, and only there
        assert failure["term"] == "the class scores of empty cells", failure["message"]


S, B, C = 4, 2, 3


def test_the_closest_by_gradient_is_where_the_most_parts_agree_when_one_part_matches_no_dialect():
    paper_sqrt = LossSpec(S=S, B=B, C=C, wh_mode="sqrt")
    paper = YoloV1Loss(paper_sqrt)

    def loss(pred, target):
        empty = target[..., C] == 0
        return paper(pred, target).total + ((pred[..., :C] - target[..., :C]) ** 2).sum(-1)[empty].sum()

    misled = paper_sqrt.replace(iou_frame="raw", conf_target="one", noobj_scope="predictor")
    impl = fixed_dialect(loss, misled, name="loss under test")
    assert closest_by_gradient(impl, probe_sets(S, B, C)[0]) == paper_sqrt


def _failure(occupancy: str, **where) -> ConformanceFailure:
    example = build(Recipe(LossSpec(S=S, B=B, C=C), images=2, occupancy=occupancy, seed=0))
    return ConformanceFailure("values_match_oracle", "total differs", example=example, component="total", **where)


def test_a_failure_names_a_part_only_where_its_cell_holds_that_kind_of_cell():
    spec = LossSpec(S=S, B=B, C=C)
    empty_classes = Blame("the class scores of empty cells", "…", None, (), spec)
    # Every cell holds an object: the empty cells' class scores cannot be where it lies.
    assert part_shown(empty_classes, _failure("full", image=0, cell=(1, 2))) is None
    assert part_shown(empty_classes, _failure("full")) is None
    with_obj = empty_classes._replace(others=("obj",))
    assert part_shown(with_obj, _failure("full", image=0, cell=(1, 2))) == "obj"
    assert part_shown(with_obj, _failure("empty", image=1, cell=(0, 0))) == "the class scores of empty cells"
    # A failure that shows an element names that element's part.
    shown = _failure("empty", image=0, cell=(0, 1), channel="predictor 1 w")
    assert part_shown(with_obj, shown) == "the boxes of empty cells"


def test_a_failure_on_a_grid_with_no_empty_cell_is_not_blamed_on_the_empty_cells(tmp_path):
    # Held by name to a dialect it does not compute, the first part that differs is the empty
    # cells' class scores; a failure on a grid where every cell holds an object lies elsewhere.
    named = ("--dialect", "ml_collection", "--set", "noobj_scope=predictor", "--set", "wh_mode=sqrt")
    result, found = _check(tmp_path, CLS_EVERYWHERE.format(S=4, C=3), "--S", 4, "--C", 3, *named)
    assert result.returncode == 1, result.stdout
    assert found["blame"]["part"] == "the class scores of empty cells"
    full = [f for f in found["failures"] if f["message"].startswith("on every cell holding an object")]
    assert full, result.stdout
    for failure in full:
        assert failure["term"] != "the class scores of empty cells", failure


def test_knobs_set_on_top_of_a_known_dialect_are_said_with_their_meanings_not_its_description():
    identified = oracle_identified(LossSpec(S=S, B=B, C=C, wh_mode="sqrt"))
    lines, status = first_lines(identified, overrides={"wh_mode": "sqrt"})
    assert (status, lines[1]) == (0, "verdict: CONFORMS")
    assert lines[2] == "dialect: computes paper with wh_mode='sqrt' set, as --set asks"
    assert lines[3].startswith("  wh_mode='sqrt': the loss takes the square root of the predicted w and h")
    assert lines[3].endswith("(paper: 'sqrt_output')")
    assert "the network outputs √w and √h" not in "\n".join(lines)  # the paper's description, which --set contradicts
    # A knob set to the dialect's own value contradicts nothing: its description stays.
    paper = oracle_identified(LossSpec(S=S, B=B, C=C))
    lines, _ = first_lines(paper, overrides={"wh_mode": "sqrt_output"})
    assert lines[2].startswith("dialect: computes the same as paper: the paper's loss")


def test_which_knobs_change_values_only_under_another_is_one_fact_the_catalogues():
    assert not hasattr(words, "ONLY_UNDER")
    assert catalogue.ONLY_UNDER["lambda_noobj_object"] == ("noobj_scope", "own_weight")
    paper = LossSpec(S=S, B=B, C=C)
    assert words.changed_knobs(paper.replace(lambda_noobj_object=2.0), paper) == {}
    own = paper.replace(noobj_scope="own_weight", lambda_noobj_object=2.0)
    assert words.changed_knobs(own, paper) == {"noobj_scope": "own_weight", "lambda_noobj_object": 2.0}
