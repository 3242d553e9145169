"""What a sweep prints and writes: a table of ratios against the fastest, JSON, and a throughput plot."""

from __future__ import annotations

import json
from collections import defaultdict

from yolov1_loss.benchmarks.sweep import Result


def group_key(result: Result) -> tuple:
    """Results that share a table (and a plot panel): same mode, grid, dtype and device."""
    return (result.mode, result.S, result.B, result.C, result.dtype, result.device)


def group_title(key: tuple) -> str:
    mode, S, B, C, dtype, device = key
    return f"{mode}, S={S} B={B} C={C}, {dtype}, {device}"


def grouped(results: list[Result]) -> dict[tuple, list[Result]]:
    """Results by :func:`group_key`, groups and their members in sweep order."""
    groups = defaultdict(list)
    for result in results:
        groups[group_key(result)].append(result)
    return dict(groups)


def ratios_to_fastest(results: list[Result]) -> dict[tuple[str, int], float]:
    """(contender, N) → its median time over the fastest median at that N (1.0 for the fastest)."""
    fastest = {}
    for r in results:
        if r.timing:
            fastest[r.n] = min(fastest.get(r.n, float("inf")), r.timing.median_s)
    return {(r.contender, r.n): r.timing.median_s / fastest[r.n] for r in results if r.timing}


def format_seconds(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def table(results: list[Result]) -> str:
    """One block per group: a row per contender, a column per N, each cell 'median (× the fastest)',
    the medians' units and the ratios' points each in line down a column.

    Contenders that were not timed get '-' and one note each saying why.
    """
    blocks = []
    for key, members in grouped(results).items():
        ratios = ratios_to_fastest(members)
        sizes = sorted({r.n for r in members})
        names = list(dict.fromkeys(r.contender for r in members))
        cells = {(r.contender, r.n): r for r in members}
        columns = {n: _column({name: cells.get((name, n)) for name in names}, ratios, n) for n in sizes}
        width = max(len(name) for name in names) + 2
        lines = [f"{group_title(key)}: median time per step (× the fastest at that N)"]
        lines.append(" " * width + "".join(columns[n][0] for n in sizes))
        lines += [name.ljust(width) + "".join(columns[n][1][name] for n in sizes) for name in names]
        notes = {}
        for r in members:
            if r.timing is None and r.why_not_timed:
                notes.setdefault(r.contender, r.why_not_timed)
        lines += [f"  {name}: not timed, {why}" for name, why in notes.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _column(results: dict, ratios: dict, n: int) -> tuple[str, dict]:
    """(the heading 'N=n', each contender's cell) of one column, all of one width (4 spaces
    before the widest): the median right-aligned, then its ratio right-aligned, so that units and
    ratios stand in line; '-' under the ratios for a contender not timed."""
    times = {name: format_seconds(r.timing.median_s) for name, r in results.items() if r and r.timing}
    marks = {name: f"(×{ratios[name, n]:.2f})" for name in times}
    time_width = max(map(len, times.values()), default=0)
    mark_width = max(map(len, marks.values()), default=1)
    cells = {
        name: f"{times[name]:>{time_width}} {marks[name]:>{mark_width}}" if name in times else f"{'-':>{mark_width}}"
        for name in results
    }
    heading = f"N={n}"
    width = max(len(heading), *map(len, cells.values())) + 4
    return heading.rjust(width), {name: cell.rjust(width) for name, cell in cells.items()}


def to_json(results: list[Result], machine: dict, settings: dict) -> str:
    """The whole sweep: machine, settings (threads, grid, dialect) and every result with its timing."""
    return json.dumps({"machine": machine, "settings": settings, "results": [r.as_dict() for r in results]}, indent=2)


def plot(results: list[Result], path: str) -> None:
    """Write a PNG: images per second against batch size, one panel per group, one line per contender."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    groups = grouped(results)
    names = list(dict.fromkeys(r.contender for r in results))
    colors = {name: f"C{i % 10}" for i, name in enumerate(names)}  # one colour per contender in every panel
    columns = min(3, len(groups))
    rows = -(-len(groups) // columns)
    figure, axes = pyplot.subplots(rows, columns, figsize=(5 * columns, 3.8 * rows), squeeze=False)
    for ax, (key, members) in zip(axes.flat, groups.items()):
        for name in dict.fromkeys(r.contender for r in members):
            timed = sorted((r.n, r.images_per_s) for r in members if r.contender == name and r.timing)
            if timed:
                ax.plot(*zip(*timed), marker="o", label=name, color=colors[name])
        ax.set(xscale="log", yscale="log", xlabel="batch size N", ylabel="images per second", title=group_title(key))
        ax.title.set_fontsize(9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(groups) :]:
        ax.set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
