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
"""

from yolov1_loss.conformance.inputs import example, strategies
from yolov1_loss.conformance.inputs.example import Example, Recipe, build
from yolov1_loss.conformance.suite import profiles, properties, runner
from yolov1_loss.conformance.suite.failure import ConformanceFailure, ImplementationRaised
from yolov1_loss.conformance.suite.properties import PROPERTIES
from yolov1_loss.conformance.suite.runner import find_failure, first_failure
from yolov1_loss.conformance.user_loss import implementation
from yolov1_loss.conformance.user_loss.implementation import Implementation

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
