"""``check-encoder``: a user's encoder held to the oracle's (:func:`yolov1_loss.reference.encode`).

The encoder runs on the hard cases (:mod:`.cases`), in the loss's worker process (the same
isolation as ``check``: :class:`~yolov1_loss.conformance.user_loss.isolation.Worker`) or, for a
debugger, here. Its conventions are identified as the one combination of :mod:`.conventions` that
makes the grids it made (where it did not raise); it conforms when that is the spec's, with the
duplicates policy asked for (any, unless ``duplicates`` names one). Otherwise the report names each
bug in words, then each case whose grid differs: the box, the cell, both grids' values there, and
Python that reproduces it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from yolov1_loss.conformance.encoding.calling import EncoderCall, call_encoder
from yolov1_loss.conformance.encoding.cases import BoxCase, box_cases
from yolov1_loss.conformance.encoding.conventions import (
    CANDIDATES,
    Conventions,
    at_one,
    duplicates_words,
    encode_with,
    placed_words,
    raised_words,
)
from yolov1_loss.conformance.user_loss.implementation import ImplementationError
from yolov1_loss.reference import LAYOUTS, target_from_canonical, target_to_canonical
from yolov1_loss.reference.encode import BOX_FORMATS, DUPLICATES, from_fractions, to_fractions

# Grids are compared in float32's precision: an offset cx·S − column loses ~S ulps of cx.
TOLERANCE = 1e-5
MAX_CASES_SHOWN = 3


@dataclass(frozen=True)
class EncoderOptions:
    """What ``check-encoder`` is told: the encoder (``FILE.py:NAME`` or ``module:NAME``), how it
    is called (:class:`EncoderCall`), its boxes' format and units, the duplicates policy it must
    follow ('any': each of the three conforms, and the report says which it follows)."""

    target: str
    call: EncoderCall
    box_format: str = "cxcywh"
    image_size: tuple | None = None
    duplicates: str = "any"
    timeout: float = 60.0

    def __post_init__(self):
        if self.duplicates not in ("any", *DUPLICATES):
            raise ValueError(f"duplicates must be 'any' or one of {DUPLICATES}, got {self.duplicates!r}")

    def command(self) -> str:
        """The command line that says this: each option that is not its default (the box options as
        ``check --targets`` writes them, :meth:`BoxTargets.options`)."""
        from yolov1_loss.conformance.encoding.box_targets import BoxTargets

        c, default = self.call, EncoderCall(7, 2, 20)
        words = [f"yolov1-loss check-encoder {self.target}"]
        words += [f"--layout {c.layout}"] if c.layout != default.layout else []
        words += [
            f"--{name} {getattr(c, name)}" for name in ("S", "B", "C") if getattr(c, name) != getattr(default, name)
        ]
        box = BoxTargets(box_format=self.box_format, image_size=self.image_size, duplicates=self.duplicates)
        words += box.options()[1:]  # (not --targets: an encoder always takes boxes)
        words += ["--batch"] if c.batch else []
        words += [f"--framework {c.framework}"] if c.framework != default.framework else []
        words += [f"--dtype {c.dtype}"] if c.dtype != default.dtype else []
        words += [f"--timeout {self.timeout:g}"] if self.timeout != 60.0 else []
        return " ".join(words)

    def given(self, case: BoxCase) -> np.ndarray:
        """The case's boxes as the encoder takes them (its format and units)."""
        return from_fractions(case.boxes, self.box_format, self.image_size)


@dataclass
class Difference:
    """One case whose grid differs from the oracle's, in words."""

    case: str
    lines: list
    python: str


@dataclass
class EncoderReport:
    target: str
    command: str | None = None  # the command line that says the options (EncoderOptions.command)
    verdict: str = "error"  # 'conforms', 'differs' or 'error'
    error: str | None = None
    conventions: Conventions | None = None
    bugs: list = field(default_factory=list)  # what is wrong, in words, first lines
    raised: dict = field(default_factory=dict)  # case words -> what the encoder raised
    differences: list = field(default_factory=list)
    hint: str | None = None  # another layout under which it conforms

    @property
    def exit_status(self) -> int:
        return {"conforms": 0, "differs": 1}.get(self.verdict, 2)

    def lines(self) -> list[str]:
        out = [self.command or f"yolov1-loss check-encoder {self.target}"]
        if self.verdict == "error":
            return [*out, "verdict: could not be checked", f"  {self.error}"]
        out.append(f"verdict: {self.verdict.upper()}")
        out += [f"hint: {self.hint}"] if self.hint else []
        out += [f"wrong: {bug}" for bug in self.bugs]
        if self.conventions is not None:
            out.append(
                f"duplicates: a cell holding several centres keeps {duplicates_words(self.conventions.duplicates)}"
            )
        elif self.verdict == "differs":
            out.append("conventions: no combination of the known conventions makes its grids")
        for difference in self.differences[:MAX_CASES_SHOWN]:
            out.append(f"on {difference.case}:")
            out += [f"  {line}" for line in difference.lines]
            out.append("  to reproduce:")
            out += [f"    {line}" for line in difference.python.splitlines()]
        if len(self.differences) > MAX_CASES_SHOWN:
            out.append(f"(and {len(self.differences) - MAX_CASES_SHOWN} more cases differ)")
        return out


# --- running the encoder ------------------------------------------------------------------------


class InProcess:
    """The encoder loaded and called here (no isolation)."""

    def __init__(self, options: EncoderOptions):
        from yolov1_loss.conformance.user_loss.loading import load_callable

        self.encoder, self.call = load_callable(options.target), options.call

    def grids(self, boxes: list, labels: list) -> np.ndarray:
        return call_encoder(self.encoder, self.call, boxes, labels)

    def close(self) -> None:
        pass


class Isolated:
    """The encoder loaded and called in a worker process of its own, as ``check`` runs a loss."""

    def __init__(self, options: EncoderOptions):
        from yolov1_loss.conformance.check import CheckOptions
        from yolov1_loss.conformance.user_loss.isolation import Worker

        call = options.call
        loading = CheckOptions(options.target, framework=call.framework, dtype=call.dtype, timeout=options.timeout)
        self.worker, self.call = Worker(loading, options.timeout, runs="encoder"), call

    def grids(self, boxes: list, labels: list) -> np.ndarray:
        c = self.call
        shape = (len(boxes), c.S, c.S, c.C + 5)
        request = ("encode", self.call, boxes, labels)
        return self.worker.request("encoding", request, arrays={"grid": ("float64", shape)})[1]["grid"]

    def close(self) -> None:
        self.worker.close()


# --- holding its grids to the oracle's ----------------------------------------------------------


def _matches(got: np.ndarray, expected: np.ndarray, C: int) -> bool:
    """Whether two (S, S, C + 5) grids hold the same objects: objectness everywhere, classes and
    box in the object cells (what empty cells hold, no loss reads)."""
    o = expected[..., C]
    if not np.array_equal(got[..., C], o):
        return False
    cells = o == 1
    return bool(np.allclose(got[cells], expected[cells], rtol=TOLERANCE, atol=TOLERANCE))


def _fits(conventions: Conventions, cases, grids: dict, S: int, C: int) -> bool:
    return all(
        _matches(grids[k], encode_with(c.boxes, c.labels, S, C, conventions), C)
        for k, c in enumerate(cases)
        if k in grids
    )


def identify(cases: list[BoxCase], grids: dict, S: int, C: int) -> Conventions | None:
    """The conventions that make every grid the encoder made ({case index: grid}), preferring
    those with fewest bugs and the default policy; None where no combination does."""
    fitting = [c for c in CANDIDATES if _fits(c, cases, grids, S, C)]
    return min(fitting, key=lambda c: (len(c.bugs), c.duplicates != "first"), default=None)


def _cell_words(grid: np.ndarray, row: int, col: int, C: int) -> str:
    values = grid[row, col]
    if values[C] != 1:
        return "no object"
    x, y, w, h = values[C + 1 :]
    return f"class {int(np.argmax(values[:C]))}, x {x:.6g}, y {y:.6g}, w {w:.6g}, h {h:.6g}"


def _difference(options: EncoderOptions, case: BoxCase, got: np.ndarray, expected: np.ndarray) -> Difference:
    C = options.call.C
    lines = []
    given = options.given(case)
    for row, col in np.argwhere((got[..., C] == 1) | (expected[..., C] == 1)):
        if _matches(got[row : row + 1, col : col + 1], expected[row : row + 1, col : col + 1], C):
            continue
        lines.append(
            f"cell ({row}, {col}): the encoder's {_cell_words(got, row, col, C)}; the oracle's {_cell_words(expected, row, col, C)}"
        )
    boxes = "\n".join(
        f"  box {m} {tuple(round(float(v), 9) for v in b)}, class {int(k)}"
        for m, (b, k) in enumerate(zip(given, case.labels))
    )
    return Difference(
        case.words, [f"boxes ({options.box_format}):", *boxes.splitlines(), *lines], _python(options, case)
    )


def _python(options: EncoderOptions, case: BoxCase) -> str:
    c = options.call
    boxes = repr([[float(v) for v in b] for b in options.given(case)])
    labels = repr([int(k) for k in case.labels])
    wrap = "torch.tensor" if c.framework == "torch" else "np.array"
    args = f"{wrap}({boxes}, dtype={'torch.' if c.framework == 'torch' else 'np.'}{c.dtype}), {wrap}({labels})"
    if c.batch:
        args = f"[{args.split('), ')[0]})], [{wrap}({labels})]"
    units = f", image_size={tuple(options.image_size)!r}" if options.image_size else ""
    lines = [
        "import numpy as np" + (", torch" if c.framework == "torch" else ""),
        "from yolov1_loss.conformance.user_loss.loading import load_callable",
        "from yolov1_loss.reference import encode",
        f"encoder = load_callable({options.target!r})",
        f"print(encoder({args}))  # the {c.layout} layout",
        f"print(encode({boxes}, {labels}, S={c.S}, C={c.C}, box_format={options.box_format!r}{units}))",
    ]
    return "\n".join(lines)


def _layout_hint(call: EncoderCall, cases, grids: dict) -> str | None:
    """'its grids are the oracle's in the LAYOUT layout: try --layout LAYOUT' where read in another
    layout (each a pure gather of the same values) its grids follow the spec's conventions."""
    S, B, C = call.S, call.B, call.C
    for layout in LAYOUTS:
        if layout == call.layout:
            continue
        try:
            read = {
                k: target_to_canonical(target_from_canonical(g[None], call.layout, S, B, C), layout, S, B, C)[0]
                for k, g in grids.items()
            }
        except ValueError:  # (boxes-first: the slots differ)
            continue
        found = identify(cases, read, S, C)
        if found is not None and not found.bugs:
            return f"its grids are the oracle's in the {layout} layout: try --layout {layout}"
    return None


def _format_hint(options: EncoderOptions, cases, grids: dict) -> str | None:
    """'its boxes are probably xyxy: try --box-format xyxy' where its grids are the oracle's of the
    boxes it was given read in the other format."""
    C = options.call.C
    for box_format in BOX_FORMATS:
        if box_format == options.box_format:
            continue
        read = [
            BoxCase(c.words, to_fractions(options.given(c), box_format, options.image_size), c.labels) for c in cases
        ]
        found = identify(read, grids, options.call.S, C)
        if found is not None and not found.bugs:
            return f"its boxes are probably {box_format}: try --box-format {box_format}"
    return None


def check_encoder(options: EncoderOptions, here: bool = False) -> EncoderReport:
    """Run the check; ``here``: in this process (no isolation)."""
    from yolov1_loss.conformance.user_loss.isolation import LossRaised, WorkerDied
    from yolov1_loss.conformance.user_loss.loading import LoadError

    report = EncoderReport(options.target, options.command())
    c = options.call
    try:
        runner = InProcess(options) if here else Isolated(options)
    except (LoadError, LossRaised, WorkerDied) as err:
        report.error = f"the encoder could not be loaded: {err}"
        return report
    cases = box_cases(c.S, c.C)
    grids = {}
    try:
        for k, case in enumerate(cases):
            try:
                grids[k] = runner.grids([options.given(case)], [case.labels])[0]
            except ImplementationError as err:
                report.raised[case.words] = f"{err.stage}: {err.detail}" if err.stage == "output" else err.detail
    except WorkerDied as err:
        report.error = str(err)
        return report
    finally:
        runner.close()
    if not grids:
        report.error = f"the encoder failed on every case: {next(iter(report.raised.values()))}"
        return report
    _judge(report, options, cases, grids)
    return report


def _judge(report: EncoderReport, options: EncoderOptions, cases, grids: dict) -> None:
    S, C = options.call.S, options.call.C
    found = identify(cases, grids, S, C)
    report.bugs = raised_words(report.raised, "the encoder")
    if found is None:  # right but for centres at 1.0? (a flat index that wraps, say)
        edge = {k for k, case in enumerate(cases) if at_one(case)}
        found = identify(cases, {k: g for k, g in grids.items() if k not in edge}, S, C)
        if found is not None:
            report.bugs += [placed_words(cases[k], grids[k], C, "the encoder") for k in sorted(edge & grids.keys())]
    report.conventions = found
    if found is None:
        report.hint = _layout_hint(options.call, cases, grids) or _format_hint(options, cases, grids)
    if found is not None:
        report.bugs += found.bugs
        if options.duplicates not in ("any", found.duplicates):
            report.bugs.append(
                f"two objects in one cell: the encoder keeps {duplicates_words(found.duplicates)} where {duplicates_words(options.duplicates)} is meant"
            )
    policy = options.duplicates if options.duplicates != "any" else (found.duplicates if found else "first")
    spec = Conventions(duplicates=policy)
    for k, case in enumerate(cases):
        expected = encode_with(case.boxes, case.labels, S, C, spec)
        if k in grids and not _matches(grids[k], expected, C):
            report.differences.append(_difference(options, case, grids[k], expected))
    report.verdict = "conforms" if not report.bugs and not report.differences and found is not None else "differs"
