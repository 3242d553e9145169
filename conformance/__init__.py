"""The conformance suite: hold any YOLOv1 loss to the oracle with property-based tests.

- :mod:`yolov1_loss.conformance.implementation`: :class:`Implementation`, one interface over any loss
  (torch or NumPy, any layout and dtype), and the project's own (``oracle()``, ``torch_impl()``).
- :mod:`conformance.example` and :mod:`conformance.strategies`: inputs, with the hard cases.
- :mod:`conformance.properties`: the properties (``PROPERTIES``), raising
  :class:`ConformanceFailure` reports; :mod:`conformance.runner` runs them under Hypothesis.
- :mod:`yolov1_loss.conformance.profiles`: the ``dev``, ``ci`` and ``thorough`` settings profiles.
- :mod:`yolov1_loss.conformance.mutants`: deliberately wrong losses the suite must catch (imports torch).
"""

from yolov1_loss.conformance import example, implementation, profiles, properties, runner, strategies
from yolov1_loss.conformance.example import Example, Recipe, build
from yolov1_loss.conformance.failure import ConformanceFailure, ImplementationRaised
from yolov1_loss.conformance.implementation import Implementation
from yolov1_loss.conformance.properties import PROPERTIES
from yolov1_loss.conformance.runner import find_failure, first_failure

__all__ = [
    "PROPERTIES",
    "ConformanceFailure",
    "Example",
    "Implementation",
    "ImplementationRaised",
    "Recipe",
    "build",
    "example",
    "find_failure",
    "first_failure",
    "implementation",
    "profiles",
    "properties",
    "runner",
    "strategies",
]
