"""The pytest-benchmark suite's cases: quick mode (the CI default) or the full sweep.

Quick mode runs every contender on tiny batches for a few rounds, so that plain
``python -m pytest`` keeps the suite working in CI in seconds; its torch.compile contenders use
the aot_eager backend (forward and backward traced, no code generated), since inductor spends
several seconds compiling each shape. Full mode (``--bench-full``) runs the issue's whole sweep
with inductor, on the GPU when there is one.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from yolov1_loss.benchmarks import sweep
from yolov1_loss.benchmarks.contenders import MODES, project_contenders

QUICK_ROUNDS = 3
QUICK_WARMUP = 1

# (n, S, B, dtype, modes, device) of quick mode; the CUDA one is skipped, with its reason, without a GPU.
QUICK_CONFIGURATIONS = (
    (2, 7, 2, "float32", MODES, "cpu"),
    (2, 3, 3, "bfloat16", ("forward+backward",), "cpu"),
    (2, 7, 2, "float32", ("forward+backward",), "cuda"),
)


class Case(NamedTuple):
    """One benchmark: a contender (by name) on one batch configuration, in one mode."""

    contender: str
    n: int
    S: int
    B: int
    dtype: str
    mode: str
    device: str

    def __str__(self) -> str:
        return f"{self.contender}-{self.mode}-N{self.n}-S{self.S}-B{self.B}-{self.dtype}-{self.device}"


def compile_backend(full: bool) -> str:
    return "inductor" if full else "aot_eager"


def full_configurations():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    grid = sweep.for_device(sweep.FULL, device)
    return [(*configuration, grid.modes, device) for configuration in sweep.configurations(grid)]


def cases(full: bool) -> list[Case]:
    """Cases in the order they run: configuration by configuration, contender by contender, mode by mode.

    That order keeps each compiled contender's compile in use until its last mode has run.
    """
    names = [c.name for c in project_contenders(compile_backend(full))]
    configurations = full_configurations() if full else QUICK_CONFIGURATIONS
    return [
        Case(name, n, S, B, dtype, mode, device)
        for n, S, B, dtype, modes, device in configurations
        for name in names
        for mode in modes
    ]
