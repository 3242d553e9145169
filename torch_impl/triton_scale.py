"""Backward's one launch on CUDA: the saved gradient times the upstream gradient, in place.

``total.backward()`` seeds the upstream gradient with 1, and reading it on the host would wait
for the device. So the kernel reads it itself: every program loads its upstream value and, when
it is exactly 1, writes nothing (x · 1 = x in every dtype), so the common step moves no gradient
bytes in backward. Otherwise it multiplies in the compute dtype and rounds once, as torch's own
``mul_`` does.

On CPU tensors it runs only under Triton's interpreter (``TRITON_INTERPRET=1``), as
:mod:`yolov1_loss.torch_impl.triton_kernel` does.
"""

from __future__ import annotations

import triton
import triton.language as tl
from torch import Tensor

from yolov1_loss.torch_impl.dtypes import compute_dtype
from yolov1_loss.torch_impl.triton_kernel import TL_DTYPES

BLOCK = 1024  # gradient entries per program


@triton.jit
def scale_kernel(grad_ptr, upstream_ptr, per_image, PER_IMAGE: tl.constexpr, DT: tl.constexpr, BLOCK: tl.constexpr):
    """grad[n, i] *= upstream[n] (PER_IMAGE: grid (N, blocks of an image's ``per_image`` entries)),
    or grad[i] *= upstream (grid: blocks of the whole gradient, ``per_image`` entries in all),
    skipped by every program whose upstream value is 1."""
    if PER_IMAGE:
        n = tl.program_id(0).to(tl.int64)
        g = tl.load(upstream_ptr + n)
        start = n * per_image
        offsets = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    else:
        g = tl.load(upstream_ptr)
        start = 0
        offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    if g != 1:
        live = offsets < per_image
        at = grad_ptr + start + offsets
        x = tl.load(at, mask=live)
        tl.store(at, (x.to(DT) * g.to(DT)).to(x.dtype), mask=live)


def scale_in_place(grad: Tensor, upstream: Tensor) -> Tensor:
    """``grad`` (N, ...) contiguous, multiplied in place by ``upstream``: 0-dim, or (N,) (one per
    image, reduction='none'), in ``grad``'s dtype. One launch; no host-device synchronisation."""
    upstream = upstream.contiguous()
    n_images = grad.shape[0]
    dt = TL_DTYPES[compute_dtype(grad.dtype)]
    if grad.numel() == 0:
        return grad
    if upstream.dim() == 0:
        scale_kernel[(triton.cdiv(grad.numel(), BLOCK),)](
            grad, upstream, grad.numel(), PER_IMAGE=False, DT=dt, BLOCK=BLOCK
        )
    else:
        per_image = grad.numel() // n_images
        scale_kernel[(n_images, triton.cdiv(per_image, BLOCK))](
            grad, upstream, per_image, PER_IMAGE=True, DT=dt, BLOCK=BLOCK
        )
    return grad
