"""``yolov1-loss dialects``: the catalogue of known dialects, one line each, or one in full."""

from __future__ import annotations

import sys

from yolov1_loss.conformance.dialects import catalogue  # (imported at the parser's build anyway: --dialect's choices)


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "dialects",
        help="list the known dialects (the presets and public implementations), or show one",
        description="List the known YOLOv1 dialects, one line each: the presets and the dialects of "
        "public implementations, with what each is known for and its bug if it has one. With a NAME, "
        "show that dialect in full: how it differs from the paper, where it comes from, and the "
        "command that holds a loss to it.",
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="a dialect to show in full")
    parser.set_defaults(run=run)


def listing() -> str:
    """Every entry, one line each."""
    lines = ["Known dialects (yolov1-loss dialects NAME shows one in full):"]
    lines += [f"  {entry.line()}" for entry in catalogue.entries()]
    return "\n".join(lines)


def describe(entry: catalogue.Entry) -> str:
    """One entry in full: what it is known for, its bug, how it differs from the paper in words,
    its weights, where it comes from, the layout and grid its code takes, and the pin command."""
    from yolov1_loss.conformance.dialects.words import differences, pin_command, preset_like, weights_line
    from yolov1_loss.reference.spec import WEIGHTS

    spec = entry.native_spec()
    lines = [f"{entry.name}: {entry.known_for}."]
    if entry.bug:
        lines.append(f"BUG: {entry.bug}.")
    if not entry.expressible:
        lines.append(f"not expressible by the knobs: {entry.not_expressible}.")
    if entry.preset:
        lines.append(f"preset: {entry.preset} (--dialect {entry.preset})")
    changed = differences(spec, preset_like("paper", spec))
    lines.append("how it differs from preset 'paper':" + ("" if changed else " in nothing"))
    lines += [f"  {line}" for line in changed]
    lines.append(f"weights: {weights_line(spec, fitted=(*WEIGHTS, 'lambda_noobj_object'))}")
    lines.append(f"source: {entry.source}")
    lines.append(f"layout: {entry.layout}" if entry.layout else "layout: none of the project's (see the notes)")
    lines.append("written for: " + ", ".join(f"{k}={v}" for k, v in entry.written_for.items()))
    if entry.expressible:
        lines.append(f"to hold a loss to it: {pin_command(check_command(entry), spec)}")
    if entry.notes:
        lines.append(f"notes: {entry.notes}")
    lines.append(f"checked: {entry.checked}")
    return "\n".join(lines)


def check_command(entry: catalogue.Entry) -> str:
    """``yolov1-loss check LOSS`` with the layout and grid options of the entry's code."""
    from yolov1_loss.conformance.grid_limits import DEFAULT_GRID

    words = ["yolov1-loss check LOSS"]
    if entry.layout and entry.layout != "classes-first":
        words.append(f"--layout {entry.layout}")
    words += [f"--{k} {v}" for k, v in entry.written_for.items() if v != DEFAULT_GRID[k]]
    return " ".join(words)


def run(args) -> int:
    if args.name is None:
        print(listing())
        return 0
    try:
        entry = catalogue.by_name(args.name)
    except ValueError as err:
        print(f"yolov1-loss dialects: {err}", file=sys.stderr)
        return 2
    print(describe(entry))
    return 0
