"""Input checks (docs/spec.md, "Refused inputs"). Every refusal is a ValueError naming what is wrong and where."""

from __future__ import annotations

import numpy as np

from yolov1_loss.reference.spec import SQRT_TARGET_MODES, LossSpec

BOX_FIELDS = ("confidence", "x", "y", "w", "h")
TARGET_FIELDS = ("objectness", "x", "y", "w", "h")


def pred_channel_name(k: int, C: int) -> str:
    """What channel k of a canonical prediction cell holds, e.g. 'predictor 1 w'."""
    if k < C:
        return f"class {k}"
    b, field = divmod(k - C, 5)
    return f"predictor {b} {BOX_FIELDS[field]}"


def target_channel_name(k: int, C: int) -> str:
    """What channel k of a canonical target cell holds, e.g. 'objectness'."""
    return f"class {k}" if k < C else TARGET_FIELDS[k - C]


def _as_cells(x, name: str, channels: int, spec: LossSpec) -> np.ndarray:
    """A float64 copy of ``x`` shaped (N, S, S, channels), or a ValueError about its values or shape."""
    try:
        given = np.asarray(x)
        complex_dtype = given.dtype.kind == "c"
        arr = None if complex_dtype else np.array(given, dtype=np.float64)  # a copy: the input is never touched
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: cannot be read as an array of real numbers ({err})") from None
    if complex_dtype:  # (float64 would drop the imaginary parts, with only a warning)
        raise ValueError(f"{name}: complex values (dtype {given.dtype}); inputs must be real numbers")
    S = spec.S
    if arr.ndim == 4 and arr.shape[1:] == (S, S, channels):
        return arr
    if arr.ndim == 2 and arr.shape[1] == S * S * channels:
        return arr.reshape(arr.shape[0], S, S, channels)
    raise ValueError(
        f"{name}: expected shape (N, {S}, {S}, {channels}) or (N, {S * S * channels}) "
        f"for S={S}, B={spec.B}, C={spec.C}, got {arr.shape}"
    )


def _first(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _refuse_non_finite(arr: np.ndarray, name: str, channel_name) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        n, i, j, k = _first(bad)
        raise ValueError(f"{name}[{n}, {i}, {j}]: {channel_name(k)} is {arr[n, i, j, k]}; inputs must be finite")


def check_inputs(pred, target, spec: LossSpec) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 copies of (pred, target), shaped (N, S, S, C + 5B) and (N, S, S, C + 5).

    Refuses (ValueError): a wrong rank or last dimension for S, B, C; batch sizes that differ;
    NaN or infinity; objectness other than 0 or 1; under a square-root wh_mode, a negative
    target w or h in an object cell; under wh_mode='sqrt', a negative predicted w or h of any
    predictor in an object cell. An empty batch (N = 0) is valid.
    """
    C = spec.C
    pred = _as_cells(pred, "pred", spec.pred_channels, spec)
    target = _as_cells(target, "target", spec.target_channels, spec)
    if pred.shape[0] != target.shape[0]:
        raise ValueError(f"pred has {pred.shape[0]} images but target has {target.shape[0]}")
    _refuse_non_finite(pred, "pred", lambda k: pred_channel_name(k, C))
    _refuse_non_finite(target, "target", lambda k: target_channel_name(k, C))

    o = target[..., C]
    not_binary = (o != 0) & (o != 1)
    if not_binary.any():
        n, i, j = _first(not_binary)
        raise ValueError(f"target[{n}, {i}, {j}]: objectness must be 0 or 1, got {o[n, i, j]}")

    has_object = o == 1
    if spec.wh_mode in SQRT_TARGET_MODES:
        sizes = target[..., C + 3 : C + 5]
        negative = has_object[..., None] & (sizes < 0)
        if negative.any():
            n, i, j, k = _first(negative)
            raise ValueError(
                f"target[{n}, {i}, {j}]: {'wh'[k]} must be >= 0 under wh_mode={spec.wh_mode!r} "
                f"(its square root is taken), got {sizes[n, i, j, k]}"
            )
    if spec.wh_mode == "sqrt":
        sizes = pred[..., C:].reshape(*pred.shape[:3], spec.B, 5)[..., 3:5]
        negative = has_object[..., None, None] & (sizes < 0)
        if negative.any():
            n, i, j, b, k = _first(negative)
            raise ValueError(
                f"pred[{n}, {i}, {j}]: predictor {b} {'wh'[k]} must be >= 0 under wh_mode='sqrt' "
                f"(its square root is taken), got {sizes[n, i, j, b, k]}"
            )
    return pred, target
