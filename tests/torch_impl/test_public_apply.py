"""The fused path on a torch without the private names its shortcut past ``FusedLoss.apply``
takes: the public ``FusedLoss.apply`` is used instead, with the same values and gradients.

Tolerance and inputs as in test_reference_float64 (1e-10 relative, float64).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yolov1_loss import reference
from yolov1_loss.reference import LossSpec
from yolov1_loss.torch_impl import fused

from ..reference.inputs import random_inputs
from .helpers import assert_matches_reference, values_and_grads

TOL = 1e-10
PRIVATE = [
    (torch._C, "_FunctionBase"),
    (torch._C._functorch, "unwrap_if_dead"),
    (torch._C, "_are_functorch_transforms_active"),
]


def test_this_torch_takes_the_shortcut():
    assert fused._apply != fused.FusedLoss.apply  # (else the test below would not test a fallback)


@pytest.mark.parametrize("owner, name", PRIVATE, ids=[name for _, name in PRIVATE])
def test_without_a_private_name_the_public_apply_gives_the_oracles_values_and_gradients(monkeypatch, owner, name):
    with monkeypatch.context() as torch_without_it:  # (only while the path is chosen: torch's own
        torch_without_it.delattr(owner, name)  # apply reads _are_functorch_transforms_active)
        chosen = fused._choose_apply()
    assert chosen == fused.FusedLoss.apply
    calls = []
    monkeypatch.setattr(fused, "_apply", lambda *args: calls.append(args) or chosen(*args))
    spec = LossSpec.preset("article", S=3, B=2, C=4)
    pred, target = random_inputs(np.random.default_rng(7), spec, n_images=2)
    values, grads = values_and_grads(("fused", "cpu"), pred, target, spec)
    assert calls, "fused_loss did not go through the chosen apply"
    assert_matches_reference(values, grads, *reference.loss_and_grad(pred, target, spec), TOL)
