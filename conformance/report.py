"""What a check found, for a person (``summary()``) and for a machine (``to_dict()``, the JSON report)."""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import dataclass, field

import numpy as np

from yolov1_loss.reference import PRESETS, LossSpec

VERDICT_EXIT = {"conforms": 0, "differs": 1, "error": 2}


@dataclass(frozen=True)
class InputFinding:
    """The loss fails on a class of valid input (see conformance.input_classes)."""

    words: str  # "a batch with no object"
    degenerate: bool
    problem: str  # what it did there: "raised in forward: ValueError: … (at losses.py:12)"

    def line(self) -> str:
        kind = "warning (degenerate input)" if self.degenerate else "finding"
        return f"{kind}: on {self.words}, {self.problem}"


@dataclass
class CheckReport:
    """Everything a check found; ``to_dict()`` is the JSON report, ``summary()`` the terminal one."""

    target: str
    verdict: str  # conforms, differs or error
    spec: LossSpec | None = None  # the dialect held to
    identified: object = None  # a conformance.dialect.Identification
    named_dialect: str | None = None  # the preset the user named, None under --dialect auto
    properties: dict = field(default_factory=dict)  # name -> passed / failed / not applicable: why
    failures: list = field(default_factory=list)  # ConformanceFailure
    inputs: list = field(default_factory=list)  # InputFinding
    left_out: list = field(default_factory=list)  # words of the input classes left out of the properties
    hints: list = field(default_factory=list)  # advice for the usual mistakes (conformance.hints)
    warnings: dict = field(default_factory=dict)  # "Category: message (at where)" -> count, what the loss warned
    error: str | None = None
    setup: dict = field(default_factory=dict)  # layout, framework, dtype, device, S, B, C, examples, seed
    strict: bool = False
    gradient_checks: set = field(default_factory=set)  # the names in ``properties`` that compare gradients

    @property
    def exit_code(self) -> int:
        return VERDICT_EXIT[self.verdict]

    def _matched(self, needs_gradient: bool):
        ran = [
            name
            for name, status in self.properties.items()
            if (name in self.gradient_checks) == needs_gradient and not status.startswith("not applicable")
        ]
        if self.verdict == "error" or not ran:
            return None
        failed = {f.property for f in self.failures}
        return not any(name in failed for name in ran)

    def to_dict(self) -> dict:
        spec = self.spec
        ident = self.identified
        return {
            "target": self.target,
            "verdict": self.verdict,
            "dialect": None
            if spec is None
            else {
                "preset": spec.preset_name(),
                "knobs": spec.knobs(),
                "S": spec.S,
                "B": spec.B,
                "C": spec.C,
                "named": self.named_dialect,
                "identified": None
                if ident is None
                else {
                    "matches": ident.matches,
                    "preset": ident.preset,
                    "residual": ident.residual,
                    "undetermined": list(ident.undetermined),
                    "notes": list(ident.notes),
                },
            },
            "value_match": self._matched(False),
            "grad_match": self._matched(True),
            "properties": self.properties,
            "failures": [failure.to_dict() for failure in self.failures],
            "inputs": [{"input": f.words, "degenerate": f.degenerate, "problem": f.problem} for f in self.inputs],
            "left_out": self.left_out,
            "hints": self.hints,
            "warnings": self.warnings,
            "error": self.error,
            "setup": self.setup,
            "versions": versions(),
        }

    def summary(self) -> str:
        lines = [f"yolov1-loss check {self.target}"]
        lines.append(f"verdict: {self.verdict.upper()}" + (f" ({self.error})" if self.error else ""))
        if self.spec is not None:
            lines.append(f"dialect: {describe(self.spec)}")
        ident = self.identified
        if ident is not None:
            if ident.matches and self.named_dialect and ident.spec != self.spec:
                lines.append(f"  the values match another dialect: {describe(ident.spec)}")
            if ident.undetermined:
                lines.append(f"  not told apart by the probes: {', '.join(ident.undetermined)}")
            lines.extend(f"  {note}" for note in ident.notes)
        lines.extend(f"hint: {h}" for h in self.hints)
        lines.extend(finding.line() for finding in self.inputs)
        if self.left_out:
            lines.append(f"left out of the properties: {'; '.join(self.left_out)}")
        if self.properties:
            statuses = self.properties.values()
            counts = {s: sum(1 for v in statuses if v.startswith(s)) for s in ("passed", "failed", "not applicable")}
            lines.append(
                f"properties: {counts['passed']} passed, {counts['failed']} failed, {counts['not applicable']} not applicable"
            )
            lines.extend(
                f"  {name}: {status}" for name, status in self.properties.items() if status.startswith("not applicable")
            )
        if self.warnings:
            lines.append(f"the loss warned ({sum(self.warnings.values())} warnings, each shown once):")
            lines.extend(f"  {count}× {text}" for text, count in self.warnings.items())
        for failure in self.failures:
            lines.append("")
            lines.extend(str(failure).splitlines())
        return "\n".join(lines)


def describe(spec: LossSpec, undetermined=()) -> str:
    """'preset 'paper'', or the nearest preset and the knobs that differ from it (knobs in
    ``undetermined``, which nothing told apart, are taken to be the preset's)."""

    def preset(name):
        return LossSpec.preset(name, S=spec.S, B=spec.B, C=spec.C)

    seen = {k: v for k, v in spec.knobs().items() if k not in undetermined}
    base = min(PRESETS, key=lambda name: sum(preset(name).knobs()[k] != v for k, v in seen.items()))
    changed = ", ".join(f"{k}={v!r}" for k, v in seen.items() if preset(base).knobs()[k] != v)
    return f"preset {base!r}" + (f" with {changed}" if changed else "")


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    import hypothesis
    import torch

    try:
        own = version("yolov1-loss")
    except PackageNotFoundError:  # a source tree that is not installed
        own = "0+unknown"
    return {
        "yolov1-loss": own,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "hypothesis": hypothesis.__version__,
    }


def write_json(report: CheckReport, path) -> None:
    """The JSON report to ``path``; '-' is standard output."""
    text = json.dumps(report.to_dict(), indent=1, default=str)
    if str(path) == "-":
        sys.stdout.write(text + "\n")
        return
    with open(path, "w") as f:
        f.write(text)
