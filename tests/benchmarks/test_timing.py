"""The timing helpers: statistics, round counts, setup outside the timed step, thread pinning."""

from __future__ import annotations

import pytest
import torch

from yolov1_loss.benchmarks.timing import MAX_ROUNDS, MIN_ROUNDS, measure, pinned_threads, rounds_for, summarize


def test_summary_is_the_median_and_quartiles():
    timing = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (timing.median_s, timing.q1_s, timing.q3_s, timing.rounds) == (3.0, 2.0, 4.0, 5)
    assert timing.spread == pytest.approx(2 / 3)


def test_one_round_has_no_spread():
    timing = summarize([0.5])
    assert (timing.median_s, timing.spread) == (0.5, 0.0)


@pytest.mark.parametrize("estimate, rounds", [(1.0, MIN_ROUNDS), (0.01, 30), (1e-9, MAX_ROUNDS), (0.0, MAX_ROUNDS)])
def test_rounds_fill_the_budget_within_bounds(estimate, rounds):
    assert rounds_for(estimate, budget_s=0.3) == rounds


def test_each_round_runs_setup_then_step_with_its_result():
    log = []
    counter = iter(range(100))

    def setup():
        value = next(counter)
        log.append(("setup", value))
        return (value,)

    timing = measure(lambda value: log.append(("step", value)), setup, warmup=2, budget_s=0)
    assert timing.rounds == MIN_ROUNDS
    assert log == [entry for value in range(2 + MIN_ROUNDS) for entry in (("setup", value), ("step", value))]


def test_pinned_threads_sets_and_restores():
    before = torch.get_num_threads()
    with pinned_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_a_paired_measure_alternates_its_turns_and_takes_the_ratio_turn_by_turn(monkeypatch):
    # A fake clock: A's step takes 1 ms and B's 2 ms, and 4 times as long in turns 2 and 3 (a
    # machine that slows down: the second pair); paired turn by turn the ratio stays exactly 0.5.
    from yolov1_loss.benchmarks import timing

    clock, log = [0.0], []
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    warmup = 2 * timing.WARMUP_ROUNDS
    per_turn = timing.rounds_for(2e-3, timing.PAIR_TURN_S)

    def step(name, seconds):
        def run():
            turn = (len(log) - warmup) // per_turn
            log.append(name)
            clock[0] += seconds * (4 if turn in (2, 3) else 1)

        return run

    first, second, ratio = timing.measure_pair((step("A", 1e-3), None), (step("B", 2e-3), None), budget_s=0)
    assert ratio == pytest.approx(0.5, rel=1e-9)  # (the fake clock's sums round)
    assert first.rounds == second.rounds == MIN_ROUNDS * per_turn
    assert (first.median_s, second.median_s) == pytest.approx((1e-3, 2e-3), rel=1e-9)  # 4 of 5 pairs ran at full speed
    turns = [log[start] for start in range(warmup, len(log), per_turn)]
    assert turns == ["A", "B", "B", "A", "A", "B", "B", "A", "A", "B"]
