"""The side-by-side table, the JSON and the plot, on results made up for the purpose."""

from __future__ import annotations

import json

import pytest

from yolov1_loss.benchmarks.report import format_seconds, plot, ratios_to_fastest, table, to_json
from yolov1_loss.benchmarks.sweep import Result
from yolov1_loss.benchmarks.targets import Outcome, speedup
from yolov1_loss.benchmarks.timing import Timing


def result(contender, n, median_s=None, mode="forward+backward", **fields):
    timing = Timing(median_s, median_s * 0.9, median_s * 1.1, 7) if median_s else None
    return Result(contender, mode, n, 7, 2, 20, "float32", "cpu", timing=timing, **fields)


RESULTS = [
    result("slow", 1, 4e-3),
    result("fast", 1, 1e-3),
    result("slow", 64, 2e-2),
    result("fast", 64, 4e-2),
    result("absent", 1, skipped="needs a GPU"),
    result("absent", 64, skipped="needs a GPU"),
    result("wrong", 1, fault="differs from the oracle: total 3, the oracle's 4"),
]


def test_ratios_are_against_the_fastest_at_each_batch_size():
    assert ratios_to_fastest(RESULTS) == {("slow", 1): 4.0, ("fast", 1): 1.0, ("slow", 64): 1.0, ("fast", 64): 2.0}


def test_the_table_shows_times_ratios_and_why_a_contender_was_not_timed():
    lines = table(RESULTS).splitlines()
    assert lines[0] == "forward+backward, S=7 B=2 C=20, float32, cpu: median time per step (× the fastest at that N)"
    assert lines[1].split() == ["N=1", "N=64"]
    assert lines[2].split() == ["slow", "4", "ms", "(×4.00)", "20", "ms", "(×1.00)"]
    assert lines[3].split() == ["fast", "1", "ms", "(×1.00)", "40", "ms", "(×2.00)"]
    assert lines[4].split() == ["absent", "-", "-"]
    assert lines[5].split() == ["wrong", "-", "-"]
    assert lines[6:] == [
        "  absent: not timed, needs a GPU",
        "  wrong: not timed, differs from the oracle: total 3, the oracle's 4",
    ]


def test_the_units_and_the_ratios_stand_in_line_down_each_column():
    # The stranger's table: a median of four characters beside ones of three, a ratio of two
    # digits beside ones of one (medians in µs: 52.2 the fastest, then 344, then 792).
    rows = table([result("reference", 1, 344e-6), result("naive", 1, 792e-6), result("fused", 1, 52.2e-6)])
    heading, *lines = rows.splitlines()[1:]
    assert [line.split()[1:] for line in lines] == [
        ["344", "µs", "(×6.59)"],
        ["792", "µs", "(×15.17)"],
        ["52.2", "µs", "(×1.00)"],
    ]
    assert len({line.index("µs") for line in lines}) == 1
    assert len({line.rindex(".") for line in lines}) == 1
    assert len({len(line) for line in [heading, *lines]}) == 1  # (the heading right-aligned over the cells)


def test_each_mode_gets_its_own_block():
    blocks = table([result("a", 1, 1e-3, mode="forward"), result("a", 1, 2e-3, mode="backward")]).split("\n\n")
    assert [block.split(",")[0] for block in blocks] == ["forward", "backward"]


@pytest.mark.parametrize(
    "seconds, text", [(2.5, "2.5 s"), (0.0123, "12.3 ms"), (4.56e-6, "4.56 µs"), (3e-10, "0.3 ns")]
)
def test_seconds_are_written_in_a_readable_unit(seconds, text):
    assert format_seconds(seconds) == text


def test_json_holds_machine_settings_and_every_result_with_throughput():
    data = json.loads(to_json(RESULTS, {"cpu_model": "x"}, {"threads": 1}))
    assert data["machine"] == {"cpu_model": "x"} and data["settings"] == {"threads": 1}
    assert len(data["results"]) == len(RESULTS)
    assert data["results"][2]["images_per_s"] == pytest.approx(64 / 2e-2)
    assert data["results"][2]["timing"]["median_s"] == 2e-2
    assert data["results"][4]["timing"] is None and data["results"][4]["skipped"] == "needs a GPU"


def test_the_plot_is_a_png(tmp_path):
    path = tmp_path / "throughput.png"
    plot(RESULTS + [result("fast", 8, 2e-3, mode="forward")], str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_speedup_is_the_slower_median_over_the_faster():
    by_name = {r.contender: r for r in RESULTS if r.n == 1}
    outcome = speedup(by_name, "slow", "fast", "fast over slow", 3)
    assert (outcome.measured, outcome.met) == (4.0, True)
    assert outcome.line() == "fast over slow: 4× (target ≥ 3×): met [fast 1 ms, slow 4 ms per step]"
    assert speedup(by_name, "slow", "fast", "fast over slow", 5).met is False


def test_a_target_that_could_not_be_measured_says_why():
    by_name = {r.contender: r for r in RESULTS if r.n == 1}
    outcome = speedup(by_name, "slow", "absent", "absent over slow", 2)
    assert outcome.met is None
    assert outcome.line() == "absent over slow: not measured (absent: needs a GPU); target ≥ 2×"


def test_an_upper_bound_target():
    assert Outcome("launches", 2, 2, at_most=True, unit="").met is True
    assert Outcome("launches", 3, 2, at_most=True, unit="").line() == "launches: 3 (target ≤ 2): NOT met"
