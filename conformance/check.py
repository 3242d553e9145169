"""The check of a user's loss: is it right, which dialect is it, and where does it part from the oracle?

:func:`user_implementation` wraps a loss called as ``loss(pred, target)`` (in any layout,
torch or NumPy) as an :class:`Implementation`; :func:`run_check` identifies its dialect (or
takes the one named), runs every applicable property under Hypothesis and returns a
:class:`CheckReport`; :func:`replay_vectors` holds it to stored test vectors instead.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from hypothesis import settings as Settings

from yolov1_loss.conformance import runner
from yolov1_loss.conformance.compare import KINK_MARGIN, differs, grad_tolerance, value_tolerance
from yolov1_loss.conformance.dialect import Identification, identify
from yolov1_loss.conformance.example import Example
from yolov1_loss.conformance.failure import ConformanceFailure, ImplementationRaised
from yolov1_loss.conformance.implementation import Implementation, ImplementationError
from yolov1_loss.conformance.loading import load_callable, select_output
from yolov1_loss.conformance.profiles import suite_settings
from yolov1_loss.conformance.properties import PROPERTIES
from yolov1_loss.conformance.vectors import read_vectors
from yolov1_loss.reference import LossSpec, PRESETS

VERDICT_EXIT = {"conforms": 0, "differs": 1, "error": 2}


@dataclass
class CheckReport:
    """Everything a check found; ``to_dict()`` is the JSON report, ``summary()`` the terminal one."""

    target: str
    verdict: str  # conforms, differs or error
    spec: LossSpec | None = None  # the dialect held to
    identified: Identification | None = None
    named_dialect: str | None = None  # the preset the user named, None under --dialect auto
    properties: dict = field(default_factory=dict)  # name -> passed / failed / not applicable: why
    failures: list = field(default_factory=list)  # ConformanceFailure
    error: str | None = None
    setup: dict = field(default_factory=dict)  # layout, framework, dtype, device, S, B, C, examples, seed

    @property
    def exit_code(self) -> int:
        return VERDICT_EXIT[self.verdict]

    def _matched(self, needs_gradient: bool):
        ran = [name for name, status in self.properties.items() if PROPERTIES[name].needs_gradient == needs_gradient and not status.startswith("not applicable")]
        if self.verdict == "error" or not ran:
            return None
        failed = {f.property for f in self.failures}
        return not any(name in failed for name in ran)

    def to_dict(self) -> dict:
        spec = self.spec
        return {
            "target": self.target,
            "verdict": self.verdict,
            "dialect": None if spec is None else {
                "preset": spec.preset_name(),
                "knobs": spec.knobs(),
                "S": spec.S, "B": spec.B, "C": spec.C,
                "named": self.named_dialect,
                "identified": None if self.identified is None else {
                    "matches": self.identified.matches,
                    "preset": self.identified.preset,
                    "residual": self.identified.residual,
                    "undetermined": list(self.identified.undetermined),
                    "notes": list(self.identified.notes),
                },
            },
            "value_match": self._matched(False),
            "grad_match": self._matched(True),
            "properties": self.properties,
            "failures": [failure.to_dict() for failure in self.failures],
            "error": self.error,
            "setup": self.setup,
            "versions": versions(),
        }

    def summary(self) -> str:
        lines = [f"yolov1-loss check {self.target}"]
        lines.append(f"verdict: {self.verdict.upper()}" + (f" ({self.error})" if self.error else ""))
        if self.spec is not None:
            lines.append(f"dialect: {_describe(self.spec)}")
        ident = self.identified
        if ident is not None:
            if ident.matches and self.named_dialect and ident.spec != self.spec:
                lines.append(f"  the values match another dialect: {_describe(ident.spec)}")
            if ident.undetermined:
                lines.append(f"  not told apart by the probes: {', '.join(ident.undetermined)}")
            lines.extend(f"  {note}" for note in ident.notes)
        if self.properties:
            counts = {s: sum(1 for v in self.properties.values() if v.startswith(s)) for s in ("passed", "failed", "not applicable")}
            lines.append(f"properties: {counts['passed']} passed, {counts['failed']} failed, {counts['not applicable']} not applicable")
        for failure in self.failures:
            lines.append("")
            lines.extend(str(failure).splitlines())
        return "\n".join(lines)


def _describe(spec: LossSpec) -> str:
    preset = spec.preset_name()
    if preset:
        return f"preset {preset!r}"
    base = min(PRESETS, key=lambda name: _distance(spec, LossSpec.preset(name, S=spec.S, B=spec.B, C=spec.C)))
    nearest = LossSpec.preset(base, S=spec.S, B=spec.B, C=spec.C).knobs()
    changed = ", ".join(f"{k}={v!r}" for k, v in spec.knobs().items() if nearest[k] != v)
    return f"preset {base!r} with {changed}"


def _distance(a: LossSpec, b: LossSpec) -> int:
    return sum(a.knobs()[k] != b.knobs()[k] for k in a.knobs())


def versions() -> dict:
    import hypothesis
    import torch

    from yolov1_loss import __version__

    return {
        "yolov1-loss": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "hypothesis": hypothesis.__version__,
    }


def parse_overrides(pairs: list[str]) -> dict:
    """``["lambda_coord=3", "noobj_scope=cell"]`` → a dict of knob values, numbers as floats."""
    defaults = LossSpec().knobs()
    numeric = {name for name, value in defaults.items() if isinstance(value, float)}
    knobs = set(defaults)
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in knobs:
            raise ValueError(f"--set {pair!r}: expected KNOB=VALUE with KNOB one of {', '.join(sorted(knobs))}")
        try:
            out[name] = float(value) if name in numeric else value
        except ValueError:
            raise ValueError(f"--set {pair!r}: {name} takes a number") from None
    return out


def user_implementation(
    target: str,
    *,
    layout: str = "classes-first",
    framework: str = "torch",
    dtype: str = "float32",
    device: str = "cpu",
    output: str | None = None,
    grad: str | None = None,
    spec: LossSpec | None = None,
) -> Implementation:
    """The loss named ``target`` (``pkg.mod:attr`` or ``file.py:attr``), called as ``loss(pred, target)``.

    ``grad``: for a NumPy loss, the name of a callable in the same module returning the gradient
    of the total. ``spec``: the dialect it is held to (None: not yet known).
    """
    loss = select_output(load_callable(target), output)
    grad_fn = None
    if grad is not None:
        module = target.rpartition(":")[0]
        user_grad = load_callable(f"{module}:{grad}")
        grad_fn = lambda pred, tgt, _spec: user_grad(pred, tgt)
    options = dict(layout=layout, framework=framework, dtype=dtype, device=device, output=output, grad=grad)
    repro = "yolov1_loss.conformance.check.user_implementation(" + ", ".join(
        [repr(target)] + [f"{k}={v!r}" for k, v in options.items()] + [f"spec={spec!r}"]
    ) + ")"
    return Implementation(
        name=target,
        loss=lambda pred, tgt, _spec: loss(pred, tgt),
        framework=framework,
        dtype=dtype,
        layout=layout,
        grad=grad_fn,
        fixed_spec=spec,
        device=device,
        repro=repro,
    )


def _evaluate_total(impl: Implementation, pred, target, S: int, B: int, C: int, grads: str):
    """``impl.evaluate`` for identification, whose total may be a scalar or one value per image:
    tried as a scalar first, then (if the output's shape says so) per image."""
    for reduction in ("sum", "none"):
        try:
            return impl.evaluate(pred, target, LossSpec(S=S, B=B, C=C, reduction=reduction), grads=grads)
        except ImplementationError as err:
            if err.stage != "output" or reduction == "none":
                raise


def _values_fn(impl: Implementation, S: int, B: int, C: int) -> Callable:
    """The implementation's total on canonical arrays, for identification."""
    return lambda pred, target: _evaluate_total(impl, pred, target, S, B, C, "none").values["total"]


def _grad_fn(impl: Implementation, S: int, B: int, C: int) -> Callable | None:
    """d total / d pred on canonical arrays, for identification; None without gradients."""
    if not impl.has_gradient:
        return None
    return lambda pred, target: _evaluate_total(impl, pred, target, S, B, C, "total").grads["total"]


def _setup(impl: Implementation, S: int, B: int, C: int, **extra) -> dict:
    """How the loss was called, for the report."""
    return dict(layout=impl.layout, framework=impl.framework, dtype=impl.dtype, device=impl.device, S=S, B=B, C=C, **extra)


def settings_for(max_examples: int, seed: int | None) -> Settings:
    """The suite's ci settings with ``max_examples``; derandomized unless a seed is given."""
    return Settings(suite_settings(), max_examples=max_examples, derandomize=seed is None)


def resolve_dialect(impl: Implementation, S: int, B: int, C: int, dialect: str = "auto", overrides: dict | None = None):
    """(the spec to hold ``impl`` to, the identification of its values).

    The dialect is identified in any case (so a report can say what the loss looks like); under
    ``dialect='auto'`` the identified one is used, else the named preset; ``overrides`` go on top.
    Raises ValueError when the loss fails on every probe.
    """
    identified = identify(_values_fn(impl, S, B, C), S, B, C, _grad_fn(impl, S, B, C))
    base = identified.spec if dialect == "auto" else LossSpec.preset(dialect, S=S, B=B, C=C)
    return base.replace(**(overrides or {})), identified


def run_check(
    impl: Implementation,
    S: int = 7,
    B: int = 2,
    C: int = 20,
    dialect: str = "auto",
    overrides: dict | None = None,
    max_examples: int = 30,
    seed: int | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> CheckReport:
    """Identify ``impl``'s dialect (or take ``dialect``), then run every applicable property."""
    report = CheckReport(impl.name, "error", named_dialect=None if dialect == "auto" else dialect)
    report.setup = _setup(impl, S, B, C, max_examples=max_examples, seed=seed)
    progress("identifying the dialect")
    try:
        report.spec, report.identified = resolve_dialect(impl, S, B, C, dialect, overrides)
    except ValueError as err:
        report.error = str(err)
        return report
    spec = report.spec
    impl = dataclasses.replace(impl, fixed_spec=spec, repro=impl.repro.replace("spec=None", f"spec={spec!r}"))
    settings = settings_for(max_examples, seed)
    names = list(PROPERTIES)
    for k, name in enumerate(names, 1):
        reason = PROPERTIES[name].applies(impl)
        if reason:
            report.properties[name] = f"not applicable: {reason}"
            continue
        progress(f"[{k}/{len(names)}] {name}")
        failure = runner.find_failure(name, impl, settings=settings, seed=seed)
        report.properties[name] = "passed" if failure is None else "failed"
        if failure is None:
            continue
        report.failures.append(failure)
        if isinstance(failure, ImplementationRaised):
            report.error = f"the loss raised in {failure.stage}: {failure.message}"
            return report
    matched = dialect != "auto" or report.identified.matches
    report.verdict = "conforms" if matched and not report.failures else "differs"
    return report


def replay_vectors(impl: Implementation, directory, spec: LossSpec, identified: Identification | None = None) -> CheckReport:
    """Hold ``impl`` to the stored vectors of ``spec``'s dialect: totals, and gradients of the
    total where the vector is a margin away from every kink."""
    report = CheckReport(impl.name, "error", spec=spec, identified=identified)
    report.setup = _setup(impl, spec.S, spec.B, spec.C, vectors=str(directory))
    vectors = [v for v in read_vectors(directory) if v.spec == spec]
    if not vectors:
        report.error = f"{directory} holds no vectors for this dialect and grid ({_describe(spec)}, S={spec.S}, B={spec.B}, C={spec.C})"
        return report
    impl = dataclasses.replace(impl, fixed_spec=spec)
    for vector in vectors:
        example = Example(spec, vector.pred, vector.target)
        try:
            got = impl.evaluate(vector.pred, vector.target, spec, grads="total" if impl.has_gradient else "none")
        except ImplementationError as err:
            report.error = f"{vector.name}: the loss raised in {err.stage}: {err.detail}"
            return report
        problems = []
        tolerance = value_tolerance(example, impl.dtype, "total")
        if np.any(differs(got.values["total"], vector.values["total"], tolerance)):
            problems.append(f"total {got.values['total']} where the vector has {vector.values['total']}")
        if impl.has_gradient and vector.kink_margin >= KINK_MARGIN[impl.dtype]:
            expected = vector.grads["total"]
            if np.any(differs(got.grads["total"], expected, grad_tolerance(example, impl.dtype, "total", expected))):
                problems.append("the gradient of the total differs")
        report.properties[f"vector {vector.name}"] = "failed" if problems else "passed"
        if problems:
            report.failures.append(ConformanceFailure(f"vector {vector.name}", "; ".join(problems), implementation=impl))
    report.verdict = "differs" if report.failures else "conforms"
    return report


def write_json(report: CheckReport, path) -> None:
    with open(path, "w") as f:
        json.dump(report.to_dict(), f, indent=1, default=str)
