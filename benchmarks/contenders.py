"""The implementations the benchmark times side by side, and the check that each one agrees with the oracle.

A :class:`Contender` builds, for a spec, a loss function ``fn(pred, target) -> total`` on torch
tensors (or, for the NumPy oracle, the oracle itself). :func:`steps` turns one into the step
that a timing round runs, for each mode: the forward pass, the backward pass alone, or both.

A user's loss (``bench --impl``) runs in its worker process, as ``check`` runs it
(:class:`~yolov1_loss.conformance.user_loss.isolation.Worker`): the worker builds each batch
itself (:func:`user_case`), calls the loss once and sends back its total and gradient, which are
checked here against the oracle, then times it there (:func:`time_user_case`) and sends back the
Timing, so that no transfer between the processes is timed.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from yolov1_loss import reference, torch_impl
from yolov1_loss.benchmarks.inputs import make_batch
from yolov1_loss.benchmarks.naive import check_dialect, naive_loss
from yolov1_loss.benchmarks.timing import MAX_ROUNDS, WARMUP_ROUNDS, Timing, measure
from yolov1_loss.conformance.user_loss.frameworks import COMPILERS, bench_refuses, timed_calls
from yolov1_loss.conformance.user_loss.implementation import (
    Implementation,
    call_in_order,
    named_outputs,
    pred_from_layout,
    to_layout,
)
from yolov1_loss.reference import LossSpec

MODES = ("forward", "backward", "forward+backward")


@dataclass(frozen=True)
class Contender:
    """One implementation: ``build(spec)`` gives ``fn(pred, target) -> total``.

    ``refuses(spec, device, dtype, mode)`` gives the reason it cannot run a case, or None.
    ``numpy``: fn is the oracle, taking NumPy arrays and computing loss and gradient together.
    """

    name: str
    build: Callable[[LossSpec], Callable] | None  # None: it runs in ``worker``
    refuses: Callable[..., str | None]
    numpy: bool = False
    # The knobs it computes, where they are not the sweep's (a user's loss, in its own dialect).
    knobs: dict | None = None
    # A user's loss in its worker process (conformance.user_loss.isolation.Worker), which builds
    # each batch, calls the loss and times it there (in_worker_first_call, in_worker_timing).
    worker: Any = None

    def spec_for(self, spec: LossSpec) -> LossSpec:
        """The spec this contender is checked and timed under, for the sweep's ``spec`` (and grid)."""
        return spec if self.knobs is None else spec.replace(**self.knobs)


def runs_anywhere(spec, device, dtype, mode) -> str | None:
    return None


def _reference_refuses(spec, device, dtype, mode) -> str | None:
    if torch.device(device).type != "cpu":
        return "the NumPy oracle runs on the CPU"
    if dtype == torch.bfloat16:
        return "NumPy has no bfloat16 (the oracle computes in float64)"
    if mode == "backward":
        return "the oracle computes loss and gradient in one call; it has no separate backward"
    return None


def _naive_refuses(spec, device, dtype, mode) -> str | None:
    try:
        check_dialect(spec)
    except ValueError as err:
        return str(err)
    return None


def _torch_impl_path(path: str) -> Callable[[LossSpec], Callable]:
    def build(spec: LossSpec) -> Callable:
        return lambda pred, target: torch_impl.yolov1_loss(pred, target, spec, path=path).total

    return build


def compiled(contender: Contender, backend: str = "inductor") -> Contender:
    """``torch.compile`` of a contender's loss function (a fresh compile per build, shapes static).

    A backend other than inductor (e.g. "aot_eager", which traces forward and backward but
    generates no code, in about a second) is named in the contender's name.
    """

    def build(spec: LossSpec) -> Callable:
        torch._dynamo.reset()  # each build compiles afresh: no recompile limit reached across a sweep
        return torch.compile(contender.build(spec), backend=backend, dynamic=False)

    suffix = "" if backend == "inductor" else f"[{backend}]"
    return Contender(f"torch.compile({contender.name}){suffix}", build, contender.refuses)


REFERENCE = Contender("reference", lambda spec: reference.loss_and_grad, _reference_refuses, numpy=True)
NAIVE = Contender("naive", lambda spec: lambda pred, target: naive_loss(pred, target, spec), _naive_refuses)
AUTOGRAD = Contender("autograd", _torch_impl_path("autograd"), runs_anywhere)
FUSED = Contender("fused", _torch_impl_path("fused"), runs_anywhere)


def project_contenders(compile_backend: str | None = "inductor") -> tuple[Contender, ...]:
    """The project's own contenders, in the order tables list them; no torch.compile ones when the backend is None."""
    if compile_backend is None:
        return (REFERENCE, NAIVE, AUTOGRAD, FUSED)
    return (REFERENCE, NAIVE, compiled(NAIVE, compile_backend), AUTOGRAD, compiled(AUTOGRAD, compile_backend), FUSED)


def user_contender(name: str, fn: Callable, knobs: dict | None = None) -> Contender:
    """A user's torch loss ``fn(pred, target)``, called as it is for every spec, and checked
    against the oracle in its own dialect (``knobs``; None: the sweep's).

    It returns the total, or what ``yolov1-loss check`` accepts: a tuple whose last item is the
    total (or whose first is, before a dict), or a mapping or NamedTuple with 'total' (or 'loss').
    """
    return Contender(
        name, lambda spec: lambda pred, target: named_outputs(fn(pred, target))["total"], runs_anywhere, knobs=knobs
    )


def isolated_contender(name: str, worker, knobs: dict, framework: str = "torch") -> Contender:
    """A user's loss loaded in ``worker`` (an isolation.Worker), checked against the oracle in
    its own dialect (``knobs``); ``framework``: what it is written in (JAX and TensorFlow losses
    refuse some cases: :func:`~yolov1_loss.conformance.user_loss.frameworks.bench_refuses`)."""

    def refuses(spec, device, dtype, mode):
        return bench_refuses(framework, device, str(dtype).removeprefix("torch."), mode)

    return Contender(name, None, refuses, knobs=knobs, worker=worker)


# --- a user's loss in its worker process: this side ------------------------------------------

BEAT_S = 1.0  # at most how often the worker says, between timing rounds, that it is not hung


def in_worker_first_call(contender: Contender, spec: LossSpec, n: int, dtype: str, device: str):
    """The user's loss's first call on the batch of ``n`` images, ``dtype``, built in its worker,
    with as many torch threads as here: (its total, its gradient on the images the agreement
    check takes (canonical), seconds)."""
    wire = "float64" if dtype == "float64" else "float32"  # the gradient as computed (bfloat16's fit float32)
    shape = (min(n, AGREEMENT_MAX_IMAGES), spec.S, spec.S, spec.C + 5 * spec.B)
    result, arrays = contender.worker.request(
        f"its first call on N={n} {dtype}",
        ("bench_case", spec, n, dtype, device, torch.get_num_threads(), wire),
        arrays={"grad": (wire, shape)},
        result={"total": float, "seconds": float},
    )
    return result["total"], arrays["grad"], result["seconds"]


def in_worker_timing(contender: Contender, mode: str, budget_s: float, copy_bytes_per_s: float | None):
    """The Timing of the user's loss in ``mode`` on the batch of its last first call, measured in
    its worker, and its CUDA measures (see sweep.cuda_measures) when ``copy_bytes_per_s`` is given."""
    worker = contender.worker
    result, _ = worker.request(
        f"timing {mode} on that batch",
        ("bench_time", mode, budget_s, copy_bytes_per_s, min(BEAT_S, worker.timeout / 4)),
        arrays={},
        result={"timing": {"median_s": float, "q1_s": float, "q3_s": float, "rounds": int}, "cuda": [(str, float)]},
        beats=WARMUP_ROUNDS + MAX_ROUNDS + 2,  # at most one a round, and one for each CUDA measure
    )
    return Timing(**result["timing"]), dict(result["cuda"])


# --- a user's loss in its worker process: that side ------------------------------------------


@dataclass(frozen=True)
class UserCase:
    """A benchmark case of a user's loss, held in its worker process from its first call to its timing."""

    contender: Contender  # the loss as a contender of the worker's process
    fn: Callable  # fn(pred, target) -> total, in the loss's layout and argument order
    pred: torch.Tensor  # the case's batch, in the loss's layout
    target: torch.Tensor
    impl: Implementation
    spec: LossSpec
    device: str
    # A JAX or TensorFlow loss: {mode: step()} (frameworks.timed_calls), and its batch, canonical
    # float64 NumPy; None for a torch loss.
    timed: dict | None = None
    canonical: tuple | None = None


def user_case(impl: Implementation, spec: LossSpec, n: int, dtype: str, device: str, threads: int) -> UserCase:
    """The case of ``n`` images (:func:`make_batch`, as every contender gets it) for the loss of
    ``impl``, run with ``threads`` torch threads."""
    torch.set_num_threads(threads)
    pred, target = make_batch(spec, n, dtype=getattr(torch, dtype), device=device)
    if impl.framework in COMPILERS:
        impl = dataclasses.replace(impl, dtype=dtype)
        canonical = (pred.double().numpy(), target.double().numpy())
        contender = Contender(impl.name, None, runs_anywhere)
        return UserCase(
            contender, None, pred, target, impl, spec, device, timed_calls(impl, *canonical, spec), canonical
        )
    pred, target = to_layout(impl, pred, target, spec)
    contender = user_contender(impl.name, lambda first, second: call_in_order(impl, first, second, spec))
    return UserCase(contender, contender.build(spec), pred, target, impl, spec, device)


def first_user_call(case: UserCase):
    """(total, canonical gradient of the total, seconds) of the loss on the images the agreement check takes."""
    if case.timed is not None:
        pred, target = (a[:AGREEMENT_MAX_IMAGES] for a in case.canonical)
        start = time.perf_counter()
        got = case.impl.evaluate(pred, target, case.spec, grads="total")
        return float(got.values["total"]), got.grads["total"], time.perf_counter() - start
    start = time.perf_counter()
    total, grad = computed(
        case.contender, case.fn, case.pred[:AGREEMENT_MAX_IMAGES], case.target[:AGREEMENT_MAX_IMAGES], case.spec
    )
    seconds = time.perf_counter() - start
    return total, pred_from_layout(case.impl, grad, case.spec), seconds


def time_user_case(case: UserCase, mode: str, budget_s: float, copy_bytes_per_s: float | None, beat: Callable):
    """(Timing, CUDA measures or {}) of the case in ``mode``; ``beat()`` runs before each round, untimed."""
    from yolov1_loss.benchmarks.sweep import cuda_measures  # (sweep builds on this module)

    if case.timed is not None:
        step, setup = case.timed[mode], None
    else:
        step, setup = steps(case.contender, case.fn, case.pred, case.target, case.spec, mode)

    def beating_setup():
        beat()
        return setup() if setup is not None else ()

    timing = measure(step, beating_setup, device=case.device, budget_s=budget_s)
    if copy_bytes_per_s is None:
        return timing, {}
    return timing, cuda_measures(step, beating_setup, case.pred, case.target, mode, timing, copy_bytes_per_s)


# --- steps ----------------------------------------------------------------------------------


def steps(contender: Contender, fn: Callable, pred: torch.Tensor, target: torch.Tensor, spec: LossSpec, mode: str):
    """(step, setup) for one timing round of ``mode``: the round runs ``step(*setup())``, timing step only."""
    if contender.numpy:
        pred_np, target_np = pred.numpy(), target.numpy()
        if mode == "forward":
            return (lambda: reference.loss(pred_np, target_np, spec)), None
        return (lambda: fn(pred_np, target_np, spec)), None

    leaf = pred.detach().requires_grad_()

    def fresh_grad():
        leaf.grad = None  # as optimizer.zero_grad() leaves it: backward allocates the gradient
        return ()

    def forward():
        fresh_grad()
        return (fn(leaf, target),)

    if mode == "forward":
        return (lambda: fn(leaf, target)), None
    if mode == "backward":
        return (lambda total: total.backward()), forward
    return (lambda: fn(leaf, target).backward()), fresh_grad


# --- agreement with the oracle --------------------------------------------------------------

# Tolerances, in units of the dtype's machine epsilon. float32 against float64 differs by
# rounding only: measured on the naive baseline (S, B, C varied, N = 8), about 1 eps relative on
# the total and 1 eps of the largest gradient entry elementwise; 64 eps leaves room for other
# summation orders and for large batches, and is still far below any dialect difference (a wrong
# knob moves the total by percents). bfloat16 carries 8 significant bits: the total is checked
# to 4 eps (the naive baseline measured up to 0.7 eps); the gradient is not compared, because a
# near tie between two predictors' IoUs may round the other way and move single entries by O(1).
TOLERANCE_EPS = {torch.float64: 64, torch.float32: 64, torch.bfloat16: 4}


# Agreement is checked on at most this many images of a batch: the contender runs the same code
# at any N, and the float64 oracle on the GPU sweep's 65536 images would take minutes and GBs.
AGREEMENT_MAX_IMAGES = 4096


def oracle(pred: torch.Tensor, target: torch.Tensor, spec: LossSpec):
    """The oracle's (total, gradient of the total) on the checked images of ``pred`` and ``target`` (as rounded)."""
    pred, target = pred[:AGREEMENT_MAX_IMAGES], target[:AGREEMENT_MAX_IMAGES]
    parts, grads = reference.loss_and_grad(pred.double().cpu().numpy(), target.double().cpu().numpy(), spec)
    return parts.total, grads.total


def computed(contender: Contender, fn: Callable, pred: torch.Tensor, target: torch.Tensor, spec: LossSpec):
    """What the contender computes: (total as a float, gradient of the total as float64 NumPy)."""
    if contender.numpy:
        parts, grads = fn(pred.double().cpu().numpy(), target.double().cpu().numpy(), spec)
        return parts.total, grads.total
    leaf = pred.detach().requires_grad_()
    total = fn(leaf, target)
    if not isinstance(total, torch.Tensor) or total.numel() != 1:
        raise ValueError(f"a loss must return a one-element tensor (the total), got {type(total).__name__}")
    total.backward()
    return float(total.detach()), leaf.grad.double().cpu().numpy()


def disagreement(contender, fn, pred, target, spec, expected=None) -> str | None:
    """Why the contender's total or gradient parts from the oracle's beyond tolerance, or None.

    Checks the first AGREEMENT_MAX_IMAGES images. ``expected``: :func:`oracle` of these inputs,
    when already computed.
    """
    expected = expected or oracle(pred, target, spec)
    pred, target = pred[:AGREEMENT_MAX_IMAGES], target[:AGREEMENT_MAX_IMAGES]
    total, grad = computed(contender, fn, pred, target, spec)
    return difference(total, grad, expected, pred.dtype)


def difference(total: float, grad: np.ndarray, expected, dtype: torch.dtype) -> str | None:
    """Why ``total`` and ``grad`` (a contender's, on inputs of ``dtype``) part from ``expected``
    (:func:`oracle` of those inputs) beyond tolerance, or None."""
    expected_total, expected_grad = expected
    eps = torch.finfo(dtype).eps * TOLERANCE_EPS[dtype]
    if not abs(total - expected_total) <= eps * abs(expected_total):
        return f"total {total!r}, the oracle's {expected_total!r} (relative tolerance {eps:.2g})"
    if dtype == torch.bfloat16:
        return None
    error = np.abs(grad - expected_grad.reshape(grad.shape))
    allowed = eps * np.abs(expected_grad).max()
    if not error.max() <= allowed:
        where = tuple(int(i) for i in np.unravel_index(error.argmax(), error.shape))
        return (
            f"d total / d pred{list(where)} is {grad[where]!r}, the oracle's "
            f"{expected_grad.reshape(grad.shape)[where]!r} (tolerance {allowed:.2g})"
        )
    return None
