"""``yolov1-loss explain``: the article's worked example, evaluated by the oracle in any preset."""

from __future__ import annotations

from yolov1_loss.reference import PRESETS, LossSpec, loss
from yolov1_loss.reference.article import CASES, CELL, CLASS, TARGET_BOX, case_inputs


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "explain",
        help="print the walkthrough article's cell (3, 3) example, evaluated by the oracle",
        description="Evaluate the walkthrough article's eleven cases (one image, S=7, B=2, C=20, "
        "an object of class 7 in cell (3, 3)) with the reference oracle, one component each.",
    )
    parser.add_argument("--preset", default="article", choices=list(PRESETS), help="dialect (default: article)")
    parser.set_defaults(run=run)


def report(preset: str) -> str:
    """The worked example as text: the setup, then one line per case."""
    spec = LossSpec.preset(preset)
    lines = [
        f"The YOLOv1 loss, preset {preset!r}: {spec.knobs()}",
        f"One image, S={spec.S}, B={spec.B}, C={spec.C}; an object of class {CLASS} in cell {CELL} "
        f"with target box (x, y, w, h) = {TARGET_BOX}. Every other value is 0.",
        "",
        f"{'case':>4}  {'prediction in cell (3, 3)':<44} {'component':<9} {'oracle':>12}"
        + (f" {'article':>10}" if preset == "article" else ""),
    ]
    for case in CASES:
        value = getattr(loss(*case_inputs(case, spec), spec), case.component)
        line = f"{case.number:>4}  {case.setup:<44} {case.component:<9} {value:>12.4e}"
        if preset == "article":
            line += f" {case.article_value:>10.4g}"
        lines.append(line)
    return "\n".join(lines)


def run(args) -> int:
    print(report(args.preset))
    return 0
