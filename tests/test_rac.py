"""RAC's sample-based pieces: the visitation chains and the Hessian-free x-gradient estimate."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import games
from agents.leaders.rac import RACConfig, RACLeader, VisitationChains, hessian_free_x_gradient
from agents.registry import FOLLOWERS, LEADERS
from stackelberg.coordinator import MatchConfig, run_match
from stackelberg.problem import StackelbergProblem
from stackelberg.sampling import sample_categorical, sample_transitions
from stackelberg.seeding import run_streams
from stackelberg.tabular import softmax


def leader_independent_transitions(model, shared: bool):
    """The same game with P(s'|s, b, a) = P(s'|s, 0, a): RAC's estimate needs it."""
    P = np.repeat(model.transitions[:, :1], model.n_leader_actions, axis=1)
    return dataclasses.replace(model, transitions=P, shared_commitment=shared)


@pytest.fixture(params=[False, True], ids=["per-state", "shared"])
def problem(request):
    model = games.random_markov_game(n_states=5, n_leader_actions=3, n_follower_actions=2,
                                     gamma=0.8, seed=4)
    return StackelbergProblem(leader_independent_transitions(model, request.param), tau=0.1)


def test_hessian_free_estimate_is_unbiased(problem):
    rng = np.random.default_rng(0)
    x = rng.normal(size=problem.x_shape)
    pi = softmax(rng.normal(size=problem.policy_shape), axis=1)
    pihat = problem.best_response(x).pi
    w = 7.0
    ev, ev_hat = problem.evaluate(x, pi), problem.evaluate(x, pihat)
    exact = ev.grad_upper_objective().x + w * (ev_hat.grad_follower_value().x
                                              - ev.grad_follower_value().x)

    def draw(evaluation, policy, n=500):  # i.i.d. (s, a) from the exact visitation
        states = rng.choice(problem.model.n_states, size=n, p=evaluation.visitation)
        actions = sample_categorical(policy[states], rng)
        return sample_transitions(problem.model, problem.leader_policy(x), states, actions, rng)

    estimates = np.array([
        hessian_free_x_gradient(problem, x, w, draw(ev, pi), draw(ev_hat, pihat))
        for _ in range(400)
    ])
    standard_error = estimates.std(axis=0, ddof=1) / np.sqrt(len(estimates))
    z = (estimates.mean(axis=0) - exact) / standard_error
    assert np.abs(z).max() < 4.5, z
    # and the test has power: a 5% error in w would be detected
    assert np.abs(exact).max() > 10 * standard_error.max()


def test_visitation_chains_sample_the_discounted_visitation(problem):
    rng = np.random.default_rng(1)
    x = rng.normal(size=problem.x_shape)
    pi = softmax(rng.normal(size=problem.policy_shape), axis=1)
    chains = VisitationChains(problem, 20_000, rng)
    for _ in range(60):  # mixing: restarts happen with probability 1 - gamma = 0.2
        chains.step(x, pi)
    counts = np.bincount(chains.states, minlength=problem.model.n_states)
    d = problem.evaluate(x, pi).visitation
    n = len(chains.states)
    z = (counts / n - d) / np.sqrt(d * (1 - d) / n)
    assert np.abs(z).max() < 5, z


def test_rac_refuses_games_whose_transitions_depend_on_the_leader():
    model = games.random_markov_game(n_states=3, seed=0)
    with pytest.raises(ValueError, match="do not depend on the leader"):
        RACLeader().reset(StackelbergProblem(model, 0.1), np.random.default_rng(0))


def test_rac_decays_tau_and_is_deterministic(problem):
    def play():
        return run_match(problem, LEADERS["rac"].factory(RACConfig(batch_size=64)),
                         [FOLLOWERS["soft-q"].factory(FOLLOWERS["soft-q"].make_config())],
                         MatchConfig(iterations=40, progress=False), run_streams(3))

    first = play()
    taus = [row["tau"] for row in first.metrics]
    assert taus[0] == pytest.approx(0.1) and taus[-1] == pytest.approx(0.1 * 40 ** -0.15)
    assert first.summary["samples"] == 40 * (2 * 64 + 256)  # leader chains + soft-q batches
    second = play()
    np.testing.assert_array_equal(first.x, second.x)


def test_rac_fixed_tau_keeps_tau(problem):
    spec = LEADERS["rac-fixed-tau"]
    result = run_match(problem, spec.factory(spec.make_config(batch_size=32)),
                       [FOLLOWERS["best-response"].factory(FOLLOWERS["best-response"]
                                                           .make_config())],
                       MatchConfig(iterations=10, progress=False), run_streams(0))
    assert {row["tau"] for row in result.metrics} == {0.1}
