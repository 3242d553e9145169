"""The fused loss-and-gradient as one Triton kernel, for CUDA tensors.

Launch grid (N, blocks): each program takes BLOCK cells of one image, reads each of them once
(the class scores, the target and the B predictors; later passes over a cell's predictors hit
the cache), computes in float32 (float64 for float64 inputs), writes their gradient of
``Σ_k w_k · term_k`` in the prediction's dtype and one partial sum per term, and of that
weighted sum, for its block. A second, deterministic pass (``torch.sum`` over the blocks, in a
fixed order) gives the per-image values. No atomics: the same inputs give the same bits.

The math is the spec's with its conventions at kinks, like ``torch_impl.vectorized`` and
``reference/``: every knob is a compile-time constant, and so are the λ weights of the forward
pass (a backward of a single component passes per-image weights as a tensor instead).

On CPU tensors it runs only under Triton's interpreter (``TRITON_INTERPRET=1`` set before this
module is imported), which is how the tests exercise it without a GPU.
"""

from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl
from torch import Tensor

from yolov1_loss.reference import LossSpec
from yolov1_loss.torch_impl.dtypes import compute_dtype
from yolov1_loss.torch_impl.kernel_args import KernelWeights, Weights, kernel_knobs, kernel_weights

MAX_BLOCK = 128  # cells per program at most

TL_DTYPES = {
    torch.float64: tl.float64,
    torch.float32: tl.float32,
    torch.bfloat16: tl.bfloat16,
    torch.float16: tl.float16,
}


@triton.jit
def _sqrt(v):
    """Correctly rounded square root (tl.sqrt is exact in float64, tl.sqrt_rn takes float32 only)."""
    if v.dtype == tl.float64:
        root = tl.sqrt(v)
    else:
        root = tl.sqrt_rn(v)
    return root


def scale_parts(scale: float) -> tuple[float, float, float]:
    """``scale`` as three float32 values whose float64 sum is exactly ``scale``.

    Triton passes a Python float to a kernel as a float32: the scale alone would lose 29 of
    float64's 53 bits (a relative error of about 3e-8 in every float64 result; on a GPU, not in
    the interpreter). Each part holds the next 24 bits of what the previous left.
    """
    hi = float(np.float32(scale))
    mid = float(np.float32(scale - hi))
    return hi, mid, float(np.float32(scale - hi - mid))


@triton.jit
def _scale(hi, mid, lo, DT: tl.constexpr):
    """The scale from :func:`scale_parts` in DT: exact in float64, float32's rounding of it otherwise."""
    if DT == tl.float64:
        scale = tl.cast(hi, tl.float64) + tl.cast(mid, tl.float64) + tl.cast(lo, tl.float64)
    else:
        scale = tl.cast(hi, DT)
    return scale


@triton.jit
def _sign(v):
    return (v > 0).to(v.dtype) - (v < 0).to(v.dtype)


@triton.jit
def _overlap(p_centre, p_size, t_centre, t_size):
    """Overlap length of two intervals, and its derivatives by p_centre and p_size."""
    p_lo = p_centre - p_size / 2
    p_hi = p_centre + p_size / 2
    t_lo = t_centre - t_size / 2
    t_hi = t_centre + t_size / 2
    raw = tl.minimum(p_hi, t_hi) - tl.maximum(p_lo, t_lo)
    d_hi = (p_hi < t_hi).to(raw.dtype) + 0.5 * (p_hi == t_hi).to(raw.dtype)
    d_lo = (p_lo > t_lo).to(raw.dtype) + 0.5 * (p_lo == t_lo).to(raw.dtype)
    passes = raw >= 0
    d_centre = tl.where(passes, d_hi - d_lo, 0.0)
    d_size = tl.where(passes, (d_hi + d_lo) / 2, 0.0)
    return tl.maximum(raw, 0.0), d_centre, d_size


@triton.jit
def _iou(px, py, pw, ph, tx, ty, tw, th, IOU_EPS: tl.constexpr):
    """IoU of (px, py, pw, ph) with (tx, ty, tw, th), and its derivatives by px, py, pw, ph."""
    iw, dw_dx, dw_dw = _overlap(px, pw, tx, tw)
    ih, dh_dy, dh_dh = _overlap(py, ph, ty, th)
    inter = iw * ih
    union = tl.abs(pw * ph) + tl.abs(tw * th) - inter + IOU_EPS
    defined = union > 0
    u = tl.where(defined, union, 1.0)
    iou = tl.where(defined, inter / u, 0.0)
    d_inter = tl.where(defined, (u + inter) / (u * u), 0.0)
    d_area = tl.where(defined, -inter / (u * u), 0.0)
    s = _sign(pw * ph)
    return (
        iou,
        d_inter * dw_dx * ih,
        d_inter * dh_dy * iw,
        d_inter * dw_dw * ih + d_area * s * ph,
        d_inter * dh_dh * iw + d_area * s * pw,
    )


@triton.jit
def _size_term(v, WH_MODE: tl.constexpr, EPS_INSIDE: tl.constexpr, EPS: tl.constexpr, CLAMP_EPS: tl.constexpr):
    """g(v) and g'(v) of a predicted size, by wh_mode (kernel_args.WH_MODE_CODES: 0 linear,
    1 sqrt_output, 2 sqrt, 3 signed_sqrt, 4 clamped_sqrt)."""
    if WH_MODE == 2:
        root = _sqrt(v)
        g = root
        slope = 0.5 / root
    elif WH_MODE == 4:  # √max(v, ε); g' = 1/(2√v) from v = ε up (the clamp passes it there), 0 below
        above = v >= CLAMP_EPS
        root = _sqrt(tl.where(above, v, CLAMP_EPS))
        g = root
        slope = tl.where(above, 0.5 / root, 0.0)
    elif WH_MODE == 3:
        if EPS_INSIDE:
            u = tl.abs(v + EPS)
            defined = u > 0
            root = tl.where(defined, _sqrt(tl.where(defined, u, 1.0)), 0.0)
            g = _sign(v) * root
            slope = _sign(v) * _sign(v + EPS) * 0.5 / tl.where(defined, root, 1.0)
            slope = tl.where(defined, slope, 0.0)
        else:
            root = _sqrt(tl.abs(v) + EPS)
            g = _sign(v) * root
            slope = tl.where(v == 0, 0.0, 0.5 / root)
    else:
        g = v
        slope = tl.full(v.shape, 1.0, v.dtype)
    return g, slope


@triton.jit
def _target_size(w, WH_MODE: tl.constexpr, CLAMP_EPS: tl.constexpr):
    """f(w): w under linear, √max(w, ε) under clamped_sqrt, else √w."""
    if WH_MODE == 0:
        size = w
    elif WH_MODE == 4:
        size = _sqrt(tl.maximum(w, CLAMP_EPS))
    else:
        size = _sqrt(w)
    return size


@triton.jit
def _frame_size(v, WH_MODE: tl.constexpr):
    """A predicted size as the IoU sees it, and its derivative: v² under sqrt_output, else v."""
    if WH_MODE == 1:
        size = v * v
        slope = 2 * v
    else:
        size = v
        slope = tl.full(v.shape, 1.0, v.dtype)
    return size, slope


@triton.jit
def _load_box(ptr, stride, has, live, DT: tl.constexpr):
    """(x, y, w, h) at ptr, ptr + stride, ...; 1 in cells without an object (as torch_impl.terms)."""
    x = tl.where(has, tl.load(ptr, mask=live, other=0).to(DT), 1.0)
    y = tl.where(has, tl.load(ptr + stride, mask=live, other=0).to(DT), 1.0)
    w = tl.where(has, tl.load(ptr + 2 * stride, mask=live, other=0).to(DT), 1.0)
    h = tl.where(has, tl.load(ptr + 3 * stride, mask=live, other=0).to(DT), 1.0)
    return x, y, w, h


@triton.jit
def yolov1_kernel(
    pred_ptr,
    target_ptr,
    grad_ptr,
    partial_ptr,
    weight_ptr,
    scale_hi,
    scale_mid,
    scale_lo,
    p_sn,
    p_si,
    p_sj,
    p_sk,
    t_sn,
    t_si,
    t_sj,
    t_sk,
    S: tl.constexpr,
    B: tl.constexpr,
    C: tl.constexpr,
    FRAME_SCALE: tl.constexpr,
    WH_MODE: tl.constexpr,
    EPS_INSIDE: tl.constexpr,
    CONF_IOU: tl.constexpr,
    IOU_THROUGH: tl.constexpr,
    NOOBJ_OBJECT_FACTOR: tl.constexpr,
    RMSE_FALLBACK: tl.constexpr,
    IOU_EPS: tl.constexpr,
    SQRT_EPS: tl.constexpr,
    CLAMP_EPS: tl.constexpr,
    DISTANCE_CAP: tl.constexpr,
    W_COORD: tl.constexpr,
    W_OBJ: tl.constexpr,
    W_NOOBJ: tl.constexpr,
    W_CLS: tl.constexpr,
    PER_IMAGE_WEIGHTS: tl.constexpr,
    USE_COORD: tl.constexpr,
    USE_OBJ: tl.constexpr,
    USE_NOOBJ: tl.constexpr,
    USE_CLS: tl.constexpr,
    DT: tl.constexpr,
    GRAD_DT: tl.constexpr,
    BLOCK: tl.constexpr,
    C_PAD: tl.constexpr,
    CHANNELS_PAD: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)
    blk = tl.program_id(1)
    cell = blk * BLOCK + tl.arange(0, BLOCK)
    live = cell < S * S
    row = cell // S
    col = cell % S
    p_cell = pred_ptr + n * p_sn + row * p_si + col * p_sj
    t_cell = target_ptr + n * t_sn + row * t_si + col * t_sj
    g_cell = grad_ptr + (n * (S * S) + cell) * (C + 5 * B)
    scale = _scale(scale_hi, scale_mid, scale_lo, DT)

    if PER_IMAGE_WEIGHTS:
        w_coord = tl.load(weight_ptr + n * 4).to(DT) * scale
        w_obj = tl.load(weight_ptr + n * 4 + 1).to(DT) * scale
        w_noobj = tl.load(weight_ptr + n * 4 + 2).to(DT) * scale
        w_cls = tl.load(weight_ptr + n * 4 + 3).to(DT) * scale
    else:  # tl.full keeps a float64 weight exact (the interpreter rounds a bare assigned constant to float32)
        w_coord = tl.full([], W_COORD, DT) * scale
        w_obj = tl.full([], W_OBJ, DT) * scale
        w_noobj = tl.full([], W_NOOBJ, DT) * scale
        w_cls = tl.full([], W_CLS, DT) * scale

    has = live & (tl.load(t_cell + C * t_sk, mask=live, other=0).to(DT) == 1)

    # cls: Σ_k (q_k − p_k)² in object cells, over a (BLOCK, C_PAD) tile of the class channels.
    k = tl.arange(0, C_PAD)
    in_tile = live[:, None] & (k[None, :] < C)
    q = tl.load(t_cell[:, None] + k[None, :] * t_sk, mask=in_tile, other=0).to(DT)
    p_cls = tl.load(p_cell[:, None] + k[None, :] * p_sk, mask=in_tile, other=0).to(DT)
    diff = tl.where(has[:, None], q - p_cls, 0.0)
    cls = tl.sum(diff * diff, axis=1)
    if USE_CLS:
        tl.store(g_cell[:, None] + k[None, :], (-2 * w_cls * diff).to(GRAD_DT), mask=in_tile)
    else:
        tl.store(g_cell[:, None] + k[None, :], tl.zeros([BLOCK, C_PAD], GRAD_DT), mask=in_tile)

    tx, ty, tw, th = _load_box(t_cell + (C + 1) * t_sk, t_sk, has, live, DT)
    ftx = tx * FRAME_SCALE
    fty = ty * FRAME_SCALE

    # The responsible predictor: highest IoU, ties to the lowest index; darknet's fallback.
    best = tl.full([BLOCK], -1.0, DT)
    r = tl.zeros([BLOCK], tl.int32)
    nearest_distance = tl.full([BLOCK], DISTANCE_CAP, DT)  # only distances below the cap count
    nearest = tl.zeros([BLOCK], tl.int32)
    for b in tl.static_range(B):
        x, y, w, h = _load_box(p_cell + (C + 5 * b + 1) * p_sk, p_sk, has, live, DT)
        fw, _ = _frame_size(w, WH_MODE)
        fh, _ = _frame_size(h, WH_MODE)
        iou, _, _, _, _ = _iou(x * FRAME_SCALE, y * FRAME_SCALE, fw, fh, ftx, fty, tw, th, IOU_EPS)
        better = iou > best
        best = tl.where(better, iou, best)
        r = tl.where(better, b, r)
        if RMSE_FALLBACK:
            dx = x * FRAME_SCALE - ftx
            dy = y * FRAME_SCALE - fty
            dw = fw - tw
            dh = fh - th
            distance = _sqrt(dx * dx + dy * dy + dw * dw + dh * dh)
            closer = distance < nearest_distance
            nearest_distance = tl.where(closer, distance, nearest_distance)
            nearest = tl.where(closer, b, nearest)
    if RMSE_FALLBACK:
        r = tl.where(best > 0, r, nearest)

    # The responsible predictor's confidence and box.
    c_r = tl.zeros([BLOCK], DT)
    x_r = tl.zeros([BLOCK], DT)
    y_r = tl.zeros([BLOCK], DT)
    w_r = tl.zeros([BLOCK], DT)
    h_r = tl.zeros([BLOCK], DT)
    for b in tl.static_range(B):
        is_r = r == b
        c_r = tl.where(is_r, tl.load(p_cell + (C + 5 * b) * p_sk, mask=live, other=0).to(DT), c_r)
        x, y, w, h = _load_box(p_cell + (C + 5 * b + 1) * p_sk, p_sk, has, live, DT)
        x_r = tl.where(is_r, x, x_r)
        y_r = tl.where(is_r, y, y_r)
        w_r = tl.where(is_r, w, w_r)
        h_r = tl.where(is_r, h, h_r)

    fw_r, chain_w = _frame_size(w_r, WH_MODE)
    fh_r, chain_h = _frame_size(h_r, WH_MODE)
    iou_r, di_x, di_y, di_w, di_h = _iou(x_r * FRAME_SCALE, y_r * FRAME_SCALE, fw_r, fh_r, ftx, fty, tw, th, IOU_EPS)

    # coord: (x − x̂_r)² + (y − ŷ_r)² + (f(w) − g(ŵ_r))² + (f(h) − g(ĥ_r))².
    g_w, slope_w = _size_term(w_r, WH_MODE, EPS_INSIDE, SQRT_EPS, CLAMP_EPS)
    g_h, slope_h = _size_term(h_r, WH_MODE, EPS_INSIDE, SQRT_EPS, CLAMP_EPS)
    e_x = tx - x_r
    e_y = ty - y_r
    e_w = _target_size(tw, WH_MODE, CLAMP_EPS) - g_w
    e_h = _target_size(th, WH_MODE, CLAMP_EPS) - g_h
    coord = tl.where(has, e_x * e_x + e_y * e_y + e_w * e_w + e_h * e_h, 0.0)
    if USE_COORD:
        d_x = -2 * w_coord * e_x
        d_y = -2 * w_coord * e_y
        d_w = -2 * w_coord * e_w * slope_w
        d_h = -2 * w_coord * e_h * slope_h
    else:
        d_x = tl.zeros([BLOCK], DT)
        d_y = tl.zeros([BLOCK], DT)
        d_w = tl.zeros([BLOCK], DT)
        d_h = tl.zeros([BLOCK], DT)

    # obj: (c* − ĉ_r)², c* = IoU_r or 1.
    if CONF_IOU:
        obj_diff = iou_r - c_r
    else:
        obj_diff = 1.0 - c_r
    obj = tl.where(has, obj_diff * obj_diff, 0.0)
    if USE_OBJ:
        d_c = -2 * w_obj * obj_diff
    else:
        d_c = tl.zeros([BLOCK], DT)
    if CONF_IOU and IOU_THROUGH and USE_OBJ:
        through = 2 * w_obj * obj_diff
        d_x += through * di_x * FRAME_SCALE
        d_y += through * di_y * FRAME_SCALE
        d_w += through * di_w * chain_w
        d_h += through * di_h * chain_h

    # noobj (ĉ² in empty cells; ρ ĉ² for the object cells' other predictors, ρ = NOOBJ_OBJECT_FACTOR),
    # and every predictor's gradient.
    noobj = tl.zeros([BLOCK], DT)
    for b in tl.static_range(B):
        conf = tl.load(p_cell + (C + 5 * b) * p_sk, mask=live, other=0).to(DT)
        answers = has & (r == b)
        empty = live & ~has
        if NOOBJ_OBJECT_FACTOR != 0:
            other = live & has & ~answers
            rho = tl.full([], NOOBJ_OBJECT_FACTOR, DT)
            pays = tl.where(empty, 1.0, tl.where(other, rho, 0.0)).to(DT)
        else:
            pays = tl.where(empty, 1.0, 0.0).to(DT)
        noobj += tl.where(pays != 0, pays * conf * conf, 0.0)
        g_b = g_cell + C + 5 * b
        if USE_NOOBJ:
            d_conf = tl.where(pays != 0, 2 * w_noobj * pays * conf, 0.0)
        else:
            d_conf = tl.zeros([BLOCK], DT)
        tl.store(g_b, tl.where(answers, d_c, d_conf).to(GRAD_DT), mask=live)
        tl.store(g_b + 1, tl.where(answers, d_x, 0.0).to(GRAD_DT), mask=live)
        tl.store(g_b + 2, tl.where(answers, d_y, 0.0).to(GRAD_DT), mask=live)
        tl.store(g_b + 3, tl.where(answers, d_w, 0.0).to(GRAD_DT), mask=live)
        tl.store(g_b + 4, tl.where(answers, d_h, 0.0).to(GRAD_DT), mask=live)

    # 0 · v over the whole prediction: 0, or NaN where any value is NaN or ±inf, so that a
    # non-finite prediction anywhere makes the total non-finite (the loads hit the cache).
    channel = tl.arange(0, CHANNELS_PAD)
    in_row = live[:, None] & (channel[None, :] < C + 5 * B)
    row_values = tl.load(p_cell[:, None] + channel[None, :] * p_sk, mask=in_row, other=0).to(DT)
    guard = tl.sum(row_values * 0.0, axis=1)

    out = partial_ptr + (n * tl.num_programs(1) + blk) * 5
    coord_sum = tl.sum(coord, axis=0)
    obj_sum = tl.sum(obj, axis=0)
    noobj_sum = tl.sum(noobj, axis=0)
    cls_sum = tl.sum(cls, axis=0)
    tl.store(out, coord_sum)
    tl.store(out + 1, obj_sum)
    tl.store(out + 2, noobj_sum)
    tl.store(out + 3, cls_sum)
    # The weighted sum of the terms the gradient includes (a weight left out is 0 here).
    weighted = w_coord * coord_sum + w_obj * obj_sum + w_noobj * noobj_sum + w_cls * cls_sum
    tl.store(out + 4, weighted + tl.sum(guard, axis=0))


def block_size(spec: LossSpec) -> int:
    """Cells per program: the grid's cells rounded up to a power of two, at most MAX_BLOCK."""
    return min(triton.next_power_of_2(spec.S * spec.S), MAX_BLOCK)


def constexprs(spec: LossSpec, dtype: torch.dtype, weights: KernelWeights) -> dict:
    """The kernel's compile-time arguments: the spec's knobs (upper-cased fields of
    :class:`~yolov1_loss.torch_impl.kernel_args.Knobs`), which terms are used, the weights that are
    numbers (else they come per image from a tensor), the dtypes and the block size."""
    w_coord, w_obj, w_noobj, w_cls = weights.constant
    use_coord, use_obj, use_noobj, use_cls = weights.used
    return dict(
        **{name.upper(): value for name, value in kernel_knobs(spec)._asdict().items()},
        W_COORD=w_coord,
        W_OBJ=w_obj,
        W_NOOBJ=w_noobj,
        W_CLS=w_cls,
        PER_IMAGE_WEIGHTS=weights.per_image is not None,
        USE_COORD=use_coord,
        USE_OBJ=use_obj,
        USE_NOOBJ=use_noobj,
        USE_CLS=use_cls,
        DT=TL_DTYPES[compute_dtype(dtype)],
        GRAD_DT=TL_DTYPES[dtype],
        BLOCK=block_size(spec),
        C_PAD=triton.next_power_of_2(spec.C),  # tiles of the class channels, and of a whole row
        CHANNELS_PAD=triton.next_power_of_2(spec.pred_channels),
    )


def interpreted() -> bool:
    """Whether the kernel was built for Triton's interpreter (TRITON_INTERPRET=1 at import)."""
    return not isinstance(yolov1_kernel, triton.runtime.JITFunction)


def loss_and_grad(
    pred: Tensor, target: Tensor, spec: LossSpec, weights: Weights, scale: float
) -> tuple[Tensor, Tensor]:
    """Each image's per-block partial sums (N, blocks, 5) in the compute dtype, of (coord, obj, noobj,
    cls, scale · Σ_k w_k · term_k), and d(scale · Σ_k w_k · term_k)/d pred (N, S, S, C + 5B) in
    ``pred``'s dtype (written once, in the bytes the caller will keep). One launch.

    ``pred`` (N, S, S, C + 5B) and ``target`` (N, S, S, C + 5), any strides and floating dtypes,
    on a CUDA device (or on the CPU under the interpreter). ``weights`` as
    :data:`~yolov1_loss.torch_impl.kernel_args.Weights`; ``scale`` is a runtime argument, so the
    reduction's 1/N never compiles the kernel again.
    """
    if pred.device.type != "cuda" and not interpreted():
        raise ValueError(
            f"the Triton kernel needs CUDA tensors (or TRITON_INTERPRET=1 for CPU ones), got {pred.device}"
        )
    dt = compute_dtype(pred.dtype)
    n_images = pred.shape[0]
    block = block_size(spec)
    n_blocks = triton.cdiv(spec.S * spec.S, block)
    grad = torch.empty((n_images, spec.S, spec.S, spec.pred_channels), dtype=pred.dtype, device=pred.device)
    partial = torch.empty((n_images, n_blocks, 5), dtype=dt, device=pred.device)
    if n_images == 0:
        return partial, grad
    arranged = kernel_weights(weights, n_images)
    yolov1_kernel[(n_images, n_blocks)](
        pred,
        target,
        grad,
        partial,
        partial if arranged.per_image is None else arranged.per_image,
        *scale_parts(scale),
        *pred.stride(),
        *target.stride(),
        **constexprs(spec, pred.dtype, arranged),
        num_warps=max(1, min(block // 32, 4)),
    )
    return partial, grad


@triton.jit
def _add_blocks(partial_ptr, n, live, n_blocks, coord, obj, noobj, cls, total):
    """The running sums plus every block's partials of the images ``n`` (where ``live``)."""
    for blk in range(n_blocks):
        at = partial_ptr + (n.to(tl.int64) * n_blocks + blk) * 5
        coord += tl.load(at, mask=live, other=0)
        obj += tl.load(at + 1, mask=live, other=0)
        noobj += tl.load(at + 2, mask=live, other=0)
        cls += tl.load(at + 3, mask=live, other=0)
        total += tl.load(at + 4, mask=live, other=0)
    return coord, obj, noobj, cls, total


@triton.jit
def outputs_kernel(
    partial_ptr,
    coord_ptr,
    obj_ptr,
    noobj_ptr,
    cls_ptr,
    total_ptr,
    n_images,
    n_blocks,
    scale_hi,
    scale_mid,
    scale_lo,
    PER_IMAGE: tl.constexpr,
    TILE: tl.constexpr,
    DT: tl.constexpr,
    OUT_DT: tl.constexpr,
):
    """The five outputs from the partials (N, blocks, 5): summed over the blocks (and, unless
    PER_IMAGE, over the images), the components times ``scale`` (the weighted column has it
    already), written in OUT_DT. The order of the additions is fixed (a tile of images at a time,
    then a tree within the tile): the result is bitwise the same on every run, with no atomics."""
    images = tl.program_id(0) * TILE + tl.arange(0, TILE)
    scale = _scale(scale_hi, scale_mid, scale_lo, DT)
    coord = tl.zeros([TILE], DT)
    obj = tl.zeros([TILE], DT)
    noobj = tl.zeros([TILE], DT)
    cls = tl.zeros([TILE], DT)
    total = tl.zeros([TILE], DT)
    if PER_IMAGE:
        live = images < n_images
        coord, obj, noobj, cls, total = _add_blocks(partial_ptr, images, live, n_blocks, coord, obj, noobj, cls, total)
        tl.store(coord_ptr + images, (coord * scale).to(OUT_DT), mask=live)
        tl.store(obj_ptr + images, (obj * scale).to(OUT_DT), mask=live)
        tl.store(noobj_ptr + images, (noobj * scale).to(OUT_DT), mask=live)
        tl.store(cls_ptr + images, (cls * scale).to(OUT_DT), mask=live)
        tl.store(total_ptr + images, total.to(OUT_DT), mask=live)
    else:
        for start in range(0, n_images, TILE):
            n = images + start
            coord, obj, noobj, cls, total = _add_blocks(
                partial_ptr, n, n < n_images, n_blocks, coord, obj, noobj, cls, total
            )
        tl.store(coord_ptr, (tl.sum(coord, axis=0) * scale).to(OUT_DT))
        tl.store(obj_ptr, (tl.sum(obj, axis=0) * scale).to(OUT_DT))
        tl.store(noobj_ptr, (tl.sum(noobj, axis=0) * scale).to(OUT_DT))
        tl.store(cls_ptr, (tl.sum(cls, axis=0) * scale).to(OUT_DT))
        tl.store(total_ptr, tl.sum(total, axis=0).to(OUT_DT))


# Images an outputs program adds at a time. Under a summed reduction one program walks the whole
# batch, in N / OUTPUT_TILE dependent steps: on an H200 at N = 65536 the step took 1.0 ms of which
# the cell kernel alone was 0.55 ms, with 256 steps of 256 images; 32 steps of 2048 (8 warps).
OUTPUT_TILE = 2048
OUTPUT_WARPS = 8


def outputs(partial: Tensor, spec: LossSpec, scale: float, dtype: torch.dtype) -> tuple[Tensor, ...]:
    """The five outputs from :func:`loss_and_grad`'s partials, in ``dtype``: one launch of
    :func:`outputs_kernel` (one program summing every image, or one per tile of images under
    reduction='none'), writing five separate tensors allocated by shape alone."""
    n_images, n_blocks, _ = partial.shape
    per_image = spec.reduction == "none"
    shape = (n_images,) if per_image else ()
    values = [torch.empty(shape, dtype=dtype, device=partial.device) for _ in range(5)]
    programs = max(1, triton.cdiv(n_images, OUTPUT_TILE)) if per_image else 1
    outputs_kernel[(programs,)](
        partial, *values, n_images, n_blocks, *scale_parts(scale),
        PER_IMAGE=per_image, TILE=OUTPUT_TILE, DT=TL_DTYPES[partial.dtype], OUT_DT=TL_DTYPES[dtype],
        num_warps=OUTPUT_WARPS,
    )  # fmt: skip
    return tuple(values)
