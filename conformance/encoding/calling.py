"""An encoder called as its users call it: ``encoder(boxes, labels)`` on one image's (M, 4) boxes and
(M,) labels (or, batched, on lists of them), as torch tensors or NumPy arrays; its grid, in any
layout ``check`` knows, back in the canonical one as float64. Runs where the encoder is loaded:
in the loss's worker process (:mod:`yolov1_loss.conformance.user_loss.worker`), or here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from yolov1_loss.conformance.user_loss.implementation import ImplementationError, users_line
from yolov1_loss.reference import target_to_canonical


@dataclass(frozen=True)
class EncoderCall:
    """How the encoder is called: ``framework`` ('torch' or 'numpy') and ``dtype`` of the boxes
    (labels are int64), ``batch``: lists of images in, a batch of grids out; the grid's
    ``layout`` on the grid S, B (boxes-first repeats the box B times), C."""

    S: int
    B: int
    C: int
    layout: str = "classes-first"
    framework: str = "torch"
    dtype: str = "float32"
    batch: bool = False


def _inputs(call: EncoderCall, boxes: list, labels: list):
    if call.framework == "torch":
        import torch

        boxes = [torch.tensor(b, dtype=getattr(torch, call.dtype)) for b in boxes]
        labels = [torch.tensor(ls, dtype=torch.int64) for ls in labels]
    else:
        boxes = [np.asarray(b, dtype=call.dtype) for b in boxes]
        labels = [np.asarray(ls, dtype=np.int64) for ls in labels]
    return (boxes, labels) if call.batch else (boxes[0], labels[0])


def output_as_array(grid) -> np.ndarray:
    if hasattr(grid, "detach"):
        grid = grid.detach().cpu().double()
    return np.asarray(grid, dtype=np.float64)


def call_encoder(encoder, call: EncoderCall, boxes: list, labels: list) -> np.ndarray:
    """(N, S, S, C + 5) canonical float64: the grids ``encoder`` makes of N images' boxes (N = 1
    unless ``call.batch``). Raises ImplementationError ('forward' where it raised, 'output' where
    what it returned is not a grid of the layout)."""
    try:
        grid = encoder(*_inputs(call, boxes, labels))
    except Exception as err:  # the report quotes whatever the user's code raised
        import traceback

        where = users_line(traceback.extract_tb(err.__traceback__))
        raise ImplementationError("forward", f"{type(err).__name__}: {err}{where}") from err
    try:
        grid = output_as_array(grid)
        grid = grid if call.batch else grid[None]
        return np.asarray(target_to_canonical(grid, call.layout, call.S, call.B, call.C), dtype=np.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ImplementationError(
            "output", f"not a grid target of the {call.layout} layout at S={call.S}, C={call.C}: {err}"
        ) from None
