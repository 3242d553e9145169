"""The naive baseline computes the ml_collection dialect exactly: values and gradients against the oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yolov1_loss import reference
from yolov1_loss.benchmarks.inputs import make_batch
from yolov1_loss.benchmarks.naive import check_dialect, naive_loss
from yolov1_loss.reference import LossSpec


@pytest.mark.parametrize("S, B, C", [(7, 2, 20), (1, 1, 1), (4, 3, 5), (14, 3, 20), (3, 4, 2)])
def test_naive_matches_the_oracle_in_float64(S, B, C):
    spec = LossSpec.preset("ml_collection", S=S, B=B, C=C, lambda_obj=2.0, lambda_class=0.7)
    pred, target = make_batch(spec, 3, seed=S + B + C, dtype=torch.float64)
    leaf = pred.clone().requires_grad_()
    total = naive_loss(leaf, target, spec)
    total.backward()
    parts, grads = reference.loss_and_grad(pred.numpy(), target.numpy(), spec)
    # Same formula, both in float64: they differ only by rounding and summation order.
    assert total.item() == pytest.approx(parts.total, rel=1e-12)
    np.testing.assert_allclose(leaf.grad.numpy(), grads.total, rtol=1e-10, atol=1e-12)


def test_naive_takes_flat_inputs():
    spec = LossSpec.preset("ml_collection")
    pred, target = make_batch(spec, 2, dtype=torch.float64)
    flat = naive_loss(pred.reshape(2, -1), target.reshape(2, -1), spec)
    assert flat.item() == naive_loss(pred, target, spec).item()


def test_naive_breaks_ties_to_the_first_predictor_like_the_oracle():
    spec = LossSpec.preset("ml_collection", S=1, B=2, C=1)
    pred, target = make_batch(spec, 1, dtype=torch.float64)
    pred[..., 6:11] = pred[..., 1:6]  # predictor 1 = predictor 0: equal IoUs
    pred[..., 6] = 0.3  # but another confidence, so the choice shows in the total
    target[..., 1] = 1  # an object in the only cell
    target[..., 2:6] = torch.tensor([0.5, 0.5, 0.4, 0.4], dtype=torch.float64)
    assert naive_loss(pred, target, spec).item() == pytest.approx(
        reference.loss(pred.numpy(), target.numpy(), spec).total, rel=1e-12
    )


@pytest.mark.parametrize("preset", ["paper", "darknet", "article", "motokimura"])
def test_other_dialects_are_refused_with_the_knobs_that_differ(preset):
    with pytest.raises(ValueError, match=r"only the 'ml_collection' dialect; this spec differs in \[.*'"):
        check_dialect(LossSpec.preset(preset))


def test_the_ml_collection_dialect_with_any_weights_and_grid_is_accepted():
    check_dialect(LossSpec.preset("ml_collection", S=3, B=4, C=2, lambda_coord=1.0))
