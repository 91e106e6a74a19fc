"""Follower learners reach the best response; leaders and the coordinator behave as documented."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import games
from agents.registry import FOLLOWERS, LEADERS
from stackelberg.coordinator import MatchConfig, run_match
from stackelberg.problem import StackelbergProblem
from stackelberg.seeding import run_streams


@pytest.fixture
def problem():
    model = games.random_markov_game(n_states=5, n_leader_actions=2, n_follower_actions=3,
                                     gamma=0.8, seed=11)
    return StackelbergProblem(model, tau=0.2)


def learner(name: str, **params):
    spec = FOLLOWERS[name]
    return spec.factory(spec.make_config(**params))


def test_mirror_descent_converges_to_the_soft_best_response(problem):
    x = np.random.default_rng(0).normal(size=problem.x_shape)
    follower = learner("mirror-descent", eta=2.0)
    follower.reset(problem, np.random.default_rng(0))
    for _ in range(200):
        follower.step(x)
    np.testing.assert_allclose(follower.policy, problem.best_response(x).pi, atol=1e-8)


def test_soft_q_learns_the_soft_best_response_from_samples(problem):
    x = np.random.default_rng(1).normal(size=problem.x_shape)
    follower = learner("soft-q", batch_size=512, alpha=0.2)
    follower.reset(problem, np.random.default_rng(1))
    for _ in range(400):
        follower.step(x)
    star = problem.best_response(x)
    assert follower.samples == 400 * 512
    # sampled, so not exact: the learned policy's gap is small against the uniform policy's
    uniform = np.full(problem.policy_shape, 1 / problem.policy_shape[1])
    gap = problem.value_penalty(x, follower.policy)
    assert gap < 0.02 * problem.value_penalty(x, uniform)
    assert np.abs(follower.Q - star.Q).max() < 0.05 * np.abs(star.Q).max()


def test_best_response_follower_is_exact(problem):
    x = np.zeros(problem.x_shape)
    follower = learner("best-response")
    follower.reset(problem, np.random.default_rng(0))
    follower.step(x)
    assert problem.value_penalty(x, follower.policy) < 1e-12


@pytest.mark.parametrize("leader", sorted(LEADERS))
def test_every_leader_improves_on_its_start_and_is_deterministic(problem, leader):
    # transitions that do not depend on the leader's action, which every leader accepts (RAC)
    model = problem.model
    P = np.repeat(model.transitions[:, :1], model.n_leader_actions, axis=1)
    problem = StackelbergProblem(dataclasses.replace(model, transitions=P), problem.tau)

    def play(seed):
        spec = LEADERS[leader]
        return run_match(problem, spec.factory(spec.make_config()),
                         [learner("soft-q")], MatchConfig(iterations=60, progress=False),
                         run_streams(seed))

    first, again = play(5), play(5)
    start = problem.hyper_objective(problem.initial_x())
    assert first.summary["hyper_objective"] < start
    np.testing.assert_array_equal(first.x, again.x)
    assert [r["upper_objective"] for r in first.metrics] == \
        [r["upper_objective"] for r in again.metrics]


def test_tolerance_stops_a_match_early(problem):
    spec = LEADERS["hypergradient"]
    result = run_match(problem, spec.factory(spec.make_config(alpha=1.0)),
                       [learner("best-response")],
                       MatchConfig(iterations=100_000, tolerance=1e-3, patience=3,
                                   progress=False, metrics_every=50),
                       run_streams(0))
    assert result.summary["stopped_by"] == "tolerance"
    assert result.summary["iterations"] < 100_000
    assert result.metrics[-1]["grad_norm"] < 1e-3


def test_strategies_stay_on_the_simplex(problem):
    spec = LEADERS["pbrl-value"]
    result = run_match(problem, spec.factory(spec.make_config()), [learner("mirror-descent")],
                       MatchConfig(iterations=50, progress=False), run_streams(0))
    for policy in (result.leader_policy, *result.follower_policies):
        assert (policy >= 0).all()
        np.testing.assert_allclose(policy.sum(axis=1), 1.0, atol=1e-12)


def test_unknown_and_fixed_hyperparameters_are_rejected():
    with pytest.raises(ValueError, match="penalty"):
        LEADERS["pbrl-bellman"].make_config(penalty="value")
    with pytest.raises(ValueError, match="leader.lam"):
        LEADERS["pbrl-value"].make_config(lam=-1.0)
    with pytest.raises(ValueError, match="follower.eta"):
        FOLLOWERS["mirror-descent"].make_config(eta=0)
