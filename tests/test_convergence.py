"""How close the penalty-based leaders get to exact answers (issue 2, done-criteria 5 and 6).

The tests print what they measure and assert the issue's targets. The matrix-game test uses the
demo config, a 4-start PBRL run (``PBRLConfig.starts``); with one start the same games reach 82%.
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
from stackelberg.results import canonical_json
from stackelberg.seeding import run_streams

REPO = Path(__file__).resolve().parents[1]
# the target: 90% of 50 random 3x3 games within 0.02 of the SSE value (measured 98%,
# worst gap 0.027, on 2026-11-21; the number of starts was chosen on other games, seeds
# 1000-1049: 98%, and checked on seeds 3000-3049: 98%)
MATRIX_TARGET = 0.9
MATRIX_TOLERANCE = 0.02
MARKOV_GAMES = 10
# the targets: median |Phi difference| below 1e-3, every lower-level gap below 1e-4
# (measured 3.7e-4 and 4.2e-5 with the value penalty, 3.7e-4 and 2.6e-5 with the Bellman one)
MARKOV_PHI_TOLERANCE = 1e-3
MARKOV_GAP_TOLERANCE = 1e-4


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


@pytest.mark.slow
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
    within = float(np.mean(gaps <= MATRIX_TOLERANCE))
    print(f"\npbrl-value on 50 random 3x3 games: {within:.0%} within 0.02 of the SSE value, "
          f"median gap {np.median(gaps):.4f}, worst {gaps.max():.4f} (target: 90%)")
    # commitment is never worth more than the SSE: no run may beat the LP
    assert gaps.min() >= -1e-6
    assert within >= MATRIX_TARGET


def markov_problem(game_id: str, game_params: dict, seed: int, tau: float) -> StackelbergProblem:
    model = games.make_model(game_id, **{**game_params, "seed": 100 + seed})
    return StackelbergProblem(model, tau)


def hypergradient_reference(game_id: str, game_params: dict, seed: int, tau: float,
                            iterations: int) -> dict:
    """The hypergradient leader's summary on game ``seed``, computed once per game for both
    penalties (their configs share game and tau: a third of the test's time otherwise)."""
    key = (game_id, canonical_json(game_params), seed, tau, iterations)
    if key not in _REFERENCES:
        problem = markov_problem(game_id, game_params, seed, tau)
        # the baseline gets four times the iterations: its logit steps converge slowly
        _REFERENCES[key] = dict(
            play(problem, "hypergradient", {"alpha": 3.0}, 4 * iterations).summary)
    return _REFERENCES[key]


_REFERENCES: dict[tuple, dict] = {}


@pytest.mark.slow
@pytest.mark.xdist_group("markov-references")  # one worker computes the references once
@pytest.mark.parametrize("config_file", ["random_markov.toml", "random_markov_bellman.toml"])
def test_pbrl_tracks_the_hypergradient_leader_on_random_markov_games(config_file):
    config = load_config(REPO / "configs" / config_file)
    penalty_leader = config.leader
    iterations = config.run.iterations
    differences, gaps, improvements = [], [], []
    for seed in range(MARKOV_GAMES):
        problem = markov_problem(config.game_id, config.game_params, seed, config.tau)
        start = problem.hyper_objective(problem.initial_x())
        reference = hypergradient_reference(config.game_id, config.game_params, seed,
                                            config.tau, iterations)
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
    assert np.median(np.abs(differences)) < MARKOV_PHI_TOLERANCE
    assert gaps.max() < MARKOV_GAP_TOLERANCE
