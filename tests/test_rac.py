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


def test_xi_per_penalty_divides_the_leader_step_by_the_penalty_weight(problem):
    """``x -= (xi_k / w_k) g_x`` is the unscaled step with ``xi0 / w0`` and
    ``xi_decay + w_growth`` (RACConfig.xi_per_penalty); both runs draw the same samples."""
    def play(**params):
        leader = LEADERS["rac"].factory(RACConfig(batch_size=32, w0=4.0, w_growth=0.3, **params))
        result = run_match(problem, leader,
                           [FOLLOWERS["best-response"].factory(FOLLOWERS["best-response"]
                                                               .make_config())],
                           MatchConfig(iterations=15, progress=False), run_streams(2))
        return result.x, [row["xi"] for row in result.metrics]

    x_scaled, xi_scaled = play(xi0=2.0, xi_decay=0.5, xi_per_penalty=True)
    x_plain, xi_plain = play(xi0=0.5, xi_decay=0.8)
    x_unscaled, _ = play(xi0=2.0, xi_decay=0.5)
    np.testing.assert_allclose(xi_scaled, xi_plain, rtol=1e-12)
    np.testing.assert_allclose(x_scaled, x_plain, rtol=1e-8, atol=1e-10)
    assert np.abs(x_scaled - x_unscaled).max() > 1e-3


def test_x_warmup_holds_x_then_starts_the_step_schedule(problem):
    """``x`` stays at its start for ``x_warmup`` iterations (the actor still learns), then
    moves with ``xi_k = xi0 (k - x_warmup + 1)^-xi_decay``."""
    leader = LEADERS["rac"].factory(RACConfig(batch_size=32, x_warmup=5, xi0=0.7, xi_decay=0.5))
    leader.reset(problem, np.random.default_rng(0))
    start, pi0 = leader.x.copy(), leader.penalized_policy
    pihat = problem.best_response(start).pi
    steps = [leader.step([pihat]) for _ in range(5)]
    np.testing.assert_array_equal(leader.x, start)
    assert [row["xi"] for row in steps] == [0.0] * 5
    assert not np.allclose(leader.penalized_policy, pi0)
    moved = [leader.step([pihat]) for _ in range(2)]
    assert [row["xi"] for row in moved] == pytest.approx([0.7, 0.7 * 2 ** -0.5])
    assert not np.array_equal(leader.x, start)


@pytest.mark.parametrize("common", [True, False])
def test_common_random_numbers_couple_the_two_sets_of_chains(problem, common):
    """With common random numbers, chains of the same policy move identically (so the two
    sample means in ``g_x`` share their noise); without, they are independent."""
    leader = LEADERS["rac"].factory(RACConfig(batch_size=200, common_random_numbers=common))
    leader.reset(problem, np.random.default_rng(4))
    x = leader.x
    pi = softmax(np.random.default_rng(5).normal(size=problem.policy_shape), axis=1)
    for _ in range(3):
        a, b = leader.penalized_chains.step(x, pi), leader.auxiliary_chains.step(x, pi)
        assert np.array_equal(a.next_states, b.next_states) == common
        assert np.array_equal(a.follower_actions, b.follower_actions) == common


def test_critic_uniform_samples_are_drawn_and_counted(problem):
    """The extra critic transitions are counted, and they reach pairs the policy's chains
    never play: their critic entries move off zero."""
    S, A = problem.policy_shape

    def run(extra):
        leader = LEADERS["rac"].factory(RACConfig(batch_size=2, critic_uniform_samples=extra))
        leader.reset(problem, np.random.default_rng(6))
        pihat = problem.best_response(leader.x).pi
        for _ in range(2):
            leader.step([pihat])
        return leader

    plain, extra = run(0), run(300)  # plain: 2 chains x 2 steps reach at most 4 of 10 pairs
    assert plain.samples == 2 * 2 * 2 and extra.samples == 2 * (2 * 2 + 300)
    assert (extra.actor.Q != 0).sum() == S * A > (plain.actor.Q != 0).sum()


def test_model_critic_actor_reaches_the_penalized_response(problem):
    """With ``critic = "model"`` and a large actor step, the penalized actor converges to
    ``argmin_pi f + w p`` (``StackelbergProblem.penalized_response``) as samples accumulate
    (could fail: a wrong reward for ``b``, a wrong ``1 / w``, transitions to the wrong pair)."""
    w = 3.0
    leader = LEADERS["rac"].factory(RACConfig(batch_size=64, critic="model", alpha0=1e4,
                                              alpha_decay=0.0, w0=w, w_growth=0.0,
                                              critic_uniform_samples=200, x_warmup=10**6))
    leader.reset(problem, np.random.default_rng(8))
    x = leader.x
    target = problem.penalized_response(x, w).pi
    pihat = problem.best_response(x).pi
    errors = []
    for _ in range(150):
        leader.step([pihat])
        errors.append(np.abs(leader.penalized_policy - target).max())
    uniform_error = np.abs(1 / problem.policy_shape[1] - target).max()
    assert errors[-1] < 0.02 < 0.1 * uniform_error
    with pytest.raises(ValueError, match="critic"):
        RACConfig(critic="exact")
