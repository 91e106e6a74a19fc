"""How close the penalty-based leaders get to exact answers (issue 2, done-criteria 5 and 6).

These tests print what they measure. Their thresholds are the levels the current defaults
reach, so that a regression fails; the issue's targets (90% of matrix games within 0.02 of the
strong Stackelberg value; a hyper-objective within 1e-3 of the hypergradient leader's) are
stated next to them and are not yet met (see the issue notes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import games
from agents.registry import FOLLOWERS, LEADERS
from stackelberg.app.config import load_config
from stackelberg.coordinator import MatchConfig, run_match
from stackelberg.problem import StackelbergProblem
from stackelberg.seeding import run_streams

REPO = Path(__file__).resolve().parents[1]
# Regression floors: what the shipped configs measured on 2026-11-21, with a small margin.
MATRIX_FLOOR = 0.74          # measured 78% (target 90%)
MARKOV_GAMES = 10
# config -> (median |Phi difference| bound, max lower-level gap bound); targets 1e-3 and 1e-4
MARKOV_BOUNDS = {
    "random_markov.toml": (0.08, 1e-2),          # measured 5.0e-2 and 6.0e-3
    "random_markov_bellman.toml": (0.3, 3e-3),   # measured 2.1e-1 and 1.1e-3
}


def play(problem, leader: str, leader_params: dict, iterations: int, seed: int = 0):
    spec = LEADERS[leader]
    follower = FOLLOWERS["best-response"]
    return run_match(
        problem,
        spec.factory(spec.make_config(**leader_params)),
        [follower.factory(follower.make_config())],
        MatchConfig(iterations=iterations, progress=False, metrics_every=iterations),
        run_streams(seed),
    )


def test_pbrl_value_approaches_the_strong_stackelberg_value_on_random_matrix_games():
    config = load_config(REPO / "configs" / "demo.toml")
    gaps = []
    for seed in range(50):
        rng = np.random.default_rng(2024 + seed)
        model = games.matrix_game(rng.uniform(size=(3, 3)).tolist(),
                                  rng.uniform(size=(3, 3)).tolist())
        result = play(StackelbergProblem(model, config.tau), "pbrl-value", config.leader_params,
                      config.run.iterations, seed)
        gaps.append(result.summary["sse_gap"])
    gaps = np.array(gaps)
    within = float(np.mean(gaps <= 0.02))
    print(f"\npbrl-value on 50 random 3x3 games: {within:.0%} within 0.02 of the SSE value, "
          f"median gap {np.median(gaps):.4f}, worst {gaps.max():.4f} (target: 90%)")
    # commitment is never worth more than the SSE: no run may beat the LP
    assert gaps.min() >= -1e-6
    assert within >= MATRIX_FLOOR


@pytest.mark.parametrize("config_file", ["random_markov.toml", "random_markov_bellman.toml"])
def test_pbrl_tracks_the_hypergradient_leader_on_random_markov_games(config_file):
    config = load_config(REPO / "configs" / config_file)
    penalty_leader = config.leader
    iterations = config.run.iterations
    differences, gaps, improvements = [], [], []
    for seed in range(MARKOV_GAMES):
        model = games.make_model(config.game_id, **{**config.game_params, "seed": 100 + seed})
        problem = StackelbergProblem(model, config.tau)
        start = problem.hyper_objective(problem.initial_x())
        reference = play(problem, "hypergradient", {"alpha": 3.0}, iterations).summary
        penalty = play(problem, penalty_leader, config.leader_params, iterations).summary
        differences.append(penalty["hyper_objective"] - reference["hyper_objective"])
        gaps.append(penalty["lower_level_gap"])
        improvements.append(start - penalty["hyper_objective"])
    differences, gaps = np.array(differences), np.array(gaps)
    print(f"\n{penalty_leader} vs hypergradient on {MARKOV_GAMES} random Markov games: "
          f"median Phi difference {np.median(differences):+.2e}, median |difference| "
          f"{np.median(np.abs(differences)):.2e} (target < 1e-3), "
          f"max lower-level gap {gaps.max():.1e} (target 1e-4)")
    assert min(improvements) > 0  # the leader always improves on its start
    phi_bound, gap_bound = MARKOV_BOUNDS[config_file]
    assert np.median(np.abs(differences)) < phi_bound
    assert gaps.max() < gap_bound
