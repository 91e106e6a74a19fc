"""The neural leaders' segments (agents/neural/starts.py, docs/theory.md §14): the split of a
budget, the tail average of the parameters and the choice of the segment with the best
estimate."""

from __future__ import annotations

import numpy as np
import pytest

from agents.neural.starts import StartPlan


def test_the_budget_splits_into_equal_segments_the_last_taking_the_remainder():
    plan = StartPlan(10, 3, 0.5)
    assert plan.bounds == [0, 3, 6, 10]
    assert [plan.segment(t) for t in range(10)] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
    assert [t for t in range(12) if plan.begins(t)] == [3, 6]
    assert StartPlan(2, 5, 0.0).starts == 2  # never more segments than iterations


def test_a_segment_reports_the_mean_of_its_tail_iterates_and_of_their_estimates():
    rng = np.random.default_rng(0)
    plan = StartPlan(8, 2, 0.5)
    params = rng.normal(size=(8, 3))
    estimates = rng.normal(size=8)
    for t in range(8):
        assert not plan.done()
        plan.record(t, params[t], estimates[t])
    assert plan.done()
    first, second = plan.results
    # tails: iterations 2-3 and 6-7
    np.testing.assert_allclose(first.params, params[2:4].mean(0), rtol=0, atol=1e-15)
    np.testing.assert_allclose(second.params, params[6:8].mean(0), rtol=0, atol=1e-15)
    assert first.estimate == pytest.approx(estimates[2:4].mean(), abs=1e-15)
    assert (first.iterations, second.iterations) == (2, 2)


def test_the_best_segment_is_the_one_with_the_highest_estimate():
    plan = StartPlan(9, 3, 0.0)
    values = {2: -1.0, 5: 3.0, 8: 0.5}  # only the last iteration counts with tail 0
    for t in range(9):
        plan.record(t, np.full(2, float(t)), values.get(t, 100.0))
    assert [r.estimate for r in plan.results] == [-1.0, 3.0, 0.5]
    np.testing.assert_array_equal(plan.best().params, [5.0, 5.0])


def test_one_segment_without_a_tail_reports_the_last_iterate_bit_for_bit():
    plan = StartPlan(4, 1, 0.0)
    last = np.array([0.1, 1 / 3, -2.7])
    for t in range(4):
        plan.record(t, last if t == 3 else np.zeros(3), 0.0)
    assert plan.best().params.tobytes() == last.tobytes()


def test_nothing_to_choose_before_a_segment_ends_and_bad_plans_are_refused():
    with pytest.raises(ValueError, match="no segment"):
        StartPlan(4, 2, 0.5).best()
    for budget, starts, tail in ((0, 1, 0.0), (4, 0, 0.0), (4, 2, 1.5)):
        with pytest.raises(ValueError):
            StartPlan(budget, starts, tail)
