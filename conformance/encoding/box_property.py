"""The property ``box_encoding`` of ``check --targets boxes|padded``: on the box hard cases
(:mod:`.cases`: centres on cell edges and at 0 and 1, two or three centres in one cell, boxes of
every size, an image with none), the loss of the boxes, handed over as they are, equals the
oracle's loss of the grid the oracle's encoder makes of them, under the dialect the check holds
the loss to. Where it does not, the loss's encoding is identified as ``check-encoder`` identifies
an encoder's (:mod:`.conventions`), here from the loss's values, and said in words.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from yolov1_loss import reference
from yolov1_loss.conformance.encoding.cases import BoxCase, box_cases
from yolov1_loss.conformance.encoding.conventions import (
    CANDIDATES,
    Conventions,
    at_one,
    duplicates_words,
    encode_with,
    raised_words,
)
from yolov1_loss.conformance.suite.failure import ConformanceFailure
from yolov1_loss.conformance.user_loss.implementation import Implementation, ImplementationError
from yolov1_loss.reference.encode import DUPLICATES, cell_of

NAME = "box_encoding"
# Relative tolerance of a total: the cases' inputs are exact in both dtypes, so what differs is
# the arithmetic's rounding, summed over at most S² cells.
RTOL = {"float32": 1e-4, "float64": 1e-9}


def case_inputs(S: int, B: int, C: int, k: int):
    """(pred (1, S, S, C + 5B), case) of box case ``k``: the prediction drawn from seed ``k``,
    positive sizes and confidences, as a network's sigmoid outputs are."""
    case = box_cases(S, C)[k]
    pred = np.random.default_rng(k).uniform(0.05, 0.95, (1, S, S, C + 5 * B)).astype(np.float32)
    return pred.astype(np.float64), case


def _oracle(pred, grid, spec) -> np.ndarray:
    return np.asarray(reference.loss(pred, grid[None], spec).total, dtype=np.float64)


def _close(got, expected, dtype: str) -> bool:
    scale = 1.0 + np.abs(expected)
    return bool(np.all(np.abs(got - expected) <= RTOL[dtype] * scale))


def _loss_value(impl: Implementation, pred, case: BoxCase, spec):
    """The loss's value on ``pred`` and the case's boxes, handed over as they are in its format."""
    given = dataclasses.replace(impl.targets, given=(impl.targets.rows(case.boxes, case.labels),))
    grid = np.zeros((1, spec.S, spec.S, spec.C + 5))  # (not read: the boxes are given)
    return dataclasses.replace(impl, targets=given).evaluate(pred, grid, spec).values["total"]


class BoxEncodingFailure(ConformanceFailure):
    """The loss's value on a box case is not the oracle's on the grid of those boxes."""

    def __init__(self, message: str, impl, spec, k: int, lead: str | None = None, **fields):
        super().__init__(NAME, message, implementation=impl, **fields)
        self.spec, self.k, self.case_words = spec, k, box_cases(spec.S, spec.C)[k].words
        # The encoding bug identified, in words, that leads the report (before what the loss terms
        # seem to do: a wrong grid makes them differ); None where no encoding explains the values.
        self.lead = lead

    def reproduction(self) -> str:
        impl = getattr(self.implementation, "repro", "") or "...  # the implementation under test"
        s = self.spec
        return "\n".join(
            [
                "import dataclasses, numpy as np",
                "import yolov1_loss.conformance.user_loss.loading, yolov1_loss.conformance.encoding.box_targets",
                "from yolov1_loss import reference",
                "from yolov1_loss.conformance.encoding.box_property import case_inputs",
                "from yolov1_loss.reference import LossSpec",
                f"spec = {s!r}",
                f"pred, case = case_inputs({s.S}, {s.B}, {s.C}, {self.k})  # {self.case_words}",
                f"impl = {impl}",
                "boxes = dataclasses.replace(impl.targets, given=(impl.targets.rows(case.boxes, case.labels),))",
                "grid = np.zeros((1, spec.S, spec.S, spec.C + 5))",
                "print(dataclasses.replace(impl, targets=boxes).evaluate(pred, grid, spec).values['total'])  # the loss",
                "print(reference.loss(pred, reference.encode(case.boxes, case.labels, spec.S, spec.C)[None], spec).total)  # the oracle",
            ]
        )


def box_encoding_failure(impl: Implementation, spec) -> BoxEncodingFailure | None:
    """The first box case on which ``impl`` (a loss taking boxes, held to ``spec``) is not the
    oracle's loss of the oracle's grid (duplicates: its targets' ``duplicates``, or any of
    DUPLICATES under 'any'), with what its encoding does, in words; None where it is on every case."""
    duplicates = impl.targets.duplicates
    S, B, C = spec.S, spec.B, spec.C
    cases = box_cases(S, C)
    values, raised = {}, {}
    for k, case in enumerate(cases):
        pred, _ = case_inputs(S, B, C, k)
        try:
            values[k] = _loss_value(impl, pred, case, spec)
        except ImplementationError as err:
            raised[case.words] = err.detail
    fits = lambda conventions, ks: all(
        _close(
            values[k],
            _oracle(case_inputs(S, B, C, k)[0], encode_with(cases[k].boxes, cases[k].labels, S, C, conventions), spec),
            impl.dtype,
        )
        for k in ks
    )
    policies = DUPLICATES if duplicates == "any" else (duplicates,)
    if not raised and any(fits(Conventions(duplicates=p), values) for p in policies):
        return None
    found = min(
        (c for c in CANDIDATES if fits(c, values)), key=lambda c: (len(c.bugs), c.duplicates != "first"), default=None
    )
    words = raised_words(raised, "the loss")
    identified = found is not None
    if found is not None:
        words += found.bugs
        if found.duplicates not in policies:
            k = next(k for k, case in enumerate(cases) if "in one cell" in case.words)
            row, col = (int(v) for v in cell_of(cases[k].boxes[0, [1, 0]], S))
            words.append(
                f"two objects in cell ({row}, {col}): the loss keeps {duplicates_words(found.duplicates)}, the oracle's encoder {duplicates_words(policies[0])}"
            )
    else:
        edge = [k for k in values if at_one(cases[k])]
        rest = [k for k in values if k not in edge]
        if edge and any(fits(Conventions(duplicates=p), rest) for p in policies):
            identified = True
            words += [_placement_words(impl, spec, cases, k, values[k]) for k in edge if not fits(Conventions(), [k])]
        else:
            words.append(
                "its values on boxes match the oracle's on no grid its encoding could make (checked: the spec's conventions and the classic bugs)"
            )
    expected = policies[0] if found is None or found.duplicates not in policies else found.duplicates
    wrong = next((k for k in values if not fits(Conventions(duplicates=expected), [k])), None)
    k = wrong if wrong is not None else next(k for k, case in enumerate(cases) if case.words in raised)
    return BoxEncodingFailure(
        "the loss's own encoding of boxes differs from the oracle's: " + "; ".join(words),
        impl,
        spec,
        k,
        lead=f"the loss encodes its boxes unlike the oracle's encoder: {'; '.join(words)}" if identified else None,
        component="total",
        image=0,
        expected=float(
            np.sum(
                _oracle(
                    case_inputs(S, B, C, k)[0],
                    encode_with(cases[k].boxes, cases[k].labels, S, C, Conventions(duplicates=expected)),
                    spec,
                )
            )
        ),
        actual=float(np.sum(values[k])) if k in values else None,
        note=f"on {cases[k].words}",
    )


def _placement_words(impl, spec, cases, k: int, value) -> str:
    """Where the loss put the object of a case with a centre at 1.0: the cell (or none) whose grid
    gives the oracle the loss's value, in words."""
    S, B, C = spec.S, spec.B, spec.C
    pred, case = case_inputs(S, B, C, k)
    (cx, cy, w, h), label = case.boxes[0], case.labels[0]
    options = [("no cell (the object is dropped)", np.zeros((S, S, C + 5)))]
    for row in range(S):
        for col in range(S):
            for x, y in {(cx * S - col, cy * S - row), (cx * S - min(int(cx * S), S), cy * S - min(int(cy * S), S))}:
                grid = np.zeros((S, S, C + 5))
                grid[row, col, label] = 1
                grid[row, col, C:] = [1, x, y, w, h]
                options.append((f"cell ({row}, {col})", grid))
    where = next((words for words, grid in options if _close(value, _oracle(pred, grid, spec), impl.dtype)), None)
    spec_cell = f"({cell_of(cy, S)}, {cell_of(cx, S)})"
    if where is None:
        return f"on {case.words}, the loss's value matches no placement of the object (the oracle's encoder puts it in cell {spec_cell})"
    return f"the loss puts the object of {case.words} in {where}; the oracle's encoder puts it in cell {spec_cell}, the last"
