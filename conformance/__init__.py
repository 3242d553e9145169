"""The conformance suite: hold any YOLOv1 loss to the oracle with property-based tests.

- :mod:`~yolov1_loss.conformance.implementation`: :class:`Implementation`, one interface over any
  loss (torch or NumPy, any layout and dtype), and the project's own (``oracle()``, ``torch_impl()``).
- :mod:`~yolov1_loss.conformance.example` and :mod:`~yolov1_loss.conformance.strategies`: inputs,
  with the hard cases; :mod:`~yolov1_loss.conformance.input_classes`: the classes of input a
  report names in words.
- :mod:`~yolov1_loss.conformance.properties`: the properties (``PROPERTIES``), raising
  :class:`ConformanceFailure` reports, built from :mod:`~yolov1_loss.conformance.comparison`;
  :mod:`~yolov1_loss.conformance.runner` runs them under Hypothesis.
- :mod:`~yolov1_loss.conformance.profiles`: the ``dev``, ``ci`` and ``thorough`` settings profiles.
- ``check``: :mod:`~yolov1_loss.conformance.check` (the run), :mod:`~yolov1_loss.conformance.dialect`
  (identification), :mod:`~yolov1_loss.conformance.hints`, :mod:`~yolov1_loss.conformance.report`,
  :mod:`~yolov1_loss.conformance.replay` (test vectors, written by
  :mod:`~yolov1_loss.conformance.vectors`); the user's loss runs in a worker process
  (:mod:`~yolov1_loss.conformance.isolation`, :mod:`~yolov1_loss.conformance.worker`), loaded by
  :mod:`~yolov1_loss.conformance.loading`; the pytest plugin is
  :mod:`~yolov1_loss.conformance.pytest_plugin`.
- :mod:`~yolov1_loss.conformance.mutants`: deliberately wrong losses the suite must catch (imports torch).
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
