"""``--set KNOB=VALUE``: knobs parsed by their type, anything else refused with a reason."""

import pytest

from yolov1_loss.conformance.check import parse_overrides


def test_numbers_and_words():
    assert parse_overrides(["lambda_coord=3", "noobj_scope=cell", "iou_eps=0"]) == {
        "lambda_coord": 3.0,
        "noobj_scope": "cell",
        "iou_eps": 0.0,
    }


@pytest.mark.parametrize(
    "pair, message",
    [
        ("S=3", "expected KNOB=VALUE with KNOB one of"),
        ("lambda_coord", "expected KNOB=VALUE"),
        ("loss_scale=x", "loss_scale takes a number"),
    ],
)
def test_refused(pair, message):
    with pytest.raises(ValueError, match=message):
        parse_overrides([pair])
