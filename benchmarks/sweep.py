"""The sweep: every contender on every case of a grid, each checked against the oracle before it is timed."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from yolov1_loss.benchmarks.contenders import (
    MODES,
    Contender,
    difference,
    disagreement,
    in_worker_first_call,
    in_worker_timing,
    oracle,
    steps,
)
from yolov1_loss.benchmarks.inputs import make_batch
from yolov1_loss.benchmarks.timing import (
    ROUNDS_BUDGET_S,
    Timing,
    copy_bandwidth,
    count_launches,
    measure,
    peak_extra_bytes,
)
from yolov1_loss.conformance.user_loss.implementation import ImplementationError
from yolov1_loss.reference import LossSpec

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class Grid:
    """The cases of a sweep: every combination of batch size, S, B, dtype and mode."""

    batch_sizes: tuple[int, ...]
    grid_sides: tuple[int, ...] = (7,)
    predictors: tuple[int, ...] = (2,)
    dtypes: tuple[str, ...] = ("float32",)
    modes: tuple[str, ...] = ("forward+backward",)
    C: int = 20


# The sweep; N = 65536 only on a GPU.
FULL = Grid((1, 8, 64, 512, 4096), (7, 14), (2, 3), ("float32", "bfloat16"), MODES)
DEFAULT = Grid((1, 8, 64, 512))
QUICK = Grid((1, 64))
GPU_ONLY_BATCH_SIZES = (65536,)


def for_device(grid: Grid, device: str) -> Grid:
    """The grid, with the GPU-only batch sizes added on a CUDA device."""
    if torch.device(device).type != "cuda":
        return grid
    return dataclasses.replace(grid, batch_sizes=grid.batch_sizes + GPU_ONLY_BATCH_SIZES)


@dataclass
class Result:
    """One contender on one case: its timing, or why it was not timed."""

    contender: str
    mode: str
    n: int
    S: int
    B: int
    C: int
    dtype: str
    device: str
    timing: Timing | None = None
    first_call_s: float | None = None  # the agreement check's call: includes any compile
    skipped: str | None = None  # why the contender does not run this case (not a fault)
    fault: str | None = None  # why it was not timed though it should run: it raised, or differs from the oracle
    cuda: dict = field(default_factory=dict)  # launches, peak memory, bandwidth

    @property
    def why_not_timed(self) -> str | None:
        return self.fault or self.skipped

    @property
    def images_per_s(self) -> float | None:
        return self.n / self.timing.median_s if self.timing else None

    def as_dict(self) -> dict:
        return {**asdict(self), "images_per_s": self.images_per_s}


def configurations(grid: Grid):
    """(n, S, B, dtype name) for every batch configuration of the grid, batch size varying fastest."""
    for S in grid.grid_sides:
        for B in grid.predictors:
            for dtype in grid.dtypes:
                for n in grid.batch_sizes:
                    yield n, S, B, dtype


def required_bytes(pred: torch.Tensor, target: torch.Tensor, mode: str) -> int:
    """Bytes a step must move at the least: read prediction and target (forward), write the gradient (backward)."""
    reads = pred.numel() * pred.element_size() + target.numel() * target.element_size()
    writes = pred.numel() * pred.element_size()
    return {"forward": reads, "backward": writes, "forward+backward": reads + writes}[mode]


def cuda_measures(step, setup, pred, target, mode: str, timing: Timing, copy_bytes_per_s: float) -> dict:
    """Launches per step, peak memory beside the inputs, and achieved bandwidth against the copy bandwidth."""
    moved = required_bytes(pred, target, mode)
    return {
        "launches": count_launches(step, setup),
        "peak_extra_bytes": peak_extra_bytes(step, setup),
        "gradient_bytes": pred.numel() * pred.element_size(),
        "bytes_per_s": moved / timing.median_s,
        "fraction_of_copy_bandwidth": moved / timing.median_s / copy_bytes_per_s,
    }


def first_call(contender: Contender, spec: LossSpec, pred, target, expected):
    """Build the contender and compare it with the oracle: (fn, seconds of that first call, its fault or None)."""
    start = time.perf_counter()
    try:
        fn = contender.build(spec)
        differs = disagreement(contender, fn, pred, target, spec, expected)
    except Exception as err:  # a user's loss may raise anything; the table reports it
        return None, None, f"raised {type(err).__name__}: {err}"
    seconds = time.perf_counter() - start
    return fn, seconds, (f"differs from the oracle: {differs}" if differs else None)


def run_configuration(
    contenders,
    spec: LossSpec,
    n: int,
    dtype: str,
    device: str,
    modes,
    *,
    budget_s: float = ROUNDS_BUDGET_S,
    copy_bytes_per_s: float | None = None,
) -> list[Result]:
    """Check every contender against the oracle on one batch, then time those that agree, mode by mode.

    ``copy_bytes_per_s``: on CUDA, the device's measured copy bandwidth (adds launches, memory, bandwidth).
    """
    pred, target = make_batch(spec, n, dtype=DTYPES[dtype], device=device)
    expected = {spec: oracle(pred, target, spec)}
    results = []
    for contender in contenders:
        own = contender.spec_for(spec)
        if own not in expected:
            expected[own] = oracle(pred, target, own)
        if contender.worker is not None:
            results += in_worker_results(
                contender, own, n, dtype, device, modes, expected[own], budget_s, copy_bytes_per_s
            )
            continue
        refusals = {mode: contender.refuses(own, device, DTYPES[dtype], mode) for mode in modes}
        fn, first_call_s, fault = None, None, None
        if not all(refusals.values()):
            fn, first_call_s, fault = first_call(contender, own, pred, target, expected[own])
        for mode in modes:
            result = Result(
                contender.name, mode, n, spec.S, spec.B, spec.C, dtype, device,
                first_call_s=first_call_s, skipped=refusals[mode], fault=None if refusals[mode] else fault,
            )  # fmt: skip
            results.append(result)
            if result.why_not_timed:
                continue
            step, setup = steps(contender, fn, pred, target, own, mode)
            result.timing = measure(step, setup, device=device, budget_s=budget_s)
            if copy_bytes_per_s is not None:
                result.cuda = cuda_measures(step, setup, pred, target, mode, result.timing, copy_bytes_per_s)
    return results


def in_worker_results(
    contender: Contender, spec: LossSpec, n: int, dtype: str, device: str, modes, expected, budget_s, copy_bytes_per_s
) -> list[Result]:
    """A user's loss on one batch configuration: called and timed in its worker process, checked
    here against ``expected`` (the oracle's). Its process dying or hanging ends the sweep (WorkerDied)."""
    first_call_s, fault = None, None
    try:
        total, grad, first_call_s = in_worker_first_call(contender, spec, n, dtype, device)
        differs = difference(total, grad, expected, DTYPES[dtype])
        fault = f"differs from the oracle: {differs}" if differs else None
    except ImplementationError as err:  # the loss raised
        fault = f"raised {err.detail}"
    results = []
    for mode in modes:
        result = Result(
            contender.name, mode, n, spec.S, spec.B, spec.C, dtype, device, first_call_s=first_call_s, fault=fault
        )
        results.append(result)
        if fault is not None:
            continue
        try:
            result.timing, result.cuda = in_worker_timing(contender, mode, budget_s, copy_bytes_per_s)
        except ImplementationError as err:
            result.fault = f"raised {err.detail}"
    return results


def run_sweep(
    contenders, grid: Grid, spec: LossSpec, device: str, *, progress: Callable[[str], None] = print, **options
) -> list[Result]:
    """Every contender on every case of ``grid``; ``spec`` gives the dialect (its S, B, C are replaced).

    On CUDA the device's copy bandwidth is measured first, for the bandwidth figures.
    """
    if torch.device(device).type == "cuda":
        options.setdefault("copy_bytes_per_s", copy_bandwidth(device))
    results = []
    for n, S, B, dtype in configurations(grid):
        progress(f"N={n} S={S} B={B} {dtype}")
        case_spec = spec.replace(S=S, B=B, C=grid.C)
        results += run_configuration(contenders, case_spec, n, dtype, device, grid.modes, **options)
    return results
