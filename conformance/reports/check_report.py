"""What a check found, for a person (``summary()``) and for a machine (``to_dict()``, the JSON report)."""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import dataclass, field

import numpy as np

from yolov1_loss.conformance.dialects.words import (
    describe,
    differences,
    nearest_preset,
    pin_command,
    preset_like,
    unusual_knobs,
    weights_line,
)
from yolov1_loss.reference import LossSpec

VERDICT_EXIT = {"conforms": 0, "differs": 1, "error": 2}


@dataclass(frozen=True)
class InputFinding:
    """The loss fails on a class of valid input (see conformance.inputs.input_classes)."""

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
    identified: object = None  # a conformance.dialects.fitting.Identification
    named_dialect: str | None = None  # the preset the user named, None under --dialect auto
    properties: dict = field(default_factory=dict)  # name -> passed / failed / not applicable: why
    failures: list = field(default_factory=list)  # ConformanceFailure
    inputs: list = field(default_factory=list)  # InputFinding
    left_out: list = field(default_factory=list)  # words of the input classes left out of the properties
    hints: list = field(default_factory=list)  # advice for the usual mistakes (conformance.dialects.hints)
    blame: object = None  # a conformance.dialects.blame.Blame: where the loss parts from the oracle
    warnings: dict = field(default_factory=dict)  # "Category: message (at where)" -> count, what the loss warned
    error: str | None = None
    setup: dict = field(default_factory=dict)  # layout, framework, dtype, device, S, B, C, examples, seed
    strict: bool = False
    gradient_checks: set = field(default_factory=set)  # the names in ``properties`` that compare gradients
    command: str = ""  # 'yolov1-loss check TARGET' and the options that load and call the loss

    def _ignored(self) -> tuple:
        return self.identified.undetermined if self.identified is not None else ()

    def other_dialect(self) -> list[str] | None:
        """Under a named dialect, when the values match another: how they differ from it, in
        words (one line per knob); else None."""
        ident = self.identified
        if self.named_dialect is None or ident is None or not ident.matches or self.spec is None:
            return None
        return differences(ident.spec, self.spec, self._ignored()) or None

    def diagnosis(self) -> dict:
        """The dialect in words: its nearest preset, how it differs (one line per knob), the knobs
        whose values no preset uses, and the command that holds the loss to it; empty when no
        dialect matched (the terms say what does)."""
        ident = self.identified
        if self.spec is None or ident is None or not ident.matches or self.named_dialect is not None:
            return {}
        ignore = self._ignored()
        base = nearest_preset(self.spec, ignore)
        return {
            "nearest_preset": base,
            "differences": differences(self.spec, preset_like(base, self.spec), ignore),
            "unusual": unusual_knobs(self.spec, ignore),
            "pin": pin_command(self.command or f"yolov1-loss check {self.target}", self.spec, ignore),
        }

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
                    "terms": [term._asdict() for term in ident.terms],
                    "fitted_weights": sorted(ident.fitted_weights),
                    "other_dialect": self.other_dialect(),
                },
                "diagnosis": self.diagnosis(),
            },
            "value_match": self._matched(False),
            "grad_match": self._matched(True),
            "properties": self.properties,
            "failures": [failure.to_dict() for failure in self.failures],
            "inputs": [{"input": f.words, "degenerate": f.degenerate, "problem": f.problem} for f in self.inputs],
            "left_out": self.left_out,
            "hints": self.hints,
            "blame": None if self.blame is None else self.blame.to_dict(),
            "warnings": self.warnings,
            "error": self.error,
            "setup": self.setup,
            "versions": versions(),
        }

    def summary(self) -> str:
        lines = [f"yolov1-loss check {self.target}"]
        lines.append(f"verdict: {self.verdict.upper()}" + (f" ({self.error})" if self.error else ""))
        lines.extend(self.blame.lines() if self.blame is not None else [])
        lines.extend(self._dialect_lines())
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

    def _dialect_lines(self) -> list[str]:
        spec, ident = self.spec, self.identified
        if spec is None:
            return []
        if ident is None:
            return [f"dialect: {describe(spec)}"]
        if not ident.matches:
            lines = [f"dialect: {ident.notes[0]}"] if self.named_dialect is None else [f"dialect: {describe(spec)}"]
            if self.named_dialect is not None:
                lines.append(f"  and {ident.notes[0]}")
            if ident.terms:
                lines.append("  term by term, on probes where only that term can be non-zero:")
                lines.extend(f"    {term.line()}" for term in ident.terms)
            if self.named_dialect is None:
                lines.append(f"  the properties hold it to the closest, {describe(spec)}")
                lines.append(f"  weights: {weights_line(spec, ident.fitted_weights)}")
            lines.extend(f"  {note}" for note in ident.notes[1:])
            return lines
        lines = [f"dialect: {describe(spec, self._ignored())}"]
        other = self.other_dialect()
        if other:
            lines.append(f"  the values match another dialect: {describe(ident.spec, self._ignored())}; it differs in:")
            lines.extend(f"    {line}" for line in other)
        found = self.diagnosis()
        if found.get("differences"):
            lines.append(f"  how it differs from preset {found['nearest_preset']!r}:")
            lines.extend(f"    {line}" for line in found["differences"])
            if found["unusual"]:
                lines.append(
                    f"  no preset uses {', '.join(f'{k}={getattr(spec, k)!r}' for k in found['unusual'])}: no known "
                    "implementation computes this dialect; if it is not what you meant, that is the bug"
                )
        if self.named_dialect is None and ident.undetermined:
            lines.append(f"  not told apart by the probes: {', '.join(ident.undetermined)}")
        lines.extend(f"  {note}" for note in ident.notes)
        if found:
            lines.append(f"  to hold the loss to this dialect in CI: {found['pin']}")
        return lines


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
