"""Hold a loss to stored test vectors (``yolov1-loss check IMPL --vectors DIR``).

Each vector of the dialect and grid the loss is held to is replayed: its total against the
stored one, and its gradient in every cell where the stored point is far enough from a kink for
the loss's dtype (the criterion the properties use, cell by cell: a vector's hard cells leave its
ordinary ones comparable). Vectors of other dialects or grids are counted in the report.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections import Counter
from pathlib import Path

import numpy as np

from yolov1_loss.conformance.dialects.words import describe, preset_like
from yolov1_loss.conformance.grid_limits import DEFAULT_GRID
from yolov1_loss.conformance.inputs.example import Example
from yolov1_loss.conformance.reports.check_report import CheckReport
from yolov1_loss.conformance.suite.comparison import grad_size
from yolov1_loss.conformance.suite.failure import ConformanceFailure
from yolov1_loss.conformance.suite.tolerances import (
    comparable_cells,
    differs,
    element_fields,
    grad_tolerance,
    value_tolerance,
    worst_element,
)
from yolov1_loss.conformance.user_loss.implementation import Implementation, ImplementationError
from yolov1_loss.conformance.vectors.read import Folder, corrupt, entry_spec, read_index, read_vector
from yolov1_loss.conformance.vectors.write import VectorError
from yolov1_loss.reference import PRESETS, LossSpec


def replay(impl: Implementation, directory, spec: LossSpec, identified=None) -> CheckReport:
    report = CheckReport(impl.name, "error", spec=spec, identified=identified)
    report.setup = dict(
        layout=impl.layout,
        framework=impl.framework,
        dtype=impl.dtype,
        device=impl.device,
        S=spec.S,
        B=spec.B,
        C=spec.C,
        vectors=str(directory),
    )
    try:
        with Folder(directory) as folder:
            _replay_folder(report, impl, folder, spec)
    except VectorError as err:
        report.error = str(err)
        report.verdict = "error"
    return report


def _replay_folder(report: CheckReport, impl: Implementation, folder: Folder, spec: LossSpec) -> None:
    """Each vector of ``spec`` in the folder, read and replayed in turn; the verdict, or an error
    (the first vector that cannot be read ends the replay: VectorError)."""
    mine, others = [], Counter()
    for entry in read_index(folder):
        theirs = entry_spec(folder, entry)
        if theirs == spec:
            mine.append((entry, theirs))
        else:
            others[theirs] += 1
    if others:
        listed = "; ".join(f"{count} of {describe(s)} at S={s.S}, B={s.B}, C={s.C}" for s, count in others.items())
        report.left_out = [f"{sum(others.values())} vector(s) of other dialects or grids ({listed})"]
    if not mine:
        raise VectorError(
            f"{folder.path} holds no vectors for this dialect and grid ({describe(spec)}, S={spec.S}, B={spec.B}, "
            f"C={spec.C}); to write them: {write_command(spec, folder.path)}"
        )
    impl = impl if impl.fixed_spec == spec else _held(impl, spec)
    for entry, theirs in mine:
        vector = read_vector(folder, entry, theirs)
        example = Example(spec, vector.pred, vector.target)
        try:
            got = impl.evaluate(vector.pred, vector.target, spec, grads="total" if impl.has_gradient else "none")
        except ImplementationError as err:
            report.error = f"{vector.name}: the loss raised in {err.stage}: {err.detail}"
            return
        _check_total(report, impl, vector, example, got)
        if impl.has_gradient:
            _check_gradient(report, impl, vector, example, got, folder.path / str(entry["file"]))
    report.verdict = "differs" if report.failures else "conforms"


def write_command(spec: LossSpec, directory: Path) -> str:
    """The ``yolov1-loss vectors`` command that writes vectors of exactly ``spec`` (the preset
    nearest it, every knob that differs set on top), into a folder beside ``directory``."""

    def differing(preset: str) -> dict:
        theirs = preset_like(preset, spec).knobs()
        return {k: v for k, v in spec.knobs().items() if theirs[k] != v}

    preset = min(PRESETS, key=lambda name: len(differing(name)))
    out = directory.parent / f"{directory.name}-{preset}"
    words = ["yolov1-loss vectors --out", shlex.quote(str(out)), f"--preset {preset}"]
    words += [f"--set {k}={v}" for k, v in differing(preset).items()]  # (a float's str gives it back exactly)
    words += [f"--{k} {getattr(spec, k)}" for k, default in DEFAULT_GRID.items() if getattr(spec, k) != default]
    return " ".join(words)


def _held(impl: Implementation, spec: LossSpec) -> Implementation:
    return dataclasses.replace(impl, fixed_spec=spec)


def _check_total(report, impl, vector, example, got) -> None:
    name = f"vector {vector.name} total"
    expected = vector.values["total"]
    bad = np.any(differs(got.values["total"], expected, value_tolerance(example, impl.dtype, "total")))
    report.properties[name] = "failed" if bad else "passed"
    if bad:
        report.failures.append(
            ConformanceFailure(
                name,
                f"total is {got.values['total']}, the vector has {expected}",
                implementation=impl,
                component="total",
            )
        )


def _check_gradient(report, impl, vector, example, got, path) -> None:
    name = f"vector {vector.name} gradient"
    report.gradient_checks.add(name)
    cells = comparable_cells(example, impl.dtype, project=False)
    if not cells.any():
        report.properties[name] = "not applicable: every object cell of this vector lies at or near a kink"
        return
    expected = vector.grads["total"]
    per_element = cells[..., None]
    bad = ~np.isfinite(expected) & per_element
    if bad.any():  # (the oracle's gradient is finite away from kinks)
        raise corrupt(path, "grad_total", expected, bad, "in a cell away from every kink")
    size = grad_size(vector.grads, example.spec, "total")
    tolerance = np.broadcast_to(grad_tolerance(example, impl.dtype, "total", size), expected.shape)
    mask = np.broadcast_to(per_element, expected.shape)
    index = worst_element(got.grads["total"], expected, tolerance, mask)
    report.properties[name] = "passed" if index is None else "failed"
    if index is not None:
        count = int((differs(got.grads["total"], expected, tolerance) & mask).sum())
        report.failures.append(
            ConformanceFailure(
                name,
                f"d total / d pred differs from the vector's at {count} element(s)",
                implementation=impl,
                component="total",
                expected=float(expected[index]),
                actual=float(got.grads["total"][index]),
                tolerance=float(tolerance[index]),
                **element_fields(example.spec, index),
            )
        )
