"""How close the exact leaders get to exact answers with their defaults (issues 2 and 9).

The tests print what they measure and assert the issues' targets on small draws of games that
were not used to choose any default (the defaults were chosen on matrix-game seeds 5000-5019
and Markov-game seeds 7000-7019; ``benchmarks/bench_defaults.py`` measures 100 matrix games).
"""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import numpy as np
import pytest

import games
from agents.registry import FOLLOWERS, LEADERS
from stackelberg.app.config import DEFAULT_TAU, load_config
from stackelberg.coordinator import MatchConfig, run_match
from stackelberg.model import GameModel
from stackelberg.problem import StackelbergProblem
from stackelberg.seeding import run_streams

REPO = Path(__file__).resolve().parents[1]
# issue 9, done-means 1: share of random 2x2-6x6 games within 0.01 of the SSE value
MATRIX_TOLERANCE = 0.01
MATRIX_TARGETS = {"pbrl-value": (20, 0.95), "hypergradient": (20, 0.90),
                  "pbrl-bellman": (8, 0.95)}
# issue 9, done-means 2: within 0.02 x reward range / (1 - gamma) of the brute-force optimum
MARKOV_TOLERANCE = 0.02
# (the 20 games: pbrl-value and hypergradient 100% since the search screens vertices
# and judges its runs at the final tau, 90% before (both misses were pure per-state
# commitments in thin response regions); 100% on seeds 21000-21019 too; pbrl-bellman, whose
# inner L-BFGS makes it 3-4x slower, shares the search and is not run here)
MARKOV_TARGETS = {"pbrl-value": 20, "hypergradient": 20}
MARKOV_SHARE = 0.9
# games in the tracking tests: the value penalty's config as shipped on 10; the Bellman penalty
# on 3, from the uniform start (its exact inner minimization is an L-BFGS run per line-search
# trial, about ten times the cost of the value penalty's solve, and its multi-start search, the
# code the value penalty's test runs, took three quarters of the test's time)
MARKOV_GAMES = 10
BELLMAN_GAMES = 3
# the targets: median |Phi difference| below 1e-3, every lower-level gap below 1e-4
# (measured 7.5e-6 and 3.8e-5 with the value penalty on 10 games, 6.8e-6 and 3.0e-5 with the
# Bellman one on 10, 1.2e-5 on the test's 3; from the uniform start the Bellman penalty's
# |difference| was at most 4.2e-5 and its gap 1.2e-5 on the test's 3 games)
MARKOV_PHI_TOLERANCE = 1e-3
MARKOV_GAP_TOLERANCE = 1e-4


def play(problem, leader: str, leader_params: dict, iterations: int, seed: int = 0,
         metrics_every: int | None = None):
    spec = LEADERS[leader]
    follower = FOLLOWERS["best-response"]
    return run_match(
        problem,
        spec.factory(spec.make_config(**leader_params)),
        [follower.factory(follower.make_config())],
        MatchConfig(iterations=iterations, progress=False,
                    metrics_every=metrics_every or iterations),
        run_streams(seed),
    )


def random_matrix_game(seed: int):
    """Payoffs uniform in [0, 1], 2 to 6 actions per player (the benchmark's generator)."""
    rng = np.random.default_rng(seed)
    B, A = (int(n) for n in rng.integers(2, 7, size=2))
    return games.matrix_game(rng.uniform(size=(B, A)).tolist(),
                             rng.uniform(size=(B, A)).tolist())


@pytest.mark.slow
@pytest.mark.parametrize("leader", sorted(MATRIX_TARGETS))
def test_defaults_reach_the_strong_stackelberg_value_on_random_matrix_games(leader):
    n, target = MATRIX_TARGETS[leader]
    defaults = MatchConfig()
    gaps = np.array([
        play(StackelbergProblem(random_matrix_game(20_000 + seed), DEFAULT_TAU), leader, {},
             defaults.iterations, seed).summary["sse_gap"]
        for seed in range(n)
    ])
    within = float(np.mean(gaps <= MATRIX_TOLERANCE))
    print(f"\n{leader} with defaults on {n} random 2x2-6x6 games: {within:.0%} within 0.01 of "
          f"the SSE value (target {target:.0%}), median gap {np.median(gaps):.1e}, "
          f"worst {gaps.max():.4f}")
    # commitment is never worth more than the SSE: no run may beat the LP
    assert gaps.min() >= -1e-9
    assert within >= target


def best_commitment_by_grid(model, n: int = 201) -> float:
    """The leader's best value over an ``n x n`` grid of its two per-state mixing
    probabilities (a 2-state game with 2 actions each) against an exact unregularized best
    response, ties broken in the leader's favour.

    The follower's optimal policies are the deterministic ones whose values are maximal in
    every state (and their mixtures, which are no better for the leader than the best of
    them), so enumerating the four deterministic policies at every grid point is exact.
    """
    p = np.linspace(0.0, 1.0, n)
    first, second = np.meshgrid(p, p, indexing="ij")
    mu = np.stack([np.stack([first, 1 - first], -1), np.stack([second, 1 - second], -1)], -2)
    P = np.einsum("ijsb,sbat->ijsat", mu, model.transitions)
    r_F = np.einsum("ijsb,sba->ijsa", mu, model.follower_rewards)
    r_L = np.einsum("ijsb,sba->ijsa", mu, model.leader_rewards)
    states = np.arange(2)
    follower_values, leader_values = [], []
    for policy in itertools.product(range(2), repeat=2):
        actions = np.array(policy)
        M = np.eye(2) - model.gamma * P[:, :, states, actions, :]
        follower_values.append(np.linalg.solve(M, r_F[:, :, states, actions][..., None])[..., 0])
        leader_values.append(np.linalg.solve(M, r_L[:, :, states, actions][..., None])[..., 0])
    follower_values, leader_values = np.stack(follower_values), np.stack(leader_values)
    best = follower_values.max(axis=0)
    optimal = (follower_values >= best - 1e-9 * (1 + np.abs(best).max())).all(axis=-1)
    return float(np.where(optimal, leader_values @ model.initial, -np.inf).max())


def test_the_grid_reference_is_the_exact_evaluation_at_its_points():
    from stackelberg.equilibrium import leader_value_against_best_response

    for seed in range(3):
        model = games.make_model("stackelberg/random-markov-v0", n_states=2, seed=seed)
        exact = max(
            leader_value_against_best_response(model, np.array([[p, 1 - p], [q, 1 - q]]))
            .leader_value
            for p in (0.0, 0.5, 1.0) for q in (0.0, 0.5, 1.0)
        )
        assert abs(best_commitment_by_grid(model, n=3) - exact) < 1e-9


@functools.cache
def small_markov_game(seed: int) -> tuple[GameModel, float]:
    """Random 2-state game ``seed`` and its grid optimum, computed once for both leaders."""
    model = games.make_model("stackelberg/random-markov-v0", n_states=2, n_leader_actions=2,
                             n_follower_actions=2, gamma=0.9, seed=20_000 + seed)
    return model, best_commitment_by_grid(model)


@pytest.mark.xdist_group("small-markov-games")  # one worker computes the grid optima once
@pytest.mark.parametrize("leader", sorted(MARKOV_TARGETS))
def test_defaults_reach_the_best_commitment_on_small_random_markov_games(leader):
    gaps = []
    for seed in range(MARKOV_TARGETS[leader]):
        model, best = small_markov_game(seed)
        scale = np.ptp(model.leader_rewards) / (1 - model.gamma)
        value = play(StackelbergProblem(model, DEFAULT_TAU), leader, {},
                     MatchConfig().iterations, seed).summary["leader_value"]
        gaps.append((best - value) / scale)
    gaps = np.array(gaps)
    within = float(np.mean(gaps <= MARKOV_TOLERANCE))
    print(f"\n{leader} with defaults on {len(gaps)} random 2-state Markov games: {within:.0%} "
          f"within 0.02 x range/(1-gamma) of the grid optimum, worst {gaps.max():.3f}")
    assert within >= MARKOV_SHARE


def test_the_demo_converges_without_chatter():
    """issue 9, done-means 3: over the last 20% of the demo's iterations the change of f per
    iteration is below 1e-9, and the leader ends near the SSE."""
    config = load_config(REPO / "configs" / "demo.toml")
    result = play(StackelbergProblem(games.make_model(config.game_id, **config.game_params),
                                     config.tau),
                  config.leader, config.leader_params, config.run.iterations, config.seed,
                  metrics_every=1)
    f = np.array([row["upper_objective"] for row in result.metrics])
    tail = np.abs(np.diff(f[int(0.8 * len(f)):]))
    print(f"\ndemo: largest change of f per iteration over the last 20%: {tail.max():.1e}; "
          f"leader value {result.summary['leader_value']:.6f}")
    assert len(f) == config.run.iterations
    assert tail.max() < 1e-9
    assert 0 <= result.summary["sse_gap"] < 1e-3


def markov_problem(game_id: str, game_params: dict, seed: int, tau: float) -> StackelbergProblem:
    model = games.make_model(game_id, **{**game_params, "seed": 100 + seed})
    return StackelbergProblem(model, tau)


def hypergradient_reference(problem: StackelbergProblem, iterations: int, **search) -> dict:
    """The hypergradient leader's summary: the baseline at the penalty leaders' fixed tau, with
    the same budget (line search) and search settings."""
    params = {"alpha": 3.0, "tau_ratio": 1.0, **search}
    return dict(play(problem, "hypergradient", params, iterations).summary)


@pytest.mark.slow
def test_pbrl_tracks_the_hypergradient_leader_on_random_markov_games():
    config = load_config(REPO / "configs" / "random_markov.toml")
    penalty_leader = config.leader
    iterations = config.run.iterations
    differences, gaps, improvements = [], [], []
    for seed in range(MARKOV_GAMES):
        problem = markov_problem(config.game_id, config.game_params, seed, config.tau)
        start = problem.hyper_objective(problem.initial_x())
        reference = hypergradient_reference(problem, iterations)
        penalty = play(problem, penalty_leader, config.leader_params, iterations).summary
        differences.append(penalty["hyper_objective"] - reference["hyper_objective"])
        gaps.append(penalty["lower_level_gap"])
        improvements.append(start - penalty["hyper_objective"])
    differences, gaps = np.array(differences), np.array(gaps)
    print(f"\n{penalty_leader} vs hypergradient on {len(gaps)} random Markov games: "
          f"median Phi difference {np.median(differences):+.2e}, median |difference| "
          f"{np.median(np.abs(differences)):.2e} (target < 1e-3), "
          f"max lower-level gap {gaps.max():.1e} (target 1e-4)")
    assert min(improvements) > 0  # the leader always improves on its start
    assert np.median(np.abs(differences)) < MARKOV_PHI_TOLERANCE
    assert gaps.max() < MARKOV_GAP_TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(BELLMAN_GAMES))
def test_the_bellman_penalty_tracks_the_hypergradient_leader_from_the_same_start(seed):
    """The Bellman penalty's config (lam, its ramp, the step) with one start, the uniform
    commitment, against the hypergradient leader from the same start: on each game (not only
    in the median) Phi within the issue's 1e-3 and the lower-level gap below 1e-4. One game
    per test, so that the games run on both workers."""
    config = load_config(REPO / "configs" / "random_markov_bellman.toml")
    iterations = config.run.iterations
    problem = markov_problem(config.game_id, config.game_params, seed, config.tau)
    start = problem.hyper_objective(problem.initial_x())
    reference = hypergradient_reference(problem, iterations, starts=1)
    penalty = play(problem, config.leader, {**config.leader_params, "starts": 1},
                   iterations).summary
    difference = penalty["hyper_objective"] - reference["hyper_objective"]
    print(f"\n{config.leader} vs hypergradient from the uniform start on game {seed}: "
          f"Phi difference {difference:+.2e}, lower-level gap {penalty['lower_level_gap']:.1e}")
    assert start - penalty["hyper_objective"] > 0  # the leader improves on its start
    assert abs(difference) < MARKOV_PHI_TOLERANCE
    assert penalty["lower_level_gap"] < MARKOV_GAP_TOLERANCE
