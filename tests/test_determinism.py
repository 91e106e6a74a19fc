"""Observation never changes a result (issue 9): whatever the metrics and the progress bar do,
every leader and follower sees the numbers it would see alone.

For every registered leader x follower on three games (a bimatrix game, a random Markov game,
a small GridWorld), a match is played with the exact metrics recorded at every iteration, every
7th (with the progress bar on) and every 50th (so only at the first and the last); the final
``x``, the followers' policies and the summary (wall clock excepted) must be the same bit for
bit. Budgets are tiny: the point is that the runs agree, not that they converge.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from agents.registry import FOLLOWERS, LEADERS
from games import make_model
from stackelberg.coordinator import MatchConfig, run_match
from stackelberg.problem import StackelbergProblem
from stackelberg.seeding import run_streams

ITERATIONS = 12

GAMES = {
    "matrix": ("stackelberg/matrix-v0", {
        "leader_payoffs": [[2.0, 4.0, 0.5], [1.0, 3.0, 2.0]],
        "follower_payoffs": [[1.0, 0.0, 0.2], [0.0, 1.0, 0.9]]}),
    "random-markov": ("stackelberg/random-markov-v0", {
        "n_states": 4, "n_leader_actions": 2, "n_follower_actions": 3, "seed": 3}),
    "gridworld": ("stackelberg/gridworld-goal-v0", {
        "size": 4, "walls": [[1, 1]], "candidates": [[0, 3], [3, 0], [3, 3]],
        "target": [[0, 3]], "start": [[0, 0]]}),
}

#: Small budgets for the sample-based learners (their defaults draw thousands per step).
LEADER_PARAMS: dict[str, dict] = {
    "pbrl-value": {"ramp_iterations": 10},
    "pbrl-bellman": {"ramp_iterations": 10},
    "rac": {"batch_size": 16, "critic_uniform_samples": 8},
    "rac-fixed-tau": {"batch_size": 16, "critic": "model"},
    "pbrl-value-sampled": {"episodes": 4, "oracle_steps": 1, "oracle_batch_size": 16,
                           "ramp_iterations": 10, "rollout_exponent": 1.0},
    "partial-gradient-sampled": {"episodes": 4, "rollout_exponent": 1.0},
    "zeroth-order": {"episodes": 4, "directions": 1, "response_steps": 1, "base_steps": 1,
                     "oracle_batch_size": 16},
}
FOLLOWER_PARAMS: dict[str, dict] = {
    "soft-q": {"batch_size": 16},
    "model-based": {"batch_size": 32},
}
TAU = 0.05


def play(game: str, leader: str, follower: str, metrics_every: int, progress: bool):
    game_id, params = GAMES[game]
    problem = StackelbergProblem(make_model(game_id, **params), TAU)
    lead = LEADERS[leader].factory(LEADERS[leader].make_config(**LEADER_PARAMS.get(leader, {})))
    follow = FOLLOWERS[follower].factory(
        FOLLOWERS[follower].make_config(**FOLLOWER_PARAMS.get(follower, {})))
    config = MatchConfig(iterations=ITERATIONS, metrics_every=metrics_every, progress=progress)
    return run_match(problem, lead, [follow], config, run_streams(11))


def fingerprint(result) -> tuple:
    summary = {k: v for k, v in result.summary.items() if k != "wall_seconds"}
    return (summary, result.x.tobytes(), tuple(p.tobytes() for p in result.follower_policies))


@pytest.mark.parametrize(
    ("game", "leader", "follower"),
    list(itertools.product(GAMES, [n for n, s in LEADERS.items() if "game" in s.kinds],
                           [n for n, s in FOLLOWERS.items() if "game" in s.kinds])))
def test_metrics_and_progress_do_not_change_the_match(game, leader, follower):
    try:
        reference = play(game, leader, follower, metrics_every=1, progress=False)
    except ValueError as err:  # a combination the leader refuses (rac on leader-moved P)
        if "rac needs" not in str(err):
            raise
        pytest.skip(str(err))
    expected = fingerprint(reference)
    assert np.isfinite(reference.x).all()
    for metrics_every, progress in ((7, True), (50, False)):
        observed = fingerprint(play(game, leader, follower, metrics_every, progress))
        assert observed[0] == expected[0], (metrics_every, progress)
        assert observed[1:] == expected[1:], (metrics_every, progress)


def test_metrics_rows_agree_where_recorded():
    """A row recorded every 7th iteration equals the row of the same iteration recorded every
    iteration (the metrics are a function of the state they observe, not of their history)."""
    every = play("random-markov", "hypergradient", "best-response", 1, False).metrics
    sparse = play("random-markov", "hypergradient", "best-response", 7, False).metrics
    by_iteration = {row["iteration"]: row for row in every}
    for row in sparse:
        full = by_iteration[row["iteration"]]
        assert {k: v for k, v in row.items() if k != "wall_seconds"} == {
            k: v for k, v in full.items() if k != "wall_seconds"}
