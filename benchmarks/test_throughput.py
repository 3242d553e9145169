"""Every contender, checked against the oracle and then timed with pytest-benchmark, per case.

The agreement checks are real assertions; no test asserts a timing. Save a run with
``--benchmark-save=NAME`` and gate a later one on the same machine with
``--benchmark-compare --benchmark-compare-fail=median:10%``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import pytest
import torch

from yolov1_loss.benchmarks import suite
from yolov1_loss.benchmarks.contenders import Contender, disagreement, oracle, project_contenders, steps
from yolov1_loss.benchmarks.inputs import make_batch
from yolov1_loss.benchmarks.sweep import DTYPES, cuda_measures
from yolov1_loss.benchmarks.timing import copy_bandwidth, rounds_for, summarize, time_rounds
from yolov1_loss.reference import LossSpec

DIALECT = "ml_collection"  # the naive baseline's, so that every contender computes the same loss


class Prepared(NamedTuple):
    contender: Contender
    fn: object
    spec: LossSpec
    pred: torch.Tensor
    target: torch.Tensor
    differs: str | None


@functools.lru_cache(maxsize=1)
def prepared(contender_name: str, n: int, S: int, B: int, dtype: str, device: str, backend: str) -> Prepared:
    """The contender built for one configuration, its batch, and how it parts from the oracle (None: agrees).

    Only the last one is kept: cases run configuration by configuration and contender by
    contender, and a compiled contender's build resets torch.compile's caches anyway.
    """
    contender = {c.name: c for c in project_contenders(backend)}[contender_name]
    spec = LossSpec.preset(DIALECT, S=S, B=B)
    pred, target = make_batch(spec, n, dtype=DTYPES[dtype], device=device)
    fn = contender.build(spec)
    return Prepared(
        contender, fn, spec, pred, target, disagreement(contender, fn, pred, target, spec, oracle(pred, target, spec))
    )


def synchronized(fn, device: torch.device):
    """``fn``, then wait for the device: pytest-benchmark's clock then covers the GPU's work."""
    if device.type != "cuda":
        return fn

    def run(*args):
        out = fn(*args)
        torch.cuda.synchronize(device)
        return out

    return run


@functools.cache
def device_copy_bandwidth(device: str) -> float:
    return copy_bandwidth(device)


def test_throughput(case: suite.Case, benchmark, request):
    device = torch.device(case.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    full = request.config.getoption("--bench-full", default=False)
    backend = suite.compile_backend(full)
    contender = {c.name: c for c in project_contenders(backend)}[case.contender]
    spec = LossSpec.preset(DIALECT, S=case.S, B=case.B)
    refusal = contender.refuses(spec, device, DTYPES[case.dtype], case.mode)
    if refusal:
        pytest.skip(refusal)

    ready = prepared(case.contender, case.n, case.S, case.B, case.dtype, case.device, backend)
    assert ready.differs is None, f"{case.contender} parts from the oracle: {ready.differs}"

    step, setup = steps(ready.contender, ready.fn, ready.pred, ready.target, spec, case.mode)
    setup = setup or (lambda: ())
    if full:
        warmup, rounds = 0, rounds_for(min(time_rounds(step, setup, 2, device)))
    else:
        warmup, rounds = suite.QUICK_WARMUP, suite.QUICK_ROUNDS
    benchmark.group = f"{case.mode} N={case.n} S={case.S} B={case.B} {case.dtype} {case.device}"
    benchmark.extra_info.update(images=case.n, torch_threads=torch.get_num_threads(), compile_backend=backend)
    benchmark.pedantic(
        synchronized(step, device),
        setup=lambda: (synchronized(setup, device)(), {}),
        rounds=rounds,
        warmup_rounds=warmup,
        iterations=1,
    )
    if device.type == "cuda" and benchmark.stats is not None:
        timing = summarize(list(benchmark.stats.stats.data))
        benchmark.extra_info.update(
            cuda_measures(step, setup, ready.pred, ready.target, case.mode, timing, device_copy_bandwidth(case.device))
        )
