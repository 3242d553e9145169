"""Load a user's loss from ``package.module:attr`` or ``path/to/file.py:attr``, and wrap it as
an :class:`~yolov1_loss.conformance.user_loss.implementation.Implementation` (:func:`user_implementation`:
what ``check``'s worker process runs, and what a pasted reproduction uses).

``attr`` (dots allowed, e.g. ``losses.Yolo``) may be a function, an ``nn.Module`` instance or
any callable object, or a class, which is constructed with no arguments. The loaded callable
is called as ``loss(pred, target)``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from yolov1_loss.conformance.user_loss.frameworks import keras_in_input_dtype, prepare
from yolov1_loss.conformance.user_loss.implementation import Implementation, framework_named, users_line
from yolov1_loss.reference import LossSpec


class LoadError(Exception):
    """The loss could not be loaded; the message says why (and quotes any exception)."""


def _split(target: str) -> tuple[str, str]:
    module, sep, attr = target.rpartition(":")
    if not sep or not module or not attr:
        raise LoadError(f"{target!r}: expected 'package.module:attr' or 'path/to/file.py:attr'")
    return module, attr


def _import(module: str):
    if module.endswith(".py") or "/" in module or "\\" in module:
        path = Path(module).resolve()
        if not path.is_file():
            raise LoadError(f"{module}: no such file")
        name = f"yolov1_loss_user_{abs(hash(str(path)))}"
        spec = importlib.util.spec_from_file_location(name, path)
        loaded = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.parent))  # so the file can import its neighbours
        try:
            sys.modules[name] = loaded
            spec.loader.exec_module(loaded)
        finally:
            sys.path.remove(str(path.parent))
        return loaded
    return importlib.import_module(module)


def load_callable(target: str) -> Callable:
    """The loss named by ``target``, ready to call as ``loss(pred, target)``."""
    module_name, attr = _split(target)
    try:
        obj = _import(module_name)
    except LoadError:
        raise
    except BaseException as err:  # the user's module may raise anything, even SystemExit
        where = "" if isinstance(err, SyntaxError) else users_line(traceback.extract_tb(err.__traceback__))
        raise LoadError(f"importing {module_name} raised {type(err).__name__}: {err}{where}") from err
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise LoadError(f"{module_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if inspect.isclass(obj):
        try:
            obj = obj()
        except BaseException as err:
            raise LoadError(f"constructing {attr}() with no arguments raised {type(err).__name__}: {err}") from err
    if not callable(obj):
        raise LoadError(f"{target} is a {type(obj).__name__}, not something callable")
    return obj


def select_output(loss: Callable, output: str | None) -> Callable:
    """``loss`` whose result is narrowed to one item: an index into a tuple or a key of a mapping."""
    if output is None:
        return loss

    def selected(pred, target):
        result = loss(pred, target)
        if hasattr(result, "_asdict"):
            result = result._asdict()
        if isinstance(result, dict):
            if output not in result:
                raise KeyError(f"--output {output!r}: the loss returned a mapping with keys {sorted(result)}")
            return result[output]
        if isinstance(result, (tuple, list)):
            try:
                return result[int(output)]
            except (ValueError, IndexError):
                raise IndexError(f"--output {output!r}: the loss returned {len(result)} items; give an index") from None
        raise TypeError(f"--output {output!r}: the loss returned a single {type(result).__name__}")

    return selected


def user_implementation(
    target: str,
    *,
    layout: str = "classes-first",
    framework: str = "torch",
    dtype: str = "float32",
    device: str = "cpu",
    output: str | None = None,
    grad: str | None = None,
    arguments: str | None = None,
    spec: LossSpec | None = None,
) -> Implementation:
    """The loss named ``target`` (``pkg.mod:attr`` or ``file.py:attr``), loaded in this process and
    called as ``loss(pred, target)``.

    ``grad``: for a NumPy loss, the name of a callable in the same module returning the gradient
    of the total. ``spec``: the dialect it is held to (None: not yet known). ``framework``: one of
    FRAMEWORKS or an alias (FRAMEWORK_ALIASES), set up before the loss's module is imported
    (:func:`~yolov1_loss.conformance.user_loss.frameworks.prepare`). ``arguments``: None for the
    framework's order (DEFAULT_ARGUMENTS).
    """
    framework = framework_named(framework)
    prepare(framework, dtype)
    loss = select_output(keras_in_input_dtype(load_callable(target)), output)
    grad_fn = None
    if grad is not None:
        module = target.rpartition(":")[0]
        user_grad = load_callable(f"{module}:{grad}")
        grad_fn = lambda first, second, _spec: user_grad(first, second)
    options = dict(
        layout=layout, framework=framework, dtype=dtype, device=device, output=output, grad=grad, arguments=arguments
    )
    return Implementation(
        name=target,
        loss=lambda first, second, _spec: loss(first, second),
        arguments=arguments,
        framework=framework,
        dtype=dtype,
        layout=layout,
        grad=grad_fn,
        fixed_spec=spec,
        device=device,
        repro=repro_of(target, options, spec),
    )


def repro_of(target: str, options: dict, spec) -> str:
    """Python that rebuilds the implementation of :func:`user_implementation`, for a report."""
    arguments = [repr(target)] + [f"{k}={v!r}" for k, v in options.items()] + [f"spec={spec!r}"]
    return f"yolov1_loss.conformance.user_loss.loading.user_implementation({', '.join(arguments)})"
