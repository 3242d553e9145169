"""The implementations the benchmark times side by side, and the check that each one agrees with the oracle.

A :class:`Contender` builds, for a spec, a loss function ``fn(pred, target) -> total`` on torch
tensors (or, for the NumPy oracle, the oracle itself). :func:`steps` turns one into the step
that a timing round runs, for each mode: the forward pass, the backward pass alone, or both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from yolov1_loss import reference, torch_impl
from yolov1_loss.benchmarks.naive import check_dialect, naive_loss
from yolov1_loss.conformance.user_loss.implementation import named_outputs
from yolov1_loss.reference import LossSpec

MODES = ("forward", "backward", "forward+backward")


@dataclass(frozen=True)
class Contender:
    """One implementation: ``build(spec)`` gives ``fn(pred, target) -> total``.

    ``refuses(spec, device, dtype, mode)`` gives the reason it cannot run a case, or None.
    ``numpy``: fn is the oracle, taking NumPy arrays and computing loss and gradient together.
    """

    name: str
    build: Callable[[LossSpec], Callable]
    refuses: Callable[..., str | None]
    numpy: bool = False
    # The knobs it computes, where they are not the sweep's (a user's loss, in its own dialect).
    knobs: dict | None = None

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
    expected_total, expected_grad = expected or oracle(pred, target, spec)
    pred, target = pred[:AGREEMENT_MAX_IMAGES], target[:AGREEMENT_MAX_IMAGES]
    total, grad = computed(contender, fn, pred, target, spec)
    eps = torch.finfo(pred.dtype).eps * TOLERANCE_EPS[pred.dtype]
    if not abs(total - expected_total) <= eps * abs(expected_total):
        return f"total {total!r}, the oracle's {expected_total!r} (relative tolerance {eps:.2g})"
    if pred.dtype == torch.bfloat16:
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
