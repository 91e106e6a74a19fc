"""The exact minimizer of the penalized objective F_lam(x, .) used by pi_update = "exact"."""

from __future__ import annotations

import numpy as np
import pytest

import games
from agents.leaders.pbrl import PBRLConfig, PBRLLeader
from stackelberg.problem import StackelbergProblem
from stackelberg.tabular import softmax


@pytest.fixture
def problem():
    model = games.random_markov_game(n_states=4, n_leader_actions=2, n_follower_actions=3,
                                     gamma=0.85, seed=5)
    return StackelbergProblem(model, tau=0.3)


def penalized_objective(problem, x, pi, lam):
    v_star = problem.model.initial @ problem.best_response(x).V
    ev = problem.evaluate(x, pi)
    return ev.upper_objective + lam * (v_star - ev.follower_value)


@pytest.mark.parametrize("lam", [0.5, 10.0, 300.0])
def test_value_penalty_minimizer_is_stationary_and_optimal(problem, lam):
    rng = np.random.default_rng(0)
    x = rng.normal(size=problem.x_shape)
    pi_lam = problem.penalized_response(x, lam).pi
    ev = problem.evaluate(x, pi_lam)
    grad = ev.grad_upper_objective().theta - lam * ev.grad_follower_value().theta
    assert np.abs(grad).max() < 1e-8 * max(1.0, lam)
    best = penalized_objective(problem, x, pi_lam, lam)
    for _ in range(50):
        other = softmax(np.log(pi_lam) + rng.normal(scale=0.3, size=pi_lam.shape), axis=1)
        assert penalized_objective(problem, x, other, lam) >= best - 1e-12


def test_large_penalty_recovers_the_best_response(problem):
    x = np.zeros(problem.x_shape)
    pi_lam = problem.penalized_response(x, 1e7).pi
    np.testing.assert_allclose(pi_lam, problem.best_response(x).pi, atol=1e-6)


@pytest.mark.parametrize("penalty", ["value", "bellman"])
def test_exact_inner_minimization_zeroes_the_policy_gradient(problem, penalty):
    leader = PBRLLeader(PBRLConfig(penalty=penalty, pi_update="exact", lam=50.0, lam_init=50.0))
    leader.reset(problem, np.random.default_rng(0))
    leader._x = np.random.default_rng(1).normal(size=problem.x_shape)
    pihat = problem.best_response(leader.x).pi
    start = leader.penalized_gradient(pihat, 50.0).gradient
    leader.theta = leader.minimize_over_pi(50.0)
    grad = leader.penalized_gradient(pihat, 50.0).gradient
    # L-BFGS stops on its own tolerances: the gradient shrinks by orders of magnitude
    assert np.abs(grad.theta).max() < 1e-4 * np.abs(start.theta).max()


@pytest.mark.parametrize("geometry", ["natural", "mirror"])
def test_reported_gradient_is_the_logit_gradient_in_every_geometry(problem, geometry):
    def gradient(geometry):
        leader = PBRLLeader(PBRLConfig(geometry=geometry))
        leader.reset(problem, np.random.default_rng(0))
        leader._x = np.random.default_rng(2).normal(size=problem.x_shape)
        leader.theta = np.random.default_rng(3).normal(size=problem.policy_shape)
        return leader.penalized_gradient(problem.best_response(leader.x).pi, 7.0).gradient

    reference, other = gradient("euclidean"), gradient(geometry)
    np.testing.assert_allclose(other.x, reference.x, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(other.theta, reference.theta, rtol=1e-10, atol=1e-14)
