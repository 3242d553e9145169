"""The fused path's fixed cost on a GPU, counted on the CPU: forward and backward of the total
launch at most three pieces of work of ours (the kernel, its outputs step, backward's scaling of
the saved gradient), under every reduction.

Counted with a ``TorchDispatchMode`` over the Triton backend under the interpreter: every
dispatched ATen op that does work on a device counts (views, metadata and allocations by shape
do not), and so does every launch of a Triton kernel (what the interpreter does inside one is not
counted: on a GPU it is the kernel)."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from yolov1_loss.benchmarks.targets import MAX_LAUNCHES
from yolov1_loss.reference import LossSpec
from yolov1_loss.torch_impl.fused import fused_loss, triton_backend

from .helpers import skip_unless_available

# Ops that launch nothing: views and metadata, and allocations whose size depends on shapes only.
NO_WORK = {"empty", "empty_strided", "new_empty", "new_empty_strided", "detach", "alias", "lift_fresh"}


class CountLaunches(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops: list[str] = []
        self.paused = False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if not self.paused and not func.is_view and name not in NO_WORK:
            self.ops.append(name)
        return func(*args, **(kwargs or {}))


class CountedKernel:
    """A Triton kernel whose launches are counted as one op each."""

    def __init__(self, kernel, counter: CountLaunches, name: str):
        self.kernel, self.counter, self.name = kernel, counter, name

    def __getitem__(self, grid):
        launch = self.kernel[grid]

        def counted(*args, **kwargs):
            self.counter.ops.append(self.name)
            self.counter.paused = True  # the interpreter's own copies are the kernel, on a GPU
            try:
                return launch(*args, **kwargs)
            finally:
                self.counter.paused = False

        return counted


@pytest.mark.parametrize("reduction", ["sum", "mean", "none"])
def test_forward_and_backward_of_the_total_launch_at_most_three(monkeypatch, reduction):
    skip_unless_available("triton", "cpu")
    from yolov1_loss.torch_impl import triton_kernel

    spec = LossSpec.preset("paper", reduction=reduction)
    pred = torch.rand(4, 7, 7, 30, requires_grad=True)
    target = torch.zeros(4, 7, 7, 25)
    target[:, 3, 3, 20:] = torch.tensor([1.0, 0.5, 0.5, 0.3, 0.3])
    seed = torch.ones(4) if reduction == "none" else torch.ones(())  # made outside the count: the caller's
    counter = CountLaunches()
    monkeypatch.setattr(
        triton_kernel, "yolov1_kernel", CountedKernel(triton_kernel.yolov1_kernel, counter, "yolov1_kernel")
    )
    monkeypatch.setattr(
        triton_kernel, "outputs_kernel", CountedKernel(triton_kernel.outputs_kernel, counter, "outputs_kernel")
    )
    backend = triton_backend()
    with counter:
        total = fused_loss(pred, target, spec, backend)[-1]
        forward = list(counter.ops)
        torch.autograd.backward(total, seed)
    assert forward == ["yolov1_kernel", "outputs_kernel"], counter.ops
    assert len(counter.ops) <= MAX_LAUNCHES, counter.ops
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
