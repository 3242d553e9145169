"""The fused loss-and-gradient as one compiled loop over the cells, for CPU tensors (numba).

:func:`run` hands zero-copy NumPy views of the tensors to :func:`cells_kernel`, which
visits each cell once: it reads the cell's prediction and target rows, adds the cell's four terms
to its image's sums and writes the cell's row of the gradient of ``Σ_k w_k · term_k``; it also
reduces and scales the images' sums into the loss's five values (at N = 1 the work around the
kernel, not the cells, is what a call costs). Every knob
is a plain number argument, so one compiled function serves every dialect (one specialisation
per dtype, float32 and float64). The arithmetic is float64 whatever the dtype: a float32 input
is widened exactly, and only the stored results are rounded to float32 (so float32 results are
the float64 ones, rounded once). The class term's sum alone may be reassociated by the compiler,
so that it vectorises.

The math is the spec's, with its conventions at kinks, like ``reference/`` and the Triton kernel:
ties of edges split half and half, the clamp of an overlap passes the gradient at 0, sign(0) = 0,
ties of IoUs go to the lowest index, the IoU and its gradient are 0 where the union is 0, and
under wh_mode='sqrt' a zero size gives the infinities and NaN of IEEE arithmetic (hence
``error_model="numpy"``: a division by zero is not an exception).

Compiling takes about 1.5–3 s on the first call with each dtype (here, cold); numba's cache stores
the machine code beside this module (or in numba's user cache directory), so later processes load
it in a fraction of a second. Where neither directory is writable, each process compiles afresh.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from yolov1_loss.reference import LossSpec
from yolov1_loss.torch_impl.dtypes import compute_dtype
from yolov1_loss.torch_impl.kernel_args import (
    CLAMPED_SQRT,
    LINEAR,
    SIGNED_SQRT,
    SQRT,
    SQRT_OUTPUT,
    Weights,
    kernel_knobs,
    kernel_weights,
)

COORD, OBJ, NOOBJ, CLS, WEIGHTED = range(5)  # rows of the values (and columns of the weights), as reference.COMPONENTS
NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}

JIT_OPTIONS = dict(nogil=True, error_model="numpy")
jit = numba.njit(**JIT_OPTIONS)  # the helpers: compiled with the kernel, on its first call
inlined_jit = numba.njit(inline="always", **JIT_OPTIONS)  # helpers inlined into their callers' numba IR


def cached_jit(function):
    """``numba.njit`` with JIT_OPTIONS, its machine code (helpers included) cached on disk where
    numba finds a writable directory for it; where it finds none (numba raises RuntimeError),
    compiled in each process."""
    try:
        return numba.njit(cache=True, **JIT_OPTIONS)(function)
    except RuntimeError:
        return numba.njit(**JIT_OPTIONS)(function)


@jit
def _sign(v):
    """sign(v): −1, 0 or 1 (NaN for NaN), as np.sign (whose typing compiles several times slower)."""
    if v > 0:
        return 1.0
    if v < 0:
        return -1.0
    return v * 0.0


@jit
def _overlap(p_centre, p_size, t_centre, t_size):
    """Overlap length of two intervals given as centre and size, and its derivatives by the
    first one's centre and size: the edge that reaches min/max gets all, none, or half on a tie;
    the clamp passes the gradient where the raw overlap is exactly 0. (Selects, not branches: the
    responsible predictor's choice runs this on random data, where branches mispredict.)"""
    p_lo, p_hi = p_centre - p_size / 2, p_centre + p_size / 2
    t_lo, t_hi = t_centre - t_size / 2, t_centre + t_size / 2
    raw = min(p_hi, t_hi) - max(p_lo, t_lo)
    d_hi = 1.0 if p_hi < t_hi else (0.5 if p_hi == t_hi else 0.0)
    d_lo = 1.0 if p_lo > t_lo else (0.5 if p_lo == t_lo else 0.0)
    passes = 1.0 if raw >= 0 else 0.0
    return max(raw, 0.0), passes * (d_hi - d_lo), passes * (d_hi + d_lo) / 2


# Inlined (numba IR), so that where only the IoU is used its derivatives are not computed.
@inlined_jit
def _iou(px, py, pw, ph, tx, ty, tw, th, eps):
    """IoU of (px, py, pw, ph) with (tx, ty, tw, th), centre-size boxes, and its derivatives by
    px, py, pw, ph. ``union = |pw ph| + |tw th| − inter + eps``; all 0 where the union is not > 0."""
    iw, diw_dx, diw_dw = _overlap(px, pw, tx, tw)
    ih, dih_dy, dih_dh = _overlap(py, ph, ty, th)
    inter = iw * ih
    union = abs(pw * ph) + abs(tw * th) - inter + eps
    defined = union > 0
    u = union if defined else 1.0
    d_inter = (u + inter) / u**2 if defined else 0.0  # inter is above and below the bar
    d_area = -inter / u**2 if defined else 0.0
    s = _sign(pw * ph)  # d|v|/dv, 0 at 0
    return (
        inter / u if defined else 0.0,
        d_inter * diw_dx * ih,
        d_inter * dih_dy * iw,
        d_inter * diw_dw * ih + d_area * s * ph,
        d_inter * dih_dh * iw + d_area * s * pw,
    )


@jit
def _frame_size(v, wh_mode):
    """A predicted size as the IoU sees it, and its derivative: v² under sqrt_output, else v."""
    if wh_mode == SQRT_OUTPUT:
        return v * v, 2 * v
    return v, 1.0


@jit
def _target_size(w, wh_mode, clamp_eps):
    """f(w): √w under the square-root wh_modes, √max(w, ε) under clamped_sqrt, w under 'linear'."""
    if wh_mode == CLAMPED_SQRT:
        return np.sqrt(max(w, clamp_eps))
    return w if wh_mode == LINEAR else np.sqrt(w)


@jit
def _pred_size(v, wh_mode, eps_inside, eps, clamp_eps):
    """g(v) and g'(v) for a predicted size v. Under 'sqrt', g'(0) = +inf; under signed_sqrt the
    derivative of sign(v) at 0 (and of |v + ε| at v = −ε, ε inside) is 0; under clamped_sqrt,
    g = √max(v, ε) has g' = 1/(2√v) from v = ε up (the clamp passes the gradient there), 0 below."""
    if wh_mode == SQRT:
        root = np.sqrt(v)
        return root, 0.5 / root
    if wh_mode == CLAMPED_SQRT:
        if v >= clamp_eps:
            root = np.sqrt(v)
            return root, 0.5 / root
        return np.sqrt(clamp_eps), 0.0
    if wh_mode != SIGNED_SQRT:
        return v, 1.0
    if not eps_inside:
        root = np.sqrt(abs(v) + eps)
        return _sign(v) * root, (0.0 if v == 0 else 0.5 / root)
    u = abs(v + eps)
    if not u > 0:
        return 0.0, 0.0
    root = np.sqrt(u)
    return _sign(v) * root, _sign(v) * _sign(v + eps) * 0.5 / root


@jit
def _responsible(pred, row, tbox, C, B, k, wh_mode, rmse_fallback, iou_eps, cap):
    """The responsible predictor of the object cell ``pred[row]``: the highest IoU with ``tbox``
    (x, y, w, h in the IoU frame, where x, y are scaled by ``k``), ties to the lowest index. With
    ``rmse_fallback``, when every IoU is 0: the predictor nearest the target (Euclidean distance of
    the frame boxes) among those nearer than ``cap``, ties to the lowest index; predictor 0 if none is."""
    tx, ty, tw, th = tbox
    best, r = -1.0, 0
    nearest_distance, nearest = cap, 0  # only distances below the cap count
    for b in range(B):
        at = C + 5 * b
        x, y = k * np.float64(pred[row, at + 1]), k * np.float64(pred[row, at + 2])
        w, _ = _frame_size(np.float64(pred[row, at + 3]), wh_mode)
        h, _ = _frame_size(np.float64(pred[row, at + 4]), wh_mode)
        iou = _iou(x, y, w, h, tx, ty, tw, th, iou_eps)[0]  # (inlined: the derivatives are dropped)
        if iou > best:
            best, r = iou, b
        if rmse_fallback:
            distance = np.sqrt((x - tx) ** 2 + (y - ty) ** 2 + (w - tw) ** 2 + (h - th) ** 2)
            if distance < nearest_distance:
                nearest_distance, nearest = distance, b
    if rmse_fallback and not best > 0:
        return nearest
    return r


@numba.njit(fastmath={"reassoc"}, **JIT_OPTIONS)  # not inlined: inlining would drop fastmath
def _classes(pred, target, grad, row, C, weight, use):
    """Σ_j (q_j − p_j)² of cell ``row``, writing −2 w (q_j − p_j) into its gradient row (0 if not
    ``use``). The sum may be reassociated, so that it vectorises: this loop alone."""
    cls = 0.0
    for j in range(C):
        diff = np.float64(target[row, j]) - np.float64(pred[row, j])
        cls += diff * diff
        grad[row, j] = -2 * weight * diff if use else 0.0
    return cls


# The cells' functions are inlined into the kernel's loop: a call there (with its array
# arguments) costs as much as an empty cell's work.
@inlined_jit
def _empty_cell(pred, grad, row, C, B, w_noobj, use_noobj):
    """The cell ``row`` without an object: Σ_b ĉ_b², and its gradient row (2 w ĉ_b at the
    confidences, 0 elsewhere)."""
    noobj = 0.0
    for j in range(C + 5 * B):  # loops, not slice assignments: those compile slowly
        grad[row, j] = 0.0
    for b in range(B):
        conf = np.float64(pred[row, C + 5 * b])
        noobj += conf * conf
        if use_noobj:
            grad[row, C + 5 * b] = 2 * w_noobj * conf
    return noobj


@inlined_jit
def _object_cell(
    pred,
    target,
    grad,
    row,
    C,
    B,
    weights,
    w_row,
    used,
    k,
    wh_mode,
    eps_inside,
    conf_iou,
    iou_through,
    noobj_factor,
    rmse_fallback,
    iou_eps,
    sqrt_eps,
    clamp_eps,
    cap,
):
    """The cell ``row`` with an object: its (coord, obj, noobj, cls), and its gradient row of
    Σ_k w_k term_k, w = ``weights[w_row]`` (terms whose ``used`` flag is off contribute nothing to
    it, not even 0 · ∞)."""
    cls = _classes(pred, target, grad, row, C, weights[w_row, CLS], used[CLS])

    tx, ty = np.float64(target[row, C + 1]), np.float64(target[row, C + 2])
    tw, th = np.float64(target[row, C + 3]), np.float64(target[row, C + 4])
    r = _responsible(pred, row, (k * tx, k * ty, tw, th), C, B, k, wh_mode, rmse_fallback, iou_eps, cap)

    at_r = C + 5 * r
    c_r = np.float64(pred[row, at_r])
    x, y = np.float64(pred[row, at_r + 1]), np.float64(pred[row, at_r + 2])
    w_r, h_r = np.float64(pred[row, at_r + 3]), np.float64(pred[row, at_r + 4])

    g_w, slope_w = _pred_size(w_r, wh_mode, eps_inside, sqrt_eps, clamp_eps)
    g_h, slope_h = _pred_size(h_r, wh_mode, eps_inside, sqrt_eps, clamp_eps)
    e_x, e_y = tx - x, ty - y
    e_w, e_h = _target_size(tw, wh_mode, clamp_eps) - g_w, _target_size(th, wh_mode, clamp_eps) - g_h
    coord = e_x * e_x + e_y * e_y + e_w * e_w + e_h * e_h
    d_x = d_y = d_w = d_h = 0.0
    if used[COORD]:
        w_coord = weights[w_row, COORD]
        d_x, d_y = -2 * w_coord * e_x, -2 * w_coord * e_y
        d_w, d_h = -2 * w_coord * e_w * slope_w, -2 * w_coord * e_h * slope_h

    c_star, di_x, di_y, di_w, di_h, chain_w, chain_h = 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0
    if conf_iou:
        fw, chain_w = _frame_size(w_r, wh_mode)
        fh, chain_h = _frame_size(h_r, wh_mode)
        c_star, di_x, di_y, di_w, di_h = _iou(k * x, k * y, fw, fh, k * tx, k * ty, tw, th, iou_eps)
    obj_diff = c_star - c_r
    w_obj = weights[w_row, OBJ]
    d_c = -2 * w_obj * obj_diff if used[OBJ] else 0.0
    if conf_iou and iou_through and used[OBJ]:
        d_x += 2 * w_obj * obj_diff * di_x * k
        d_y += 2 * w_obj * obj_diff * di_y * k
        d_w += 2 * w_obj * obj_diff * di_w * chain_w
        d_h += 2 * w_obj * obj_diff * di_h * chain_h

    noobj = 0.0
    for b in range(B):
        at = C + 5 * b
        if b == r:
            grad[row, at], grad[row, at + 1], grad[row, at + 2] = d_c, d_x, d_y
            grad[row, at + 3], grad[row, at + 4] = d_w, d_h
            continue
        conf = np.float64(pred[row, at])
        if noobj_factor != 0:  # it pays ρ · ĉ², ρ = noobj_factor (0: it does not pay)
            noobj += noobj_factor * conf * conf
        grad[row, at] = 2 * weights[w_row, NOOBJ] * noobj_factor * conf if noobj_factor != 0 and used[NOOBJ] else 0.0
        for j in range(at + 1, at + 5):
            grad[row, j] = 0.0
    return coord, obj_diff * obj_diff, noobj, cls


@cached_jit
def cells_kernel(
    pred,
    target,
    grad,
    values,
    weights,
    used,
    scale,
    S,
    B,
    C,
    k,
    wh_mode,
    eps_inside,
    conf_iou,
    iou_through,
    noobj_factor,
    rmse_fallback,
    iou_eps,
    sqrt_eps,
    clamp_eps,
    cap,
):
    """Every cell once: the loss's five values (the images' terms reduced and scaled) and the
    gradient of the weighted sum.

    pred (N, S, S, C + 5B), target (N, S, S, C + 5), grad (N, S, S, C + 5B) written in full:
    C-contiguous, of one dtype (seen as rows of cells here, at no cost). values (5, N) or (5, 1),
    of any dtype, written: rows coord, obj, noobj, cls (each image's unweighted term times
    ``scale``) and the weighted sum Σ_k w_k · term_k of the used terms (NaN where the image's
    prediction holds a NaN or ±inf anywhere); one column per image, or one column for the sum
    over the images (added in float64 in image order, then scaled). weights (1 or N, 4) float64,
    ``scale`` already in them: one row for every image or one per image; used (4,) bool: which
    terms the weighted sum (and so the gradient) includes.
    The arguments after ``scale``: :class:`~yolov1_loss.torch_impl.kernel_args.Knobs`, in its order.
    Rows are indexed in place, never sliced: a view per cell would cost reference counting.
    """
    cells_per_image = S * S
    n_images = pred.shape[0]
    pred = pred.reshape((n_images * cells_per_image, pred.shape[3]))
    target = target.reshape((n_images * cells_per_image, target.shape[3]))
    grad = grad.reshape((n_images * cells_per_image, grad.shape[3]))
    per_image = values.shape[1] != 1  # (with one image, its own values are their sum)
    totals = np.zeros(5)
    for n in range(n_images):
        w_row = n if weights.shape[0] > 1 else 0
        coord_sum = obj_sum = noobj_sum = cls_sum = 0.0
        finite = True
        for row in range(n * cells_per_image, (n + 1) * cells_per_image):
            for j in range(pred.shape[1]):  # v − v is 0, or NaN where v is NaN or ±inf (no fastmath)
                finite &= pred[row, j] - pred[row, j] == 0  # (no running sum: that chain was the loop's cost)
            if target[row, C] == 1:
                coord, obj, noobj, cls = _object_cell(
                    pred,
                    target,
                    grad,
                    row,
                    C,
                    B,
                    weights,
                    w_row,
                    used,
                    k,
                    wh_mode,
                    eps_inside,
                    conf_iou,
                    iou_through,
                    noobj_factor,
                    rmse_fallback,
                    iou_eps,
                    sqrt_eps,
                    clamp_eps,
                    cap,
                )
                coord_sum += coord
                obj_sum += obj
                noobj_sum += noobj
                cls_sum += cls
            else:
                noobj_sum += _empty_cell(pred, grad, row, C, B, weights[w_row, NOOBJ], used[NOOBJ])
        weighted = 0.0 if finite else np.nan  # a non-finite prediction anywhere makes the total NaN
        for j, term in enumerate((coord_sum, obj_sum, noobj_sum, cls_sum)):
            if used[j]:
                weighted += weights[w_row, j] * term
        image = (coord_sum, obj_sum, noobj_sum, cls_sum)
        for j in range(4):
            if per_image:
                values[j, n] = scale * image[j]
            else:
                totals[j] += image[j]
        if per_image:
            values[WEIGHTED, n] = weighted
        else:
            totals[WEIGHTED] += weighted
    if not per_image:
        for j in range(4):
            values[j, 0] = scale * totals[j]
        values[WEIGHTED, 0] = totals[WEIGHTED]


# --- the call from torch ----------------------------------------------------------------------


# The kernel's arguments for the spec's own weights, by (id(spec), scale). Keyed by identity, not
# by the spec's value: hashing a LossSpec (all its fields, in Python) cost 3% of a whole step at
# N = 1. Each entry holds its spec, so no other spec can take that id while the entry is there.
_SPEC_ARGUMENTS: dict[tuple, tuple] = {}
SPEC_ARGUMENTS_KEPT = 64


def _arguments(spec: LossSpec, weights: Weights | None, n_images: int, scale: float) -> tuple:
    """The kernel's arguments after its four arrays: ``weights`` (1 or N, 4) float64 times
    ``scale`` (one row for numbers, one per image when any weight is an (N,) tensor), ``used``
    (4,) bool, ``scale`` and the knobs. ``weights`` None: the spec's own, whose arguments are made
    once per spec and scale, not on every call (at N = 1 making the arrays costs as much as the
    kernel's cells); the kernel only reads them (left writable: numba compiles read-only arrays
    separately)."""
    if weights is not None:
        constant, used, per_image = kernel_weights(weights, n_images)
        rows = np.array([constant]) if per_image is None else per_image.numpy()
        return rows * scale, np.array(used), scale, *kernel_knobs(spec)
    key = (id(spec), scale)
    entry = _SPEC_ARGUMENTS.get(key)
    if entry is None:
        if len(_SPEC_ARGUMENTS) >= SPEC_ARGUMENTS_KEPT:
            _SPEC_ARGUMENTS.clear()
        entry = _SPEC_ARGUMENTS[key] = (spec, _arguments(spec, spec.weights(), n_images, scale))
    return entry[1]


def _array(x: Tensor, dtype: torch.dtype) -> np.ndarray:
    """``x`` as a C-contiguous NumPy array of ``dtype``: a view when it already is one."""
    if x.dtype != dtype or not x.is_contiguous():
        x = x.detach().to(dtype).contiguous()
    return x.numpy(force=True)  # force: detached, in one call


def run(
    pred: Tensor, target: Tensor, spec: LossSpec, weights: Weights | None, scale: float
) -> tuple[tuple[Tensor, ...], Tensor]:
    """The five outputs and the gradient, as :data:`~yolov1_loss.torch_impl.fused.Backend` gives
    them, from one call of :func:`cells_kernel`: (coord, obj, noobj, cls, total), five tensors of
    ``pred``'s dtype, 0-dim or (N,) under reduction='none', the components times ``scale``; and
    d(scale · Σ_k w_k · term_k)/d pred (N, S, S, C + 5B) in the compute dtype (float64 for
    float64, else float32).

    ``pred`` (N, S, S, C + 5B) and ``target`` (N, S, S, C + 5), CPU tensors of any floating dtypes
    and strides (copied to the compute dtype and contiguous rows only where they are not).
    ``weights`` as :data:`~yolov1_loss.torch_impl.kernel_args.Weights`, or None for the spec's own.
    """
    dt = compute_dtype(pred.dtype)
    shape, np_dtype = pred.shape, NUMPY_DTYPES[dt]
    n_images = shape[0]
    per_image = spec.reduction == "none"
    # Allocated by NumPy and shared with torch: cheaper than torch.empty and .numpy() at N = 1.
    values = np.empty((5, n_images) if per_image else (5,), dtype=np_dtype)
    grad = np.empty(shape, dtype=np_dtype)
    cells_kernel(
        _array(pred, dt),
        _array(target, dt),
        grad,
        values.reshape(5, n_images if per_image else 1),
        *_arguments(spec, weights, n_images, scale),
    )
    # Five tensors, not views of one: an output may then be modified in place (loss /= k).
    outputs = tuple(
        map(torch.from_numpy, (values[0, ...], values[1, ...], values[2, ...], values[3, ...], values[4, ...]))
    )
    if pred.dtype != dt:
        outputs = tuple(v.to(pred.dtype) for v in outputs)
    return outputs, torch.from_numpy(grad)
