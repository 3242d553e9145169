"""``yolov1_loss.encode`` (torch, batched) held to the oracle's encoder: the same grids on the box
hard cases and on boxes Hypothesis draws, for every duplicates policy and box format."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from yolov1_loss import encode
from yolov1_loss.conformance.encoding.cases import box_cases
from yolov1_loss.reference import encode_batch
from yolov1_loss.reference.encode import DUPLICATES, from_fractions

DEVICES = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def padded(images, fill=-1):
    """Per-image (M_i, 4) boxes and (M_i,) labels → (N, M, 4) and (N, M) tensors, labels padded with ``fill``."""
    M = max([len(b) for b, _ in images] + [1])
    boxes = np.zeros((len(images), M, 4))
    labels = np.full((len(images), M), fill)
    for n, (b, ls) in enumerate(images):
        boxes[n, : len(b)], labels[n, : len(ls)] = b, ls
    return torch.tensor(boxes), torch.tensor(labels)


def assert_same(images, S, C, device="cpu", **options):
    boxes, labels = padded(images)
    got = encode(boxes.to(device), labels.to(device), S, C, **options)
    assert got.device.type == device and got.dtype == torch.float64
    expected = encode_batch([b for b, _ in images], [ls for _, ls in images], S, C, **options)
    np.testing.assert_allclose(got.cpu().numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("duplicates", DUPLICATES)
def test_the_hard_cases_in_one_batch(duplicates, device):
    cases = box_cases(7, 20)
    assert_same([(c.boxes, c.labels) for c in cases], 7, 20, device, duplicates=duplicates)


def test_corners_in_pixels_and_one_image():
    cases = box_cases(5, 3)
    images = [(from_fractions(c.boxes, "xyxy", (640, 480)), c.labels) for c in cases]
    assert_same(images, 5, 3, box_format="xyxy", image_size=(640, 480))
    single = encode(torch.tensor(cases[1].boxes), torch.tensor(cases[1].labels), 5, 3)
    assert single.shape == (5, 5, 8)


centres = st.sampled_from([0.0, 1.0, 0.5, 0.25]) | st.floats(0, 1)
box = st.tuples(centres, centres, st.floats(0, 1), st.floats(0, 1))
image = st.lists(st.tuples(box, st.integers(0, 2)), max_size=6)


@settings(max_examples=40, deadline=None)
@given(images=st.lists(image, max_size=3), duplicates=st.sampled_from(DUPLICATES), S=st.integers(1, 4))
def test_drawn_boxes(images, duplicates, S):
    images = [(np.array([b for b, _ in im]).reshape(-1, 4), np.array([k for _, k in im], dtype=int)) for im in images]
    if images:
        assert_same(images, S, 3, duplicates=duplicates)


def test_validate_refuses_what_the_oracle_refuses():
    with pytest.raises(ValueError, match=r"image 1, box 0 \(1.5, 0.5, 0.1, 0.1\): its centre"):
        boxes = torch.tensor([[[0.5, 0.5, 0.1, 0.1]], [[1.5, 0.5, 0.1, 0.1]]], dtype=torch.float64)
        encode(boxes, torch.tensor([[0], [1]]), 4, 3, validate=True)
