"""A loss that takes box lists, checked with the wrong --box-format or --class-column: the report
leads with a hint naming the option that fits, and the command with it (the rest kept)."""

import pytest

from yolov1_loss.conformance.check import CheckOptions, in_process, run_check
from yolov1_loss.conformance.encoding.box_targets import BoxTargets

# ArticlePadded takes (N, M, 5) rows [x1, y1, x2, y2, class] in pixels of a 448 × 448 image.
RIGHT = "--targets padded --box-format xyxy --class-column last --image-size 448,448"


def checked(box_format: str, class_column: str):
    targets = BoxTargets("padded", box_format, class_column, (448.0, 448.0))
    options = CheckOptions("tests.encoding.box_losses:ArticlePadded", S=4, B=2, C=3, dtype="float64", targets=targets)
    return run_check(in_process(options), options, max_examples=2)


@pytest.mark.parametrize(
    "box_format, class_column, flags, cause",
    [
        ("cxcywh", "last", "--box-format xyxy", "it probably takes its boxes as xyxy"),
        ("xyxy", "first", "--class-column last", "it probably takes its boxes with the class last"),
    ],
)
def test_a_wrong_box_option_is_named_by_the_hint_right_after_the_verdict(box_format, class_column, flags, cause):
    lines = checked(box_format, class_column).summary().splitlines()
    assert lines[2:4] == [
        f"hint: called with {flags}, the loss runs and its values match article: {cause}",
        f"  try: yolov1-loss check tests.encoding.box_losses:ArticlePadded --dtype float64 --S 4 --C 3 {RIGHT}",
    ]
