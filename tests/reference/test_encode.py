"""The oracle's encoder against grids worked out by hand from docs/spec.md, "Targets from boxes":
cell (⌊cy·S⌋, ⌊cx·S⌋), a centre at 1.0 in the last cell, offsets (cx·S − col, cy·S − row), sizes as
fractions of the image, and the duplicates policy."""

import numpy as np
import pytest

from yolov1_loss.reference import decode, encode, encode_batch

S, C = 4, 3


def cell(grid, row, col):
    """(class one-hot, o, x, y, w, h) of one cell, for comparisons."""
    return grid[row, col]


def expected(label, x, y, w, h):
    return np.array([*np.eye(C)[label], 1.0, x, y, w, h])


def occupied(grid):
    return {tuple(map(int, rc)) for rc in np.argwhere(grid[..., C] == 1)}


def test_an_object_in_each_corner_cell():
    boxes = [[0.1, 0.05, 0.2, 0.1], [0.9, 0.05, 0.3, 0.2], [0.05, 0.95, 0.1, 0.1], [0.95, 0.95, 0.5, 0.6]]
    grid = encode(boxes, [2, 0, 1, 2], S, C)
    assert grid.shape == (S, S, C + 5) and grid.dtype == np.float64
    assert occupied(grid) == {(0, 0), (0, 3), (3, 0), (3, 3)}
    # 0.1·4 = 0.4 in column 0; 0.9·4 = 3.6: column 3, offset 0.6; 0.95·4 = 3.8: row 3, offset 0.8
    np.testing.assert_allclose(cell(grid, 0, 0), expected(2, 0.4, 0.2, 0.2, 0.1), atol=1e-12)
    np.testing.assert_allclose(cell(grid, 0, 3), expected(0, 0.6, 0.2, 0.3, 0.2), atol=1e-12)
    np.testing.assert_allclose(cell(grid, 3, 0), expected(1, 0.2, 0.8, 0.1, 0.1), atol=1e-12)
    np.testing.assert_allclose(cell(grid, 3, 3), expected(2, 0.8, 0.8, 0.5, 0.6), atol=1e-12)
    assert not grid[grid[..., C] == 0].any()  # every other cell all zeros


def test_a_centre_on_a_cell_edge_belongs_to_the_cell_it_starts():
    grid = encode([[0.5, 0.25, 0.2, 0.2]], [1], S, C)  # 0.5·4 = 2: column 2; 0.25·4 = 1: row 1
    assert occupied(grid) == {(1, 2)}
    np.testing.assert_array_equal(cell(grid, 1, 2), expected(1, 0.0, 0.0, 0.2, 0.2))


def test_centres_at_0_and_at_1_belong_to_the_first_and_last_cells():
    grid = encode([[1.0, 1.0, 0.2, 0.2], [0.0, 1.0, 0.1, 0.1], [1.0, 0.0, 0.3, 0.3]], [0, 1, 2], S, C)
    assert occupied(grid) == {(3, 3), (3, 0), (0, 3)}
    np.testing.assert_array_equal(cell(grid, 3, 3), expected(0, 1.0, 1.0, 0.2, 0.2))  # 1·4 − 3
    np.testing.assert_array_equal(cell(grid, 3, 0), expected(1, 0.0, 1.0, 0.1, 0.1))
    np.testing.assert_array_equal(cell(grid, 0, 3), expected(2, 1.0, 0.0, 0.3, 0.3))


# Two centres in cell (0, 0): A is the smaller (area 0.04), B the larger (0.12).
A, B = [0.1, 0.1, 0.2, 0.2], [0.2, 0.15, 0.4, 0.3]
A_CELL, B_CELL = expected(0, 0.4, 0.4, 0.2, 0.2), expected(1, 0.8, 0.6, 0.4, 0.3)


@pytest.mark.parametrize(
    "boxes, labels, duplicates, cell_values",
    [
        ([A, B], [0, 1], "first", A_CELL),
        ([A, B], [0, 1], "last", B_CELL),
        ([A, B], [0, 1], "larger", B_CELL),
        ([B, A], [1, 0], "larger", B_CELL),
        ([B, A], [1, 0], "first", B_CELL),
        ([B, A], [1, 0], "last", A_CELL),
        ([A, A], [0, 1], "larger", A_CELL),  # equal areas: the first
    ],
)
def test_two_centres_in_one_cell_under_each_policy(boxes, labels, duplicates, cell_values):
    grid = encode(boxes, labels, S, C, duplicates=duplicates)
    assert occupied(grid) == {(0, 0)}
    np.testing.assert_allclose(cell(grid, 0, 0), cell_values, atol=1e-12)


def test_corners_in_pixels():
    # 640 × 480 image, box from (0, 0) to (160, 120): centre (80, 60) = (0.125, 0.125), size (0.25, 0.25)
    grid = encode([[0, 0, 160, 120]], [2], S, C, box_format="xyxy", image_size=(640, 480))
    np.testing.assert_allclose(cell(grid, 0, 0), expected(2, 0.5, 0.5, 0.25, 0.25), atol=1e-12)


def test_a_batch_and_an_image_without_boxes():
    grids = encode_batch([np.zeros((0, 4)), [[0.6, 0.3, 0.2, 0.2]]], [[], [1]], S, C)
    assert grids.shape == (2, S, S, C + 5)
    assert not grids[0].any() and occupied(grids[1]) == {(1, 2)}


def test_decode_gives_the_boxes_back():
    boxes = np.array([[0.1, 0.05, 0.2, 0.1], [1.0, 0.5, 0.3, 0.2]])
    got_boxes, got_labels = decode(encode(boxes, [2, 0], S, C))
    np.testing.assert_allclose(got_boxes, boxes, atol=1e-12)  # cells (0, 0) then (2, 3): the same order
    np.testing.assert_array_equal(got_labels, [2, 0])
    xyxy, _ = decode(encode(boxes, [2, 0], S, C), box_format="xyxy", image_size=(100, 200))
    np.testing.assert_allclose(xyxy[0], [0.0, 0.0, 20.0, 20.0], atol=1e-9)


@pytest.mark.parametrize(
    "box, label, says",
    [
        ([1.2, 0.5, 0.1, 0.1], 0, "image 3, box 1 (1.2, 0.5, 0.1, 0.1): its centre (1.2, 0.5) lies outside the image"),
        ([0.5, 0.5, -0.1, 0.1], 0, "image 3, box 1 (0.5, 0.5, -0.1, 0.1): negative size"),
        ([0.5, 0.5, 0.1, 0.1], 3, "image 3, box 1 (0.5, 0.5, 0.1, 0.1): class 3.0 is not an integer from 0 to 2"),
        ([0.5, np.nan, 0.1, 0.1], 0, "image 3, box 1 (0.5, nan, 0.1, 0.1): values must be finite"),
    ],
)
def test_refused_boxes_are_named(box, label, says):
    with pytest.raises(ValueError) as raised:
        encode([[0.5, 0.5, 0.2, 0.2], box], [1, label], S, C, image=3)
    assert str(raised.value).startswith(says)
