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
