"""Numerics at the edges (issue 9): discounts near 1, tiny entropy weights, huge payoffs.

Tolerances are relative to the scale of the values, so a match at ``gamma = 0.999`` with
``tau`` down to ``1e-6`` runs to its end for every leader x follower pair, with no NaN in any
metric; payoffs too large to evaluate safely are refused when the model is built.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

from agents.registry import FOLLOWERS, LEADERS
from games import make_model
from stackelberg.coordinator import MatchConfig, run_match
from stackelberg.model import MAX_VALUE_SCALE, GameModel, ModelError
from stackelberg.problem import StackelbergProblem
from stackelberg.seeding import run_streams
from stackelberg.tabular import evaluate_policy, greedy_policy, policy_resolution, solve_mdp
from tests.test_determinism import FOLLOWER_PARAMS, LEADER_PARAMS

ITERATIONS = 8
EDGE_GAME = ("stackelberg/random-markov-v0",
             {"n_states": 3, "n_leader_actions": 2, "n_follower_actions": 2, "gamma": 0.999,
              "seed": 5})


#: At gamma = 0.999 an episode lasts about 1000 rounds: one per batch is plenty here.
SHORT_EPISODES = {"episodes": 1, "rollout_exponent": 1.0}


@pytest.mark.parametrize("tau", [1e-6, 1e-3])
@pytest.mark.parametrize(("leader", "follower"), list(itertools.product(
    [n for n, s in LEADERS.items() if "game" in s.kinds],
    [n for n, s in FOLLOWERS.items() if "game" in s.kinds])))
def test_gamma_near_one_and_tiny_tau_run_to_the_end(leader, follower, tau):
    problem = StackelbergProblem(make_model(EDGE_GAME[0], **EDGE_GAME[1]), tau)
    params = dict(LEADER_PARAMS.get(leader, {}))
    accepted = {f.name for f in dataclasses.fields(LEADERS[leader].config_class)}
    params.update({k: v for k, v in SHORT_EPISODES.items() if k in accepted})
    lead = LEADERS[leader].factory(LEADERS[leader].make_config(**params))
    follow = FOLLOWERS[follower].factory(
        FOLLOWERS[follower].make_config(**FOLLOWER_PARAMS.get(follower, {})))
    config = MatchConfig(iterations=ITERATIONS, metrics_every=1, progress=False)
    try:
        result = run_match(problem, lead, [follow], config, run_streams(2))
    except ValueError as err:  # a combination the leader refuses (rac on leader-moved P)
        if "rac needs" not in str(err):
            raise
        pytest.skip(str(err))
    assert result.summary["iterations"] == ITERATIONS
    assert np.isfinite(result.x).all()
    for policy in (result.leader_policy, *result.follower_policies):
        assert np.isfinite(policy).all()
        np.testing.assert_allclose(policy.sum(axis=1), 1.0, rtol=0, atol=1e-9)
    for row in result.metrics:
        for key, value in row.items():
            assert not (isinstance(value, float) and math.isnan(value)), (row["iteration"], key)


def near_tie_mdp(seed: int, tau: float, n_states: int = 20, n_actions: int = 2):
    """An MDP whose actions differ by about ``tau`` in reward and not at all in transitions:
    the soft-greedy policy is mixed everywhere, and sensitive to rounding of ``Q``."""
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(n_states), size=(n_states, 1)).repeat(n_actions, axis=1)
    r = rng.random((n_states, 1)) + tau * rng.standard_normal((n_states, n_actions))
    return P, r


@pytest.mark.parametrize("seed", range(3))
def test_policy_iteration_stops_at_the_rounding_floor(seed):
    """gamma = 0.999, tau = 1e-3, tolerance 1e-12: successive policies of near-tied actions
    differ by 1e-11 for ever (an absolute tolerance raised ConvergenceError on these seeds); the
    floor relative to max|Q| / tau stops at a policy that is its own soft-greedy policy to
    within that floor."""
    tau, gamma = 1e-3, 0.999
    P, r = near_tie_mdp(seed, tau)
    solution = solve_mdp(P, r, gamma, tau, tol=1e-12)
    Q = evaluate_policy(P, r, solution.pi, gamma, tau).Q
    floor = policy_resolution(Q, tau)
    assert 1e-12 < floor < 1e-8
    assert np.abs(greedy_policy(Q, tau) - solution.pi).max() <= floor
    assert solution.pi.min() > 0.01  # mixed: the case where rounding shows


def test_exact_metrics_on_near_tied_follower_actions():
    """A match whose exact metrics solve the near-tied MDP at gamma = 0.999, tau = 1e-3."""
    P, r = near_tie_mdp(0, 1e-3)
    S, A = r.shape
    rng = np.random.default_rng(7)
    model = GameModel(transitions=np.repeat(P[:, None], 2, axis=1),
                      leader_rewards=rng.random((S, 2, A)),
                      follower_rewards=(np.repeat(r[:, None], 2, axis=1)
                                        + 1e-4 * rng.random((S, 2, A))),
                      initial=np.full(S, 1.0 / S), gamma=0.999)
    problem = StackelbergProblem(model, 1e-3)
    leader = LEADERS["hypergradient"].factory(LEADERS["hypergradient"].make_config())
    follower = FOLLOWERS["best-response"].factory(FOLLOWERS["best-response"].make_config())
    result = run_match(problem, leader, [follower], MatchConfig(iterations=5, progress=False),
                       run_streams(0))
    assert result.summary["iterations"] == 5
    assert all(math.isfinite(row["lower_level_gap"]) for row in result.metrics)


@pytest.mark.parametrize("array", ["leader_rewards", "follower_rewards"])
@pytest.mark.parametrize(("value", "gamma"), [(1e308, 0.0), (1e99, 0.999), (-1e101, 0.0)])
def test_absurd_payoffs_are_refused_naming_the_array(array, value, gamma):
    rewards = {"leader_rewards": np.zeros((1, 2, 2)), "follower_rewards": np.zeros((1, 2, 2))}
    rewards[array][0, 1, 0] = value
    with pytest.raises(ModelError, match=rf"{array}\[0, 1, 0\] = .* too large"):
        GameModel(transitions=np.ones((1, 2, 2, 1)), initial=np.ones(1), gamma=gamma, **rewards)


def test_the_largest_safe_scale_is_accepted():
    rewards = np.full((1, 2, 2), MAX_VALUE_SCALE * (1 - 0.9))
    GameModel(transitions=np.ones((1, 2, 2, 1)), leader_rewards=rewards,
              follower_rewards=-rewards, initial=np.ones(1), gamma=0.9)


def test_cli_refuses_absurd_payoffs_with_exit_2(cli, tmp_path):
    (tmp_path / "huge.toml").write_text(
        '[game]\nid = "stackelberg/matrix-v0"\n'
        "leader_payoffs = [[1e308, 0.0], [0.0, 1.0]]\n"
        "follower_payoffs = [[1.0, 0.0], [0.0, 1.0]]\n"
        '[leader]\nalgorithm = "pbrl-value"\n[follower]\nlearner = "best-response"\n'
        "[run]\niterations = 3\n")
    done = cli("run", "huge.toml", cwd=tmp_path)
    assert done.returncode == 2
    assert "leader_rewards[0, 0, 0]" in done.stderr and "Traceback" not in done.stderr
