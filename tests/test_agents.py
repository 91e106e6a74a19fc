"""Follower learners reach the best response; leaders and the coordinator behave as documented."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import games
from agents.registry import FOLLOWERS, LEADERS, on_exact_models
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


def test_model_based_converges_to_the_soft_best_response_as_samples_grow(problem):
    """The plug-in policy's gap shrinks as counts grow (could fail: a biased model estimate,
    e.g. rewards or transitions attributed to the wrong pair, would leave the gap flat)."""
    x = np.random.default_rng(2).normal(size=problem.x_shape)
    follower = learner("model-based", batch_size=64, reward_memory=1.0)
    follower.reset(problem, np.random.default_rng(2))
    uniform = np.full(problem.policy_shape, 1 / problem.policy_shape[1])
    gaps = {}
    for step in range(1, 401):
        follower.step(x)
        if step in (2, 400):
            gaps[step] = problem.value_penalty(x, follower.policy)
    assert follower.samples == 400 * 64
    P_hat, r_hat = follower.estimated_mdp()
    m = problem.follower_mdp(x)
    assert np.abs(P_hat - m.P).max() < 0.06 and np.abs(r_hat - m.r).max() < 0.03
    assert gaps[400] < 0.1 * gaps[2]
    assert gaps[400] < 2e-3 * problem.value_penalty(x, uniform)


def test_model_based_forgets_old_rewards(problem):
    """With ``reward_memory < 1`` the reward estimate follows a leader that moved."""
    rng = np.random.default_rng(3)
    old, new = rng.normal(size=problem.x_shape), rng.normal(size=problem.x_shape)
    follower = learner("model-based", batch_size=256, reward_memory=0.8)
    follower.reset(problem, np.random.default_rng(3))
    for x in [old] * 50 + [new] * 50:
        follower.step(x)
    _, r_hat = follower.estimated_mdp()
    r_new, r_old = problem.follower_mdp(new).r, problem.follower_mdp(old).r
    assert np.abs(r_hat - r_new).max() < 0.3 * np.abs(r_old - r_new).max()


def test_model_based_is_deterministic_and_counts_what_it_draws(problem, monkeypatch):
    import agents.followers.model_based as module

    drawn = []
    sample = module.sample_transitions

    def counting(*args, **kwargs):
        batch = sample(*args, **kwargs)
        drawn.append(len(batch))
        return batch

    monkeypatch.setattr(module, "sample_transitions", counting)
    x = np.random.default_rng(4).normal(size=problem.x_shape)

    def policy(seed):
        follower = learner("model-based", batch_size=32)
        follower.reset(problem, np.random.default_rng(seed))
        for _ in range(5):
            follower.step(x)
        return follower.policy, follower.samples

    (first, n_first), (again, _), (other, _) = policy(7), policy(7), policy(8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert n_first == 5 * 32 == sum(drawn[:5])


def test_best_response_follower_is_exact(problem):
    x = np.zeros(problem.x_shape)
    follower = learner("best-response")
    follower.reset(problem, np.random.default_rng(0))
    follower.step(x)
    assert problem.value_penalty(x, follower.policy) < 1e-12


@pytest.mark.parametrize("leader", sorted(on_exact_models(LEADERS)))
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
    # one start and no tau continuation: with them the rule waits 80% of the budget (80 000
    # iterations here, see test_multistart.py), without them it can stop at once
    result = run_match(problem, spec.factory(spec.make_config(alpha=1.0, starts=1,
                                                              tau_ratio=1.0)),
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


def test_model_based_observing_the_commitment_has_no_lag(problem):
    """With ``observes_commitment`` the reward estimate is for the current commitment at once
    after the leader moves (the moving-average estimate still remembers the old one)."""
    rng = np.random.default_rng(3)
    old, new = rng.normal(size=problem.x_shape), rng.normal(size=problem.x_shape)
    errors = {}
    for observes in (False, True):
        follower = learner("model-based", batch_size=256, reward_memory=0.99,
                           observes_commitment=observes)
        follower.reset(problem, np.random.default_rng(3))
        for x in [old] * 100 + [new]:
            follower.step(x)
        errors[observes] = np.abs(follower.estimated_mdp()[1] - problem.follower_mdp(new).r).max()
    r_old, r_new = problem.follower_mdp(old).r, problem.follower_mdp(new).r
    assert errors[True] < 0.1 * np.abs(r_old - r_new).max() < errors[False]
