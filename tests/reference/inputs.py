"""Random inputs for the reference's own tests: seeded, smooth, and a margin away from kinks."""

from __future__ import annotations

import numpy as np

from yolov1_loss.reference import PRESETS, LossSpec
from yolov1_loss.reference.kinks import kink_margin
from yolov1_loss.reference.spec import CHOICES

# Finite differences use a step of 1e-6; points nearer a kink than this are redrawn.
KINK_MARGIN = 1e-3


def random_inputs(rng: np.random.Generator, spec: LossSpec, n_images: int = 2):
    """(pred, target) in the canonical layout, with objects in about half the cells.

    Target sizes lie in [0.05, 1]; half of the predicted boxes are the target box plus small
    noise (so IoUs are mostly nonzero and the obj term's IoU gradient is exercised), the rest
    are random. Predicted sizes are positive under wh_mode='sqrt' and signed otherwise.
    """
    S, B, C = spec.S, spec.B, spec.C
    target = np.zeros((n_images, S, S, C + 5))
    target[..., :C] = rng.uniform(size=(n_images, S, S, C))
    target[..., C] = rng.integers(0, 2, size=(n_images, S, S))
    target[0, 0, 0, C] = 1  # at least one object
    target[..., C + 1 : C + 3] = rng.uniform(size=(n_images, S, S, 2))
    target[..., C + 3 :] = rng.uniform(0.05, 1, size=(n_images, S, S, 2))

    boxes = np.empty((n_images, S, S, B, 5))
    boxes[..., 0] = rng.normal(0.5, 0.5, size=(n_images, S, S, B))
    near = target[..., None, C + 1 :] + rng.normal(0, 0.1, size=(n_images, S, S, B, 4))
    far = rng.uniform(-0.5, 1.5, size=(n_images, S, S, B, 4))
    boxes[..., 1:] = np.where(rng.uniform(size=(n_images, S, S, B, 1)) < 0.5, near, far)
    if spec.wh_mode == "sqrt_output":  # the network outputs √w: start from the root
        boxes[..., 3:] = np.sign(boxes[..., 3:]) * np.sqrt(np.abs(boxes[..., 3:]))
    if spec.wh_mode == "sqrt":
        boxes[..., 3:] = np.abs(boxes[..., 3:])
    pred = np.concatenate([rng.normal(size=(n_images, S, S, C)), boxes.reshape(n_images, S, S, 5 * B)], -1)
    return pred, target


def smooth_inputs(rng: np.random.Generator, spec: LossSpec, n_images: int = 2):
    """:func:`random_inputs`, redrawn until every object cell is ``KINK_MARGIN`` from any kink."""
    for _ in range(200):
        pred, target = random_inputs(rng, spec, n_images)
        if kink_margin(pred, target, spec) > KINK_MARGIN:
            return pred, target
    raise RuntimeError(f"no smooth point found for {spec}")


def random_spec(rng: np.random.Generator) -> LossSpec:
    """Every knob drawn at random, S, B, C small (1 included), weights and scale random."""
    knobs = {name: str(rng.choice(values)) for name, values in CHOICES.items()}
    return LossSpec(
        S=int(rng.choice([1, 2, 3])),
        B=int(rng.choice([1, 2, 3])),
        C=int(rng.choice([1, 2, 4])),
        iou_eps=float(rng.choice([0.0, 1e-6, 1e-3])),
        loss_scale=float(rng.uniform(0.1, 2)),
        lambda_coord=float(rng.uniform(0, 6)),
        lambda_obj=float(rng.uniform(0, 2)),
        lambda_noobj=float(rng.uniform(0, 1)),
        lambda_class=float(rng.uniform(0, 2)),
        lambda_noobj_object=float(rng.uniform(0, 2)),
        sqrt_clamp_eps=float(rng.choice([1e-6, 1e-2])),
        **knobs,
    )


def preset_specs(**grid) -> list[LossSpec]:
    return [LossSpec.preset(name, **grid) for name in PRESETS]
