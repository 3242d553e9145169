"""A user's loss named on the command line as ``package.module:attr`` or ``path/to/file.py:attr``."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Callable


def _module(location: str):
    if location.endswith(".py"):
        path = Path(location)
        if not path.is_file():
            raise ValueError(f"{location}: no such file")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module  # so that pickling, dataclasses and the like find it
        module_spec.loader.exec_module(module)
        return module
    return importlib.import_module(location)


def load(impl: str) -> Callable:
    """The callable named by ``impl``: a function, an ``nn.Module`` instance, or a class built with no arguments."""
    location, colon, attr = impl.rpartition(":")
    if not colon or not location or not attr:
        raise ValueError(f"{impl!r}: expected package.module:attr or path/to/file.py:attr")
    target = _module(location)
    for name in attr.split("."):
        if not hasattr(target, name):
            raise ValueError(f"{impl!r}: {location} has no attribute {attr!r}")
        target = getattr(target, name)
    if inspect.isclass(target):
        target = target()
    if not callable(target):
        raise ValueError(f"{impl!r}: {attr} is not callable")
    return target


def total_of(output):
    """The total from what a loss returns: the value itself, a tuple's last item, or a mapping's 'total' or 'loss'."""
    if isinstance(output, Mapping):
        for key in ("total", "loss"):
            if key in output:
                return output[key]
        raise ValueError(f"the loss returned a mapping without a 'total' or 'loss' key (keys: {sorted(output)})")
    if isinstance(output, (tuple, list)):
        return output[-1]
    return output


def as_total_loss(fn: Callable) -> Callable:
    """``fn`` wrapped so that it returns only the total."""
    return lambda pred, target: total_of(fn(pred, target))
