"""What a property raises when an implementation breaks it: a report a person can act on.

A :class:`ConformanceFailure` is an AssertionError (so pytest and Hypothesis treat it as a test
failure) that carries where the implementation parts from the expected behaviour: the
property, the component, the image and cell, the predictor and channel, both values, the
tolerance, and Python that reproduces it. Finding the cell may take extra evaluations, so a
property may give a ``locate`` function instead; it runs once, the first time the report is
read (after Hypothesis has shrunk the example, not on every failing attempt).
"""

from __future__ import annotations

import math
from collections.abc import Callable

LOCATION_FIELDS = (
    "component",  # the output compared (coord, obj, noobj, cls, total)
    "term",  # the term or part of the loss the difference lies in, where the channel or the blame tells
    "image",
    "cell",
    "predictor",
    "channel",
    "expected",
    "actual",
    "tolerance",
    "note",
)


class ConformanceFailure(AssertionError):
    """An implementation broke a property. Read the fields, ``str()`` it, or ``to_dict()`` it."""

    def __init__(
        self,
        property: str,
        message: str,
        *,
        implementation=None,
        example=None,
        locate: Callable[[], dict] | None = None,
        **fields,
    ):
        unknown = set(fields) - set(LOCATION_FIELDS)
        if unknown:
            raise TypeError(f"unknown ConformanceFailure field(s): {sorted(unknown)}")
        super().__init__(message)
        self.property = property
        self.message = message
        self.implementation = implementation
        self.example = example
        self._fields = {name: fields.get(name) for name in LOCATION_FIELDS}
        self._locate = locate

    def __getattr__(self, name):
        if name in LOCATION_FIELDS:
            return self.located()[name]
        raise AttributeError(name)

    def located(self) -> dict:
        """Every location field, running the deferred search for the cell once."""
        if self._locate is not None:
            locate, self._locate = self._locate, None
            try:
                found = locate()
            except Exception as err:  # the report must still come out
                found = {}
                self.message += f" (could not locate the cell: {type(err).__name__}: {err})"
            for name, value in found.items():
                if value is not None:
                    self._fields[name] = value
        for name in ("expected", "tolerance"):  # a NaN here would say nothing a person can act on
            value = self._fields[name]
            if isinstance(value, float) and math.isnan(value):
                self._fields[name] = None
        return dict(self._fields)

    def blame(self, term: str | None) -> None:
        """Name the term or part of the loss the difference lies in (conformance.dialects.blame),
        where the report could not tell it itself."""
        if self.located()["term"] is None and term is not None:
            self._fields["term"] = term

    def where(self) -> str:
        """'image 0, cell (3, 4), predictor 1 (channel predictor 1 w)', or '' if unknown."""
        f = self.located()
        parts = []
        if f["image"] is not None:
            parts.append(f"image {f['image']}")
        if f["cell"] is not None:
            parts.append(f"cell ({f['cell'][0]}, {f['cell'][1]})")
        if f["predictor"] is not None:
            parts.append(f"predictor {f['predictor']}")
        if f["channel"] is not None:
            parts.append(f"channel {f['channel']!r}")
        return ", ".join(parts)

    def reproduction(self) -> str:
        """Python to paste: rebuild the example and the implementation, rerun the property."""
        impl = getattr(self.implementation, "repro", "") or "...  # the implementation under test"
        example = repr(self.example) if self.example is not None else "..."
        return "\n".join(
            [
                "import numpy as np",
                "import yolov1_loss.conformance.user_loss.implementation, yolov1_loss.conformance.user_loss.loading, yolov1_loss.conformance.mutants",
                "from yolov1_loss.conformance.inputs.example import Example, Recipe, build",
                "from yolov1_loss.conformance.suite.properties import PROPERTIES",
                "from yolov1_loss.reference import LossSpec",
                f"impl = {impl}",
                f"example = {example}",
                f"PROPERTIES[{self.property!r}].check(impl, example)  # raises this report",
            ]
        )

    def __str__(self) -> str:
        f = self.located()
        name = getattr(self.implementation, "label", "implementation")
        lines = [f"{name} breaks {self.property}: {self.message}"]
        if f["component"] is not None:
            lies = f" (the difference lies in {f['term']})" if f["term"] not in (None, f["component"]) else ""
            lines.append(f"  component: {f['component']}{lies}")
        where = self.where()
        if where:
            lines.append(f"  where:     {where}")
        if f["expected"] is not None or f["actual"] is not None:
            lines.append(f"  expected:  {_number(f['expected'])}")
            lines.append(f"  actual:    {_number(f['actual'])}")
        if f["tolerance"] is not None:
            lines.append(f"  tolerance: {_number(f['tolerance'])}")
        if f["note"] is not None:
            lines.append(f"  note:      {f['note']}")
        lines.append("  reproduce:")
        lines.extend("    " + line for line in self.reproduction().splitlines())
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """A JSON-ready summary (numbers as floats, the cell as a list)."""
        f = self.located()
        out = {
            "property": self.property,
            "message": self.message,
            "implementation": getattr(self.implementation, "label", None),
            **{k: _plain(v) for k, v in f.items()},
            "counterexample": repr(self.example) if self.example is not None else None,
            "reproduction": self.reproduction(),
        }
        return out


def _number(value) -> str:
    return "?" if value is None else f"{value:.10g}" if isinstance(value, float) else str(value)


def _plain(value):
    if isinstance(value, tuple):
        return [int(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


class ImplementationRaised(ConformanceFailure):
    """The implementation raised (or returned no loss) while a property ran it.

    ``stage``: 'forward', 'backward of <output>', 'gradient' or 'output'; the message quotes
    the exception and where it was raised.
    """

    def __init__(self, property: str, message: str, *, stage: str, **kwargs):
        super().__init__(property, f"the loss raised in {message}", **kwargs)
        self.stage = stage
