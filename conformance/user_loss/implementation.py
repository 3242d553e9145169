"""One interface over any YOLOv1 loss: the oracle, the project's torch implementation, anyone's callable.

An :class:`Implementation` takes canonical float64 NumPy inputs and a :class:`LossSpec`, converts
them to its layout, dtype, framework and device, calls the loss, and hands back float64 NumPy:
the components it exposes (at least the total) and, when asked, the gradient of each with
respect to the prediction, in the canonical layout.

A loss is called as ``loss(pred, target, spec)``; wrap one that takes only ``(pred, target)``
with :func:`fixed_dialect`. What it returns may be a scalar (the total), a tuple or list
(the last item is the total), a mapping or a NamedTuple (keys among coord, obj, noobj, cls,
total; ``loss`` also names the total).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from yolov1_loss import reference
from yolov1_loss.conformance.encoding.box_targets import BoxTargets
from yolov1_loss.reference.loss import OUTPUT_NAMES
from yolov1_loss.reference.spec import LossSpec

FRAMEWORKS = ("torch", "numpy", "jax", "tensorflow")
# Another name a framework goes by: a Keras loss runs on TensorFlow tensors.
FRAMEWORK_ALIASES = {"keras": "tensorflow"}
# The frameworks whose gradients come from their own automatic differentiation.
AUTODIFF = ("torch", "jax", "tensorflow")
DTYPES = ("float64", "float32")
ARGUMENTS = ("pred,target", "target,pred")
# The order a framework's users write a loss's inputs in, where it is not ARGUMENTS[0]: Keras
# calls a loss as loss(y_true, y_pred).
DEFAULT_ARGUMENTS = {"tensorflow": "target,pred"}


def framework_named(name: str) -> str:
    """The framework ``name`` (one of FRAMEWORKS, or an alias such as 'keras') stands for."""
    return FRAMEWORK_ALIASES.get(name, name)


def default_arguments(framework: str) -> str:
    """The argument order a loss of ``framework`` (or its alias) is called with unless told otherwise."""
    return DEFAULT_ARGUMENTS.get(framework_named(framework), ARGUMENTS[0])


class ImplementationError(Exception):
    """The implementation raised, or returned something that is not a loss."""

    def __init__(self, stage: str, detail: str):
        super().__init__(f"{stage}: {detail}")
        self.stage = stage  # 'forward', 'backward' or 'output'
        self.detail = detail


class Evaluation(NamedTuple):
    """What one call gave, as float64 NumPy."""

    values: dict  # output name -> () array, or (N,) under reduction='none'
    grads: dict  # output name -> canonical (N, S, S, C + 5B) gradient; empty if not asked
    inputs_after: tuple | None  # (pred, target) in canonical layout after the call, if asked
    # jax and tensorflow: why the loss failed compiled (jax.jit, tf.function) where it ran
    # eagerly (the values and gradients are then the eager ones); None where it did not.
    eager_only: str | None = None


@dataclass(frozen=True)
class Implementation:
    """A YOLOv1 loss and how to call it.

    ``loss(pred, target, spec)`` gets inputs in ``layout``, as ``dtype`` tensors (framework
    'torch', on ``device``; 'jax' and 'tensorflow', on the framework's default device) or arrays
    ('numpy'). Torch, JAX and TensorFlow gradients come from their autodiff
    (:mod:`~yolov1_loss.conformance.user_loss.frameworks` for the last two); a NumPy
    loss may give ``grad(pred, target, spec)``: the gradient of the total in its layout, or a
    mapping/NamedTuple of gradients by output name. ``project``: one of this project's own,
    held to the oracle's conventions at kinks too (docs/spec.md, "Gradients"). ``fixed_spec``: the dialect a loss
    that ignores its spec argument computes (None: it honours the spec it is given).
    ``repro``: Python that rebuilds this object, quoted in failure reports.
    """

    name: str
    loss: Callable
    framework: str = "torch"
    dtype: str = "float64"
    layout: str = "classes-first"
    grad: Callable | None = None
    project: bool = False
    fixed_spec: LossSpec | None = None
    device: str = "cpu"
    repro: str = ""
    # Where the loss runs when not here: a conformance.user_loss.isolation.Worker that holds it.
    worker: Any = dataclasses.field(default=None, compare=False)
    # False: judged on its values alone (a loss whose backward raises on every input).
    gradients: bool = True
    # The order ``loss`` takes its inputs in: ARGUMENTS[0], or ARGUMENTS[1] for a loss written
    # as loss(target, pred) (seen in public code); None: the framework's (default_arguments).
    arguments: str | None = None
    # A loss that takes box lists, not the grid (None: the grid, in ``layout``). The target handed over is then a list of per-image arrays
    # (or one padded array), each converted to the framework's tensors as the grid is.
    targets: BoxTargets | None = None

    def __post_init__(self):
        object.__setattr__(self, "framework", framework_named(self.framework))
        if self.arguments is None:
            object.__setattr__(self, "arguments", default_arguments(self.framework))
        if self.framework not in FRAMEWORKS:
            raise ValueError(f"Implementation.framework must be one of {FRAMEWORKS}, got {self.framework!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"Implementation.dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.arguments not in ARGUMENTS:
            raise ValueError(f"Implementation.arguments must be one of {ARGUMENTS}, got {self.arguments!r}")
        if self.layout not in reference.LAYOUTS:
            raise ValueError(f"Implementation.layout must be one of {reference.LAYOUTS}, got {self.layout!r}")

    def __repr__(self) -> str:
        return f"<Implementation {self.label}>"

    @property
    def label(self) -> str:
        """The name, dtype and any device but the CPU, e.g. 'torch_impl path=fused [float32, cuda]'."""
        device = "" if self.device == "cpu" else f", {self.device}"
        return f"{self.name} [{self.dtype}{device}]"

    @property
    def configurable(self) -> bool:
        """Whether it honours the spec it is given (so every dialect can be drawn for it)."""
        return self.fixed_spec is None

    @property
    def has_gradient(self) -> bool:
        return self.gradients and (self.framework in AUTODIFF or self.grad is not None)

    def with_dtype(self, dtype: str) -> Implementation:
        """The same loss fed ``dtype`` inputs."""
        if dtype == self.dtype:
            return self
        repro = f"{self.repro}.with_dtype({dtype!r})" if self.repro else ""
        return dataclasses.replace(self, dtype=dtype, repro=repro)

    def evaluate(
        self,
        pred: np.ndarray,
        target: np.ndarray,
        spec: LossSpec,
        *,
        grads: str = "none",
        upstream=None,
        strided: bool = False,
        keep_inputs: bool = False,
    ) -> Evaluation:
        """Call the loss on canonical float64 ``pred`` (N, S, S, C + 5B) and ``target`` (N, S, S, C + 5).

        ``grads``: 'none', 'total', or 'all' (every exposed output that has one).
        ``upstream``: the weight of the backward pass: a float, or (N,) per-image weights
        under reduction='none' (default 1). ``strided``: pass non-contiguous inputs.
        ``keep_inputs``: report the inputs as they are after the call (to catch in-place writes).
        Raises :class:`ImplementationError` if the loss raises or returns no loss.
        """
        if self.worker is not None:
            call = dict(dtype=self.dtype, layout=self.layout, arguments=self.arguments, targets=self.targets)
            options = dict(grads=grads, upstream=upstream, strided=strided, keep_inputs=keep_inputs)
            return self.worker.evaluate(call, pred, target, spec, **options)
        if self.framework in ("jax", "tensorflow"):
            from yolov1_loss.conformance.user_loss.frameworks import evaluate_traced as run
        else:
            run = _evaluate_torch if self.framework == "torch" else _evaluate_numpy
        return run(self, pred, target, spec, grads, upstream, strided, keep_inputs)


# --- shared conversions --------------------------------------------------------------------------


def _convert(convert, array, layout: str, spec: LossSpec):
    """A layout adapter applied to ``array``; the identity for the canonical layout."""
    if layout == "classes-first":
        return array
    return convert(array, layout, spec.S, spec.B, spec.C)


def to_layout(impl: Implementation, pred, target, spec: LossSpec):
    """Canonical ``pred`` and ``target`` in the layout the loss of ``impl`` takes."""
    if impl.targets is not None:  # box lists (conformance.encoding.box_targets)
        return impl.targets.to_loss(impl, pred, target, spec)
    return (
        pred_to_layout(impl, pred, spec),
        _convert(reference.target_from_canonical, target, impl.layout, spec),
    )


def _from_layout(impl: Implementation, pred, target, spec: LossSpec):
    if impl.targets is not None:  # box lists: what the loss left of what to_layout handed it
        return impl.targets.from_loss(impl, pred, target, spec)
    return (
        _convert(reference.pred_to_canonical, pred, impl.layout, spec),
        _convert(reference.target_to_canonical, target, impl.layout, spec),
    )


def pred_to_layout(impl: Implementation, pred, spec: LossSpec):
    """A canonical prediction-shaped array in the layout the loss of ``impl`` takes."""
    return _convert(reference.pred_from_canonical, pred, impl.layout, spec)


def pred_from_layout(impl: Implementation, grad, spec: LossSpec):
    """A prediction-shaped array (a gradient) in the loss's layout, back in the canonical one."""
    return _convert(reference.pred_to_canonical, grad, impl.layout, spec)


def call_in_order(impl: Implementation, pred, target, spec: LossSpec, function: Callable | None = None):
    """The loss (or ``function``, its gradient) on inputs in its layout, in the order it takes them."""
    function = function or impl.loss
    if impl.arguments == "target,pred":
        return function(target, pred, spec)
    return function(pred, target, spec)


def forward(impl: Implementation, pred, target, spec: LossSpec) -> dict:
    """The loss's outputs by name on inputs already in its layout, framework and dtype;
    ImplementationError (stage 'forward', quoting what the user's code raised) where it raises."""
    try:
        return named_outputs(call_in_order(impl, pred, target, spec))
    except ImplementationError:
        raise
    except Exception as err:  # the report quotes whatever the user's code raised
        raise raised_in("forward", err) from err


def each_array(convert: Callable, target):
    """``convert`` applied to a target, or to each array of a list of them (box targets)."""
    return [convert(a) for a in target] if isinstance(target, list) else convert(target)


def _strided_copy(array, zeros: Callable):
    """A non-contiguous copy of ``array`` (NumPy or torch): every other element of a buffer
    twice as long along the last axis, made by ``zeros(shape)``."""
    view = zeros((*array.shape[:-1], 2 * array.shape[-1]))[..., ::2]
    view[...] = array
    return view


def named_outputs(outputs) -> dict:
    """The loss's return value as {output name: value}; 'total' always present.

    Accepts a scalar or array (the total); a tuple or list (its last item is the total); a
    mapping or NamedTuple with keys among coord, obj, noobj, cls, total (or 'loss' for total).
    """
    if hasattr(outputs, "_asdict"):
        outputs = outputs._asdict()
    if isinstance(outputs, dict):
        named = {key: outputs[key] for key in OUTPUT_NAMES if key in outputs}
        if "total" not in named and "loss" in outputs:
            named["total"] = outputs["loss"]
        if "total" not in named:
            raise ImplementationError("output", f"a mapping without 'total' or 'loss' (keys: {sorted(outputs)})")
        return named
    if isinstance(outputs, (tuple, list)):
        if not outputs:
            raise ImplementationError("output", "an empty tuple")
        if isinstance(outputs[-1], dict) and len(outputs) > 1:  # (total, {details}), as public code returns
            return {"total": outputs[0]}
        return {"total": outputs[-1]}
    return {"total": outputs}


def output_as_array(name: str, value, to_numpy) -> np.ndarray:
    """An output as a float64 array, or an ImplementationError saying what it is and what to try."""
    try:
        return to_numpy(value)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ImplementationError(
            "output",
            f"{name} is a {type(value).__name__}, not a number or tensor ({err}); if the loss returns "
            "several things, --output names the item that is the total (an index or a key)",
        ) from None


def checked_output(name: str, value: np.ndarray, spec: LossSpec, n_images: int) -> np.ndarray:
    """The output as the spec's reduction shapes it: () for a total (an output of any
    single-element shape, [1] or [1, 1], is one), (N,) per image; else an ImplementationError."""
    expected = (n_images,) if spec.reduction == "none" else ()
    if value.shape != expected and value.size == 1 and expected == ():
        value = value.reshape(())
    if value.shape != expected:
        raise ImplementationError(
            "output", f"{name} has shape {value.shape}, expected {expected} under reduction={spec.reduction!r}"
        )
    return value


def _weights(upstream, values_shape) -> np.ndarray:
    """The backward pass's weights, shaped like the output (() or (N,))."""
    weight = 1.0 if upstream is None else upstream
    return np.broadcast_to(np.asarray(weight, dtype=np.float64), values_shape)


def _library_folders() -> tuple[str, ...]:
    """Where NumPy, torch, JAX, TensorFlow, Keras, Python's standard library and this project live
    (found without importing any of them)."""
    folders = [os.path.dirname(os.path.abspath(os.__file__))]
    for name in (
        "numpy",
        "torch",
        "jax",
        "jaxlib",
        "tensorflow",
        "keras",
        "yolov1_loss",
        "yolov1_loss.reference",
        "yolov1_loss.conformance",
        "yolov1_loss.torch_impl",
    ):
        spec = importlib.util.find_spec(name)
        folders += [os.path.abspath(f) for f in (spec.submodule_search_locations or [])] if spec else []
    return tuple(folders)


_LIBRARIES = _library_folders()


def is_users_file(filename: str) -> bool:
    """Whether a frame's file is the user's code, not a framework's, Python's or this project's
    (a package installed in site-packages counts as the user's, unless it is one of those)."""
    path = os.path.abspath(filename)
    under = [folder for folder in _LIBRARIES if path.startswith(folder + os.sep)]
    return not under or all("site-packages" in path[len(folder) :] for folder in under)


def users_line(frames) -> str:
    """' (at file:line)' for the innermost of ``frames`` (traceback.FrameSummary) in the user's
    code, else the innermost frame; '' when there are none."""
    frames = list(frames)
    mine = [f for f in frames if is_users_file(f.filename)]
    frame = (mine or frames or [None])[-1]
    return f" (at {frame.filename}:{frame.lineno})" if frame is not None else ""


def raised_in(stage: str, err: BaseException, caused_by: str = "") -> ImplementationError:
    message = str(err)
    if caused_by:  # torch's advice to rerun under anomaly detection: done, and its answer is caused_by
        message = re.sub(r"\s*Hint: enable anomaly detection.*?(\.\s|$)", " ", message, flags=re.S).strip()
    where = caused_by or users_line(traceback.extract_tb(err.__traceback__))
    return ImplementationError(stage, f"{type(err).__name__}: {message}{where}")


# --- torch ----------------------------------------------------------------------------------------


def _evaluate_torch(impl, pred, target, spec, grads, upstream, strided, keep_inputs):
    import torch

    dtype = getattr(torch, impl.dtype)

    def tensor(array):
        contiguous = torch.tensor(np.asarray(array), dtype=dtype, device=impl.device)
        if strided:
            return _strided_copy(contiguous, lambda shape: torch.zeros(shape, dtype=dtype, device=impl.device))
        return contiguous

    lay_pred, lay_target = to_layout(impl, pred, target, spec)
    p, t = tensor(lay_pred), each_array(tensor, lay_target)
    p.requires_grad_(grads != "none")
    outputs = forward(impl, p, t, spec)
    values = {}
    for name, value in outputs.items():
        as_array = output_as_array(name, value, lambda v: torch.as_tensor(v).detach().cpu().double().numpy())
        values[name] = checked_output(name, as_array, spec, len(pred))

    gradients = {}
    wanted = [] if grads == "none" else ["total"] if grads == "total" else list(outputs)
    for name in wanted:
        output = outputs[name]
        if not (isinstance(output, torch.Tensor) and output.requires_grad):
            gradients[name] = np.zeros(np.shape(pred))  # a constant: its gradient is zero
            continue
        # Shaped like the output itself: a total of shape [1] or [1, 1] gets a weight of that shape.
        weight = torch.tensor(_weights(upstream, values[name].shape), dtype=output.dtype, device=output.device)
        weight = weight.reshape(output.shape)
        try:
            (g,) = torch.autograd.grad(output, p, grad_outputs=weight, retain_graph=True, allow_unused=True)
        except Exception as err:
            caused_by = _forward_line_of_backward_error(
                impl, tensor(lay_pred), each_array(tensor, lay_target), spec, name
            )
            raise raised_in(f"backward of {name}", err, caused_by) from err
        g = np.zeros(lay_pred.shape) if g is None else g.detach().cpu().double().numpy()
        gradients[name] = pred_from_layout(impl, g, spec)
    after = None
    if keep_inputs:
        as_numpy = lambda tensor: tensor.detach().cpu().double().numpy()
        after = _from_layout(impl, as_numpy(p), each_array(as_numpy, t), spec)
    return Evaluation(values, gradients, after)


TRACEBACK_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')


def _forward_line_of_backward_error(impl, p, t, spec, name: str) -> str:
    """' (caused by file:line in forward)': the user's forward line that made backward fail
    (for an in-place write, the line that wrote in place), from a rerun under anomaly detection,
    which records where each operation of the graph was created; '' where it names none."""
    import torch
    from torch.overrides import TorchFunctionMode

    calls = []  # (the user's line, whether the call writes in place), in the order of the forward

    class Record(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = getattr(func, "__name__", "")
            in_place = (
                name == "__setitem__" or (name.endswith("_") and not name.endswith("__")) or name.startswith("__i")
            )
            frames = [f for f in traceback.extract_stack() if is_users_file(f.filename)]
            if frames:
                calls.append((f"{frames[-1].filename}:{frames[-1].lineno}", in_place))
            return func(*args, **(kwargs or {}))

    p.requires_grad_(True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with torch.autograd.detect_anomaly(check_nan=False):
                with Record():
                    output = named_outputs(call_in_order(impl, p, t, spec))[name]
                torch.autograd.grad(output.sum(), p, allow_unused=True)
        except Exception:  # the error itself is already known; only the forward trace is wanted
            pass
    for warning in caught:
        frames = [
            f"{m['file']}:{m['line']}"
            for m in TRACEBACK_FRAME.finditer(str(warning.message))
            if is_users_file(m["file"])
        ]
        if not frames:
            continue
        saved_at = frames[-1]
        made = [k for k, (line, _) in enumerate(calls) if line == saved_at]
        writes = [line for line, in_place in calls[made[-1] + 1 :] if in_place] if made else []
        if writes:
            return f" (the in-place write at {writes[0]} changed what {saved_at} saved for backward)"
        return f" (caused by {saved_at} in forward)"
    return ""


# --- numpy ----------------------------------------------------------------------------------------


def _evaluate_numpy(impl, pred, target, spec, grads, upstream, strided, keep_inputs):
    lay_pred, lay_target = to_layout(impl, pred, target, spec)
    p = np.array(lay_pred, dtype=impl.dtype)
    t = each_array(lambda a: np.array(a, dtype=impl.dtype), lay_target)
    if strided:
        strided_copy = lambda a: _strided_copy(a, lambda shape: np.zeros(shape, dtype=a.dtype))
        p, t = strided_copy(p), each_array(strided_copy, t)
    outputs = forward(impl, p, t, spec)
    values = {
        name: checked_output(
            name, output_as_array(name, value, lambda v: np.asarray(v, dtype=np.float64)), spec, len(pred)
        )
        for name, value in outputs.items()
    }
    gradients = {}
    if grads != "none" and impl.grad is not None:
        try:
            given = call_in_order(impl, p, t, spec, impl.grad)
        except Exception as err:
            raise raised_in("gradient", err) from err
        given = named_outputs(given)
        for name, g in given.items():
            if grads == "total" and name != "total":
                continue
            g = pred_from_layout(impl, np.asarray(g, dtype=np.float64), spec)
            weight = _weights(upstream, values["total"].shape)
            gradients[name] = g * (weight[:, None, None, None] if weight.ndim else weight)
    as_float64 = lambda a: np.asarray(a, np.float64)
    after = _from_layout(impl, as_float64(p), each_array(as_float64, t), spec) if keep_inputs else None
    return Evaluation(values, gradients, after)


# --- the project's implementations ------------------------------------------------------------------


def oracle() -> Implementation:
    """The reference itself, as an implementation (values and hand-derived gradients)."""
    return Implementation(
        name="reference (oracle)",
        loss=reference.loss,
        grad=lambda pred, target, spec: reference.loss_and_grad(pred, target, spec)[1],
        framework="numpy",
        project=True,
        repro="yolov1_loss.conformance.user_loss.implementation.oracle()",
    )


def torch_impl(path: str = "auto", dtype: str = "float64", device: str = "cpu") -> Implementation:
    """The project's torch implementation (``torch_impl.yolov1_loss``) on one of its paths."""
    from yolov1_loss import torch_impl as module

    def loss(pred, target, spec):
        return module.yolov1_loss(pred, target, spec, path=path)

    return Implementation(
        name=f"torch_impl path={path}",
        loss=loss,
        dtype=dtype,
        device=device,
        project=True,
        repro=f"yolov1_loss.conformance.user_loss.implementation.torch_impl(path={path!r}, dtype={dtype!r}, device={device!r})",
    )


def project_implementations() -> list:
    """The project's own: the oracle, and torch_impl's autograd and fused paths in float64 and
    float32 (once ``torch_impl`` is importable), on the CPU and, where there is one, on CUDA."""
    own = [oracle()]
    if torch_impl_available():
        import torch

        devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
        paths = ("autograd", "fused")
        own += [torch_impl(path, dtype, device) for device in devices for path in paths for dtype in DTYPES]
    return own


def torch_impl_available() -> bool:
    """Whether ``torch_impl.yolov1_loss`` can be imported (it is being written alongside)."""
    try:
        from yolov1_loss import torch_impl as module
    except ImportError:
        return False
    return callable(getattr(module, "yolov1_loss", None))


def fixed_dialect(loss: Callable, spec: LossSpec, **fields: Any) -> Implementation:
    """An implementation of a loss called as ``loss(pred, target)`` that computes ``spec``'s dialect."""
    return Implementation(loss=lambda pred, target, _spec: loss(pred, target), fixed_spec=spec, **fields)
