"""What a check found, for a person (``summary()``) and for a machine (``to_dict()``, the JSON report)."""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import dataclass, field

import numpy as np

from yolov1_loss.conformance.dialects.verdict import unmatched, with_reason
from yolov1_loss.conformance.dialects.words import describe, set_flags, weights_line
from yolov1_loss.reference import LossSpec

VERDICT_EXIT = {"conforms": 0, "differs": 1, "error": 2}

# What each verdict means, for a page that says it (the README's "Exit status").
VERDICT_MEANING = {
    "conforms": "the loss computes the dialect named, or a known one, its values and gradients are the "
    "oracle's within tolerance, and no property fails (exit status 0)",
    "differs": "the loss computes another dialect or a known dialect's bug, a property fails, or it fails "
    "on ordinary input (exit status 1)",
    "error": "the loss could not be judged: it could not be loaded, failed on every probe, or its process "
    "died or hung (exit status 2)",
}


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
    named_dialect: str | None = None  # the known dialect the user named, None under --dialect auto
    overrides: dict = field(default_factory=dict)  # the knobs set with --set
    accept_any: bool = False  # --accept-any-dialect: any dialect with every term conforms
    dialect: object = None  # a conformance.dialects.verdict.DialectVerdict, where the values match a dialect
    properties: dict = field(default_factory=dict)  # name -> passed / failed / not applicable: why
    failures: list = field(default_factory=list)  # ConformanceFailure
    inputs: list = field(default_factory=list)  # InputFinding
    left_out: list = field(default_factory=list)  # words of the input classes left out of the properties
    hints: list = field(default_factory=list)  # conformance.dialects.hints.Hint: the usual mistakes, the likely cause
    blame: object = None  # a conformance.dialects.blame.Blame: where the loss parts from the oracle
    warnings: dict = field(default_factory=dict)  # "Category: message (at where)" -> count, what the loss warned
    error: str | None = None
    setup: dict = field(default_factory=dict)  # layout, framework, dtype, device, S, B, C, examples, seed
    strict: bool = False
    gradient_checks: set = field(default_factory=set)  # the names in ``properties`` that compare gradients
    command: str = ""  # 'yolov1-loss check TARGET' and the options that load and call the loss
    pictures: list = field(default_factory=list)  # conformance.reports.html.evidence.Picture, for --html

    def _undetermined(self) -> tuple:
        """The knobs identification could not tell apart (none under a named dialect)."""
        if self.identified is None or self.named_dialect is not None:
            return ()
        return self.identified.undetermined

    def echo(self) -> str:
        """The command as run: the loss's options and those that decide the verdict."""
        words = [self.command or f"yolov1-loss check {self.target}"]
        if self.named_dialect is not None:
            words.append(f"--dialect {self.named_dialect}")
        words += set_flags(self.overrides)
        words += ["--strict"] * self.strict + ["--accept-any-dialect"] * self.accept_any
        return " ".join(words)

    def reason(self) -> str:
        """What the loss differs from, after 'DIFFERS' ('from every known dialect', ': it fails on
        …'); '' where that is a property's failure alone, or it does not differ."""
        if self.verdict != "differs":
            return ""
        if self.identified is not None and not self.identified.matches:
            return unmatched(bool(self.named_dialect))
        if self.dialect is not None and not self.dialect.conforms:
            return self.dialect.reason
        return ""

    def verdict_line(self) -> str:
        """'verdict: CONFORMS', 'verdict: DIFFERS from every known dialect', 'verdict: ERROR (why)'."""
        if self.verdict == "error":
            return "verdict: ERROR" + (f" ({self.error})" if self.error else "")
        return f"verdict: {with_reason(self.verdict.upper(), self.reason())}"

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
        undetermined = self._undetermined()
        return {
            "target": self.target,
            "verdict": self.verdict,
            "reason": self.reason().removeprefix(": ") or None,
            "dialect": None
            if spec is None
            else {
                "preset": None if undetermined else spec.preset_name(),
                # a knob the probes could not tell apart has no value to give
                "knobs": {k: None if k in undetermined else v for k, v in spec.knobs().items()},
                "undetermined": list(undetermined),
                "S": spec.S,
                "B": spec.B,
                "C": spec.C,
                "named": self.named_dialect,
                "overrides": self.overrides,
                "identified": None
                if ident is None
                else {
                    "matches": ident.matches,
                    "plausible": ident.plausible,
                    "preset": ident.preset,
                    "residual": ident.residual,
                    "undetermined": list(ident.undetermined),
                    "absent": list(ident.absent),
                    "failed_probes": ident.failed_probes,
                    "notes": list(ident.notes),
                    "terms": [term._asdict() for term in ident.terms],
                    "fitted_weights": sorted(ident.fitted_weights),
                },
                "diagnosis": {} if self.dialect is None else self.dialect.to_dict(),
            },
            "value_match": self._matched(False),
            "grad_match": self._matched(True),
            "properties": self.properties,
            "failures": [failure.to_dict() for failure in self.failures],
            "inputs": [{"input": f.words, "degenerate": f.degenerate, "problem": f.problem} for f in self.inputs],
            "left_out": self.left_out,
            "hints": [h.to_dict() for h in self.hints],
            "blame": None if self.blame is None else self.blame.to_dict(),
            "warnings": self.warnings,
            "error": self.error,
            "setup": self.setup,
            "versions": versions(),
        }

    def summary(self) -> str:
        lines = [self.echo(), self.verdict_line(), *self.cause_lines(), *self.dialect_lines(), *self.finding_lines()]
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
            total = sum(self.warnings.values())
            lines.append(f"the loss warned ({total} warnings, one line per kind, with a count and one example):")
            lines.extend(f"  {count}× {text}" for text, count in self.warnings.items())
        for failure in self.failures:
            lines.append("")
            lines.extend(str(failure).splitlines())
        return "\n".join(lines)

    def cause_lines(self) -> list[str]:
        """The likely cause (a hint), and where the loss parts from the oracle ("what differs")."""
        lines = [line for h in self.hints for line in h.lines()]
        # An encoding bug the box_encoding property identified leads: it is why the terms differ.
        lead = [f"what differs: {f.lead}" for f in self.failures if getattr(f, "lead", None)]
        return lead + lines + (self.blame.lines() if self.blame is not None else [])

    def finding_lines(self) -> list[str]:
        """The loss's failures on classes of input, and the classes left out of the properties."""
        lines = [finding.line() for finding in self.inputs]
        if self.left_out:
            lines.append(f"left out of the properties: {'; '.join(self.left_out)}")
        return lines

    def dialect_lines(self) -> list[str]:
        """What the report says of the dialect: the one matched, or the nearest and the differences."""
        spec, ident = self.spec, self.identified
        if spec is None:
            return []
        if ident is None:
            return [f"dialect: {describe(spec)}"]
        if ident.matches:
            lines = (
                self.dialect.lines()
                if self.dialect is not None
                else [f"dialect: {describe(spec, self._undetermined())}"]
            )
            if self._undetermined():
                lines.append(f"  not told apart by the probes: {', '.join(self._undetermined())}")
            return lines + [f"  {note}" for note in ident.notes]
        named = self.named_dialect is not None
        as_checked = "as checked, " if self.hints else ""  # (the hint says how it fits)
        lines = (
            [f"dialect: {describe(spec)}, as named", f"  and {as_checked}{ident.notes[0]}"]
            if named
            else [f"dialect: {as_checked}{ident.notes[0]}"]
        )
        if ident.terms and not self.hints:  # (term by term, under a layout the hint says is not the loss's)
            lines.append("  term by term, on probes where only that term can be non-zero:")
            blame = self.blame
            lines.extend(
                f"    {term.line(blame is not None and blame.gradient_matches(term.family))}" for term in ident.terms
            )
        if not named:
            lines.append(f"  the properties hold it to the closest, {describe(spec)}")
            lines.append(f"  weights: {weights_line(spec, ident.fitted_weights)}")
        if ident.failed_probes:
            lines.append(f"  left out of the identification: {ident.failed_probes}")
        lines.extend(f"  {note}" for note in ident.notes[1:])
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
