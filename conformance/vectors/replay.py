"""Hold a loss to stored test vectors (``yolov1-loss check IMPL --vectors DIR``).

Each vector of the dialect and grid the loss is held to is replayed: its total against the
stored one, and its gradient in every cell where the stored point is far enough from a kink for
the loss's dtype (the criterion the properties use, cell by cell: a vector's hard cells leave its
ordinary ones comparable). Vectors of other dialects or grids are counted in the report.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np

from yolov1_loss.conformance.dialects.words import describe
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
from yolov1_loss.conformance.vectors.write import VectorError, entry_spec, read_index, read_vector
from yolov1_loss.reference import LossSpec


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
        entries = read_index(directory)
        mine = [entry for entry in entries if entry_spec(directory, entry) == spec]
        others = Counter(
            describe(entry_spec(directory, e)) + f" at S={e['S']}, B={e['B']}, C={e['C']}"
            for e in entries
            if e not in mine
        )
        vectors = [read_vector(directory, entry) for entry in mine]
    except VectorError as err:
        report.error = str(err)
        return report
    if others:
        listed = "; ".join(f"{count} of {what}" for what, count in others.items())
        report.left_out = [f"{sum(others.values())} vector(s) of other dialects or grids ({listed})"]
    if not vectors:
        report.error = f"{directory} holds no vectors for this dialect and grid ({describe(spec)}, S={spec.S}, B={spec.B}, C={spec.C})"
        return report
    impl = impl if impl.fixed_spec == spec else _held(impl, spec)
    for vector in vectors:
        example = Example(spec, vector.pred, vector.target)
        try:
            got = impl.evaluate(vector.pred, vector.target, spec, grads="total" if impl.has_gradient else "none")
        except ImplementationError as err:
            report.error = f"{vector.name}: the loss raised in {err.stage}: {err.detail}"
            return report
        _check_total(report, impl, vector, example, got)
        if impl.has_gradient:
            _check_gradient(report, impl, vector, example, got)
    report.verdict = "differs" if report.failures else "conforms"
    return report


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


def _check_gradient(report, impl, vector, example, got) -> None:
    name = f"vector {vector.name} gradient"
    report.gradient_checks.add(name)
    cells = comparable_cells(example, impl.dtype, project=False)
    if not cells.any():
        report.properties[name] = "not applicable: every object cell of this vector lies at or near a kink"
        return
    expected = vector.grads["total"]
    size = grad_size(vector.grads, example.spec, "total")
    tolerance = np.broadcast_to(grad_tolerance(example, impl.dtype, "total", size), expected.shape)
    mask = np.broadcast_to(cells[..., None], expected.shape)
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
