"""The data side of the convergence figure, tested apart from the drawing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analysis.convergence import (
    LOG_FLOOR,
    MAX_CURVES,
    convergence_panels,
    figure_title,
    plot_convergence,
    restart_iterations,
    tail_limits,
)
from analysis.runs import RunRecord, load_run


def record(iterations: int = 100, matrix: bool = True, leader: str = "pbrl-value") -> RunRecord:
    it = np.arange(1, iterations + 1, dtype=float)
    metrics = {
        "iteration": it,
        "upper_objective": -3.5 + 1.0 / it,
        "hyper_objective": -3.5 + 2.0 / it,
        "lower_level_gap": np.where(it > 50, 0.0, 1.0 / it),
        "grad_norm": 1.0 / it**2,
    }
    if matrix:
        metrics["sse_gap"] = -0.5 / it  # a run may not beat the LP, but rounding can
    config = {"game": {"id": "stackelberg/matrix-v0"}, "leader": {"algorithm": leader},
              "follower": {"learner": "best-response"}}
    return RunRecord(path=None, config=config, metrics=metrics, summary={})


def test_restarts_of_a_multistart_leader_are_marked_on_every_panel():
    plain, multi = record(), record()
    multi.metrics["start_score"] = np.full(100, np.nan)
    multi.metrics["start_score"][[29, 59]] = [-1.0, -2.0]  # rows of iterations 30 and 60
    assert restart_iterations([plain]) == ()
    assert restart_iterations([plain, multi]) == (30.0, 60.0)
    assert all(panel.restarts == (30.0, 60.0) for panel in convergence_panels([plain, multi]))


def test_panels_show_what_the_leader_optimized_and_the_gap_to_the_truth():
    run = record()
    run.metrics["tau"] = 0.02 * np.arange(1, 101) ** -0.15  # a leader's own decaying tau_k
    panels = convergence_panels([run])
    assert [p.title.split(":")[0].split(" at ")[0] for p in panels] == [
        "What the leader optimized", "Gap to the truth", "Lower-level gap"]
    objective, truth, gap = panels
    assert "own tau_k (0.02 -> " in objective.title
    assert len(objective.series) == 2 and not objective.log  # f and Phi of the one run
    assert truth.log and gap.log
    # exact zeros are floored so they stay on a log axis; signs are dropped
    assert gap.series[0].y.min() == LOG_FLOOR
    np.testing.assert_allclose(truth.series[0].y, 0.5 / np.arange(1, 101))


def test_markov_runs_show_the_leader_value_as_the_truth():
    runs = [record(matrix=False), record(matrix=False, leader="hyper")]
    for run in runs:
        run.metrics["leader_value"] = 3.0 - 1.0 / run.metrics["iteration"]
    panels = convergence_panels(runs)
    assert panels[1].title.startswith("The truth: leader value") and not panels[1].log
    assert len(panels[0].series) == 2  # one f per run, no Phi with several runs
    assert panels[2].series[1].label == "hyper / best-response"


def test_no_panel_holds_more_than_eight_curves():
    panels = convergence_panels([record(leader=f"L{k}") for k in range(11)])
    assert all(len(p.series) <= MAX_CURVES == 8 for p in panels)
    assert panels[1].title.endswith("(first 8 of 11)")


def test_the_title_of_one_run_gives_its_final_numbers():
    run = record()
    run.summary.update(leader_value=3.4517, sse_gap=0.0483, sse_leader_value=3.5)
    title = figure_title([run])
    assert title.startswith("stackelberg/matrix-v0: pbrl-value / best-response")
    assert "final V_L 3.4517" in title and "distance to SSE value 0.0483" in title
    assert "= 3.5" in convergence_panels([run])[1].title


def test_objective_limits_ignore_the_early_transient():
    objective = convergence_panels([record()])[0]
    low, high = objective.ylim
    # the first 5 iterations (Phi up to -1.5) are left out; the tail spans -3.49 .. -3.17
    assert -3.17 < high < -3.1 and -3.6 < low < -3.49


def test_tail_limits_of_a_constant_series_are_not_empty():
    from analysis.convergence import Series

    low, high = tail_limits([Series("c", np.arange(10.0), np.full(10, 2.0))])
    assert low < 2.0 < high


def test_plot_draws_one_axis_per_panel():
    fig = plot_convergence([record()])
    assert len(fig.axes) == 3
    assert fig.axes[1].get_yscale() == "log"


def test_load_run_reads_a_run_directory(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(record().config))
    (tmp_path / "summary.json").write_text(json.dumps({"leader_value": 3.5}))
    (tmp_path / "metrics.csv").write_text("iteration,upper_objective\n1,-3\n2,\n")
    run = load_run(tmp_path)
    assert run.summary["leader_value"] == 3.5
    np.testing.assert_array_equal(run.metrics["iteration"], [1, 2])
    assert np.isnan(run.metrics["upper_objective"][1])
    (tmp_path / "summary.json").unlink()
    with pytest.raises(ValueError, match="summary.json"):
        load_run(tmp_path)
