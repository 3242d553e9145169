"""The issue's performance targets for the fused path, measured in one run and reported as ratios."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from yolov1_loss.benchmarks.baseline import BASELINE_COMMIT
from yolov1_loss.benchmarks.contenders import FUSED, NAIVE, Contender, compiled, oracle, steps
from yolov1_loss.benchmarks.inputs import make_batch
from yolov1_loss.benchmarks.report import format_seconds
from yolov1_loss.benchmarks.sweep import Result, first_call, run_configuration
from yolov1_loss.benchmarks.timing import copy_bandwidth, count_launches, measure_pair, pinned_threads
from yolov1_loss.reference import LossSpec

# The naive baseline computes this dialect, so every target is measured in it; S=7, B=2, C=20.
TARGET_SPEC = LossSpec.preset("ml_collection")
MODE = "forward+backward"
TARGET_BUDGET_S = 1.0  # timed rounds per case: longer than the sweep's, for steadier ratios


@dataclass(frozen=True)
class Outcome:
    """One target: what was measured against the threshold (None, with a reason, where it could not be)."""

    description: str
    measured: float | None
    threshold: float
    at_most: bool = False  # the measure must not exceed the threshold (else: reach it)
    unit: str = "×"
    reason: str | None = None
    detail: str = ""  # the figures behind the measure

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        return self.measured <= self.threshold if self.at_most else self.measured >= self.threshold

    def line(self) -> str:
        bound = f"{'≤' if self.at_most else '≥'} {self.threshold:g}{self.unit}"
        if self.measured is None:
            return f"{self.description}: not measured ({self.reason}); target {bound}"
        verdict = "met" if self.met else "NOT met"
        detail = f" [{self.detail}]" if self.detail else ""
        return f"{self.description}: {self.measured:.3g}{self.unit} (target {bound}): {verdict}{detail}"


def _by_name(results: list[Result]) -> dict[str, Result]:
    return {r.contender: r for r in results}


def speedup(results: dict[str, Result], slower: str, faster: str, description: str, threshold: float) -> Outcome:
    """How many times faster ``faster``'s median step is than ``slower``'s."""
    missing = [results[name] for name in (slower, faster) if results[name].timing is None]
    if missing:
        return Outcome(description, None, threshold, reason=f"{missing[0].contender}: {missing[0].why_not_timed}")
    slow, fast = results[slower].timing.median_s, results[faster].timing.median_s
    detail = f"{faster} {format_seconds(fast)}, {slower} {format_seconds(slow)} per step"
    return Outcome(description, slow / fast, threshold, detail=detail)


def _timed(contenders, n: int, device: str, budget_s: float, **options) -> dict[str, Result]:
    """Each contender's forward+backward in the target dialect, float32, at batch size ``n``, by name."""
    return _by_name(
        run_configuration(contenders, TARGET_SPEC, n, "float32", device, (MODE,), budget_s=budget_s, **options)
    )


def cpu_targets(budget_s: float = TARGET_BUDGET_S) -> list[Outcome]:
    """The CPU targets, one thread, float32, forward+backward: fused against naive and torch.compile(naive)."""
    compiled_naive = compiled(NAIVE)
    with pinned_threads(1):
        large = _timed((NAIVE, compiled_naive, FUSED), 1024, "cpu", budget_s)
        single = _timed((NAIVE, FUSED), 1, "cpu", budget_s)
    return [
        speedup(large, "naive", "fused", "CPU N=1024: fused over naive", 8),
        speedup(single, "naive", "fused", "CPU N=1: fused over naive", 5),
        speedup(large, compiled_naive.name, "fused", "CPU N=1024: fused over torch.compile(naive), both warm", 1),
    ]


def baseline_targets(baseline: Contender | None, budget_s: float = TARGET_BUDGET_S) -> list[Outcome]:
    """Today's fused path against ``baseline`` (benchmarks.baseline: the path the CPU target was
    set on), one thread, paired turn by turn in one run: at N=1 at least twice as fast, at N=1024
    no slower. Not measured, with the reason, without a baseline."""
    targets = [
        (1, "CPU N=1: fused over the path the target was set on", 2.0),
        (1024, "CPU N=1024: the same, no loss", 1.0),
    ]
    if baseline is None:
        reason = f"give --baseline DIR, a checkout of {BASELINE_COMMIT}"
        return [Outcome(description, None, threshold, reason=reason) for _, description, threshold in targets]
    with pinned_threads(1):
        return [_paired(baseline, n, description, threshold, budget_s) for n, description, threshold in targets]


def _paired(baseline: Contender, n: int, description: str, threshold: float, budget_s: float) -> Outcome:
    """How many times faster fused's step is than ``baseline``'s at batch size ``n``, both checked against the oracle first."""
    pred, target = make_batch(TARGET_SPEC, n)
    expected = oracle(pred, target, TARGET_SPEC)
    pairs = []
    for contender in (baseline, FUSED):
        fn, _, fault = first_call(contender, TARGET_SPEC, pred, target, expected)
        if fault:
            return Outcome(description, None, threshold, reason=f"{contender.name} {fault}")
        pairs.append(steps(contender, fn, pred, target, TARGET_SPEC, MODE))
    old, new, ratio = measure_pair(*pairs, budget_s=budget_s)
    detail = (
        f"fused {format_seconds(new.median_s)}, {baseline.name} {format_seconds(old.median_s)} per step; "
        "the ratio is the median over turns taken in alternation"
    )
    return Outcome(description, ratio, threshold, detail=detail)


# Forward and backward of the total: the kernel, the outputs kernel, backward's scaling in place.
MAX_LAUNCHES = 3


def launches_of_ours(device: str, n: int = 64) -> int:
    """Device activities (profiler) of fused's forward and backward of the total with the upstream
    gradient made beforehand: the project's own launches. (A bare ``total.backward()``, as the
    sweep counts it, adds autograd's fill of the 1 it seeds backward with: any loss pays it.)"""
    pred, target = make_batch(TARGET_SPEC, n, device=device)
    leaf = pred.detach().requires_grad_()
    fn = FUSED.build(TARGET_SPEC)
    seed = torch.ones((), device=device)

    def fresh_grad():
        leaf.grad = None
        return ()

    fn(leaf, target).backward()  # compiled and warm
    return count_launches(lambda: torch.autograd.backward(fn(leaf, target), seed), fresh_grad)


# O(number of blocks) beside the gradient: partial sums are a few floats per block of cells,
# well under 1% of the gradient's bytes for any block of 32 cells or more.
MEMORY_OVERHEAD = 0.01


def cuda_targets(device: str = "cuda", budget_s: float = TARGET_BUDGET_S) -> list[Outcome]:
    """The CUDA targets: launches, speed over naive at N=64, bandwidth and memory at N=65536."""
    copy = copy_bandwidth(device)
    small = _timed((NAIVE, FUSED), 64, device, budget_s, copy_bytes_per_s=copy)
    large = _timed((FUSED,), 65536, device, budget_s, copy_bytes_per_s=copy)["fused"]
    launches = "CUDA forward+backward of fused: device launches of ours"
    bandwidth = "CUDA N=65536: fused's share of the measured copy bandwidth"
    memory = "CUDA N=65536: fused's peak memory beyond the gradient, as a share of it"
    outcomes = [speedup(small, "naive", "fused", "CUDA N=64: fused over naive", 20)]
    if large.timing is None:
        reason = large.why_not_timed
        return outcomes + [
            Outcome(launches, None, MAX_LAUNCHES, at_most=True, unit="", reason=reason),
            Outcome(bandwidth, None, 0.7, unit="", reason=reason),
            Outcome(memory, None, MEMORY_OVERHEAD, at_most=True, unit="", reason=reason),
        ]
    figures = large.cuda
    ours = launches_of_ours(device)
    overhead = (figures["peak_extra_bytes"] - figures["gradient_bytes"]) / figures["gradient_bytes"]
    achieved = f"{figures['bytes_per_s'] / 1e9:.1f} GB/s of {copy / 1e9:.1f} GB/s"
    peak = f"{figures['peak_extra_bytes']} bytes beside the inputs, gradient {figures['gradient_bytes']}"
    return outcomes + [
        Outcome(
            launches,
            ours,
            MAX_LAUNCHES,
            at_most=True,
            unit="",
            detail=f"{figures['launches']} with autograd's fill of total.backward()'s 1",
        ),
        Outcome(bandwidth, figures["fraction_of_copy_bandwidth"], 0.7, unit="", detail=achieved),
        Outcome(memory, overhead, MEMORY_OVERHEAD, at_most=True, unit="", detail=peak),
    ]
