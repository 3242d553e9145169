"""The channels-first layout, (N, C + 5B, S, S) as a convolutional head gives it: where each value
lies, a loss written for it checked with ``--layout channels-first``, and the hint that names the
layout when such a loss is checked in the default one (issue 17, item 9)."""

from __future__ import annotations

import numpy as np

from yolov1_loss import reference

from .helpers import run, write

S, B, C = 3, 2, 2

CHANNELS_FIRST_LOSS = """
    from yolov1_loss import LossSpec, YoloV1Loss
    _paper = YoloV1Loss(LossSpec(S=3, B=2, C=2))

    def loss(pred, target):
        # pred (N, C + 5B, S, S), target (N, C + 5, S, S), as a convolutional head and its encoder give them
        return _paper(pred.permute(0, 2, 3, 1), target.permute(0, 2, 3, 1)).total
"""


def test_channels_first_puts_channel_k_of_cell_i_j_at_n_k_i_j():
    rng = np.random.default_rng(0)
    pred = rng.normal(size=(2, S, S, C + 5 * B))
    target = rng.normal(size=(2, S, S, C + 5))
    moved = reference.pred_from_canonical(pred, "channels-first", S, B, C)
    moved_target = reference.target_from_canonical(target, "channels-first", S, B, C)
    assert moved.shape == (2, C + 5 * B, S, S) and moved_target.shape == (2, C + 5, S, S)
    assert moved[1, C + 5 + 3, 2, 0] == pred[1, 2, 0, C + 5 + 3]  # image 1, cell (2, 0), predictor 1's w
    assert moved_target[0, C, 1, 2] == target[0, 1, 2, C]  # image 0, cell (1, 2), objectness
    np.testing.assert_array_equal(reference.pred_to_canonical(moved, "channels-first", S, B, C), pred)
    np.testing.assert_array_equal(reference.target_to_canonical(moved_target, "channels-first", S, B, C), target)


def test_a_channels_first_loss_conforms_under_its_layout_and_is_hinted_at_under_the_default(tmp_path):
    impl = write(tmp_path, "losses.py", CHANNELS_FIRST_LOSS)
    grid = ("--S", S, "--B", B, "--C", C)
    right = run("check", "--in-process", f"{impl}:loss", "--layout", "channels-first", *grid, "--max-examples", 3)
    assert right.stdout.splitlines()[1] == "verdict: CONFORMS", right.stdout
    assert right.returncode == 0
    default = run("check", "--in-process", f"{impl}:loss", *grid, "--max-examples", 3)
    assert default.returncode != 0
    lines = default.stdout.splitlines()
    assert lines[2].startswith("hint: called with --layout channels-first, the loss runs"), default.stdout
    assert lines[2].endswith(": its layout is probably channels-first")
    # The command to try is the check's own, its grid kept, in the layout that fits.
    assert lines[3] == f"  try: yolov1-loss check {impl}:loss --layout channels-first --S 3 --C 2"
