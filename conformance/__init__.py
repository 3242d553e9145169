"""The conformance suite: hold any YOLOv1 loss to the oracle with property-based tests.

Sub-packages, in the order a check runs through them:

- :mod:`~yolov1_loss.conformance.user_loss`: the loss loaded and called through one interface
  (:class:`Implementation`, also over the project's own: ``oracle()``, ``torch_impl()``), in a
  worker process of its own;
- :mod:`~yolov1_loss.conformance.dialects`: which dialect it computes, in words, and hints;
- :mod:`~yolov1_loss.conformance.inputs` and :mod:`~yolov1_loss.conformance.suite`: the examples
  (with the hard cases) and the properties (``PROPERTIES``) run on them under Hypothesis,
  raising :class:`ConformanceFailure` reports;
- :mod:`~yolov1_loss.conformance.reports`: what a check found, for a person and a machine;
- :mod:`~yolov1_loss.conformance.vectors`: test vectors, written and replayed.

:mod:`~yolov1_loss.conformance.check` runs a check through them; the pytest plugin is
:mod:`~yolov1_loss.conformance.pytest_plugin`; :mod:`~yolov1_loss.conformance.mutants` holds
deliberately wrong losses the suite must catch (imports torch).

The names below are imported on first use, as yolov1_loss's everyday names are (importing this package, as
loading the pytest plugin does, loads neither NumPy nor Hypothesis).
"""

from importlib import import_module

# name -> the module that defines it (a module's own name: the module itself)
_NAMES = {
    "example": "inputs.example",
    "strategies": "inputs.strategies",
    "Example": "inputs.example",
    "Recipe": "inputs.example",
    "build": "inputs.example",
    "profiles": "suite.profiles",
    "properties": "suite.properties",
    "runner": "suite.runner",
    "PROPERTIES": "suite.properties",
    "ConformanceFailure": "suite.failure",
    "ImplementationRaised": "suite.failure",
    "find_failure": "suite.runner",
    "first_failure": "suite.runner",
    "implementation": "user_loss.implementation",
    "Implementation": "user_loss.implementation",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        module = import_module(f"{__name__}.{_NAMES[name]}")
        return module if _NAMES[name].endswith(f".{name}") else getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
