"""Timing one step of work honestly, on the CPU or a CUDA device.

Warm-up runs happen before and outside the timed rounds; each round's setup (for example the
forward pass before a timed backward) is outside its round too. On CUDA each round starts on an
idle device (synchronize) and is timed with CUDA events, so launch gaps count and queued work
from setup does not.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

WARMUP_ROUNDS = 2
MIN_ROUNDS = 5
MAX_ROUNDS = 500
ROUNDS_BUDGET_S = 0.3  # time spent in timed rounds per case, before the min/max clamp


@dataclass(frozen=True)
class Timing:
    """Seconds per step over ``rounds`` timed rounds: median and the quartiles around it."""

    median_s: float
    q1_s: float
    q3_s: float
    rounds: int

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median (0.05 means ±2.5% around it)."""
        return (self.q3_s - self.q1_s) / self.median_s if self.median_s > 0 else 0.0


def summarize(seconds: list[float]) -> Timing:
    """Median and quartiles of per-round times (at least one)."""
    if len(seconds) < 2:
        return Timing(seconds[0], seconds[0], seconds[0], len(seconds))
    q1, _, q3 = statistics.quantiles(seconds, n=4, method="inclusive")
    return Timing(statistics.median(seconds), q1, q3, len(seconds))


def rounds_for(estimate_s: float, budget_s: float = ROUNDS_BUDGET_S) -> int:
    """How many rounds fit ``budget_s`` for a step of about ``estimate_s``, within [MIN, MAX]_ROUNDS."""
    if estimate_s <= 0:
        return MAX_ROUNDS
    return max(MIN_ROUNDS, min(MAX_ROUNDS, math.ceil(budget_s / estimate_s)))


def _no_setup() -> tuple:
    return ()


def time_rounds(step: Callable, setup: Callable | None, rounds: int, device: torch.device) -> list[float]:
    """Seconds of ``step(*setup())`` for each of ``rounds`` rounds, setup untimed."""
    setup = setup or _no_setup
    if device.type != "cuda":
        seconds = []
        for _ in range(rounds):
            args = setup()
            start = time.perf_counter()
            step(*args)
            seconds.append(time.perf_counter() - start)
        return seconds
    events = []
    for _ in range(rounds):
        args = setup()
        torch.cuda.synchronize(device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step(*args)
        end.record()
        events.append((start, end))
    torch.cuda.synchronize(device)
    return [start.elapsed_time(end) / 1000 for start, end in events]


def measure(
    step: Callable,
    setup: Callable | None = None,
    *,
    device: torch.device | str = "cpu",
    budget_s: float = ROUNDS_BUDGET_S,
    warmup: int = WARMUP_ROUNDS,
) -> Timing:
    """Time ``step(*setup())``: ``warmup`` untimed rounds, then as many as fit ``budget_s``."""
    device = torch.device(device)
    warm = time_rounds(step, setup, max(warmup, 1), device)
    return summarize(time_rounds(step, setup, rounds_for(min(warm), budget_s), device))


PAIR_TURN_S = 0.05  # one turn of a paired measure: long enough to amortise the switch, short enough to pair drift


def measure_pair(first: tuple, second: tuple, *, budget_s: float = ROUNDS_BUDGET_S) -> tuple[Timing, Timing, float]:
    """Two CPU steps, each ``(step, setup)``, timed in turns (A B, B A, A B, ...) of as many rounds
    as fit PAIR_TURN_S: each one's Timing over all its rounds, and the median over the turns of
    A's median round / B's. Pairing turn by turn keeps the ratio meaningful while the machine's
    speed drifts (on a shared machine it does, by tens of percent within seconds)."""
    cpu = torch.device("cpu")
    warm = [min(time_rounds(step, setup, WARMUP_ROUNDS, cpu)) for step, setup in (first, second)]
    per_turn = rounds_for(max(warm), PAIR_TURN_S)
    turns = max(MIN_ROUNDS, math.ceil(budget_s / (2 * PAIR_TURN_S)))
    seconds: tuple[list, list] = ([], [])
    ratios = []
    for turn in range(turns):
        medians = [0.0, 0.0]
        for k in (0, 1) if turn % 2 == 0 else (1, 0):
            rounds = time_rounds(*(first, second)[k], per_turn, cpu)
            seconds[k].extend(rounds)
            medians[k] = statistics.median(rounds)
        ratios.append(medians[0] / medians[1])
    return summarize(seconds[0]), summarize(seconds[1]), statistics.median(ratios)


@contextlib.contextmanager
def pinned_threads(threads: int):
    """Run the block with torch using exactly ``threads`` intra-op threads, then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --- CUDA-only measures ---------------------------------------------------------------------


def count_launches(step: Callable, setup: Callable | None = None) -> int:
    """Device activities (kernels, copies, fills) that one ``step(*setup())`` puts on the GPU, per the profiler."""
    from torch.profiler import ProfilerActivity, profile

    args = (setup or _no_setup)()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step(*args)
        torch.cuda.synchronize()
    return sum(1 for event in prof.events() if event.device_type == torch.autograd.DeviceType.CUDA)


def peak_extra_bytes(step: Callable, setup: Callable | None = None) -> int:
    """The most memory ``step(*setup())`` holds at once beyond what was allocated before it, in bytes."""
    args = (setup or _no_setup)()
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step(*args)
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def copy_bandwidth(device: torch.device | str = "cuda", megabytes: int = 512) -> float:
    """The device's measured copy bandwidth in bytes per second (bytes read plus bytes written)."""
    source = torch.empty(megabytes * 2**20, dtype=torch.uint8, device=device)
    destination = torch.empty_like(source)
    timing = measure(lambda: destination.copy_(source), device=device)
    return 2 * source.numel() / timing.median_s
