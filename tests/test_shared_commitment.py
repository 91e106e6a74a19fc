"""A shared commitment: one leader distribution used in every state (x has one row)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import games
from stackelberg.problem import StackelbergProblem
from stackelberg.tabular import softmax


@pytest.fixture
def problem():
    model = games.random_markov_game(n_states=4, n_leader_actions=3, n_follower_actions=2,
                                     gamma=0.9, seed=21)
    return StackelbergProblem(dataclasses.replace(model, shared_commitment=True), tau=0.2)


def central_difference(fun, x, h=1e-5):
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = h
        grad[index] = (fun(x + step) - fun(x - step)) / (2 * h)
    return grad


def relative_error(closed, numeric):
    return np.abs(closed - numeric).max() / np.abs(numeric).max()


def test_shape_and_policy(problem):
    assert problem.x_shape == (1, 3)
    x = np.array([[0.3, -1.0, 2.0]])
    mu = problem.leader_policy(x)
    assert mu.shape == (4, 3)
    np.testing.assert_allclose(mu, np.repeat(softmax(x, axis=1), 4, axis=0))
    with pytest.raises(ValueError, match="shape"):
        problem.leader_policy(np.zeros((4, 3)))


@pytest.mark.parametrize("quantity", ["follower_value", "upper_objective", "bellman_penalty"])
def test_x_gradients_match_finite_differences(problem, quantity):
    rng = np.random.default_rng(0)
    x, pi = rng.normal(size=(1, 3)), softmax(rng.normal(size=(4, 2)), axis=1)

    def value(ev):
        attr = getattr(ev, quantity)
        return attr() if callable(attr) else attr

    grad = {
        "follower_value": lambda ev: ev.grad_follower_value(),
        "upper_objective": lambda ev: ev.grad_upper_objective(),
        "bellman_penalty": lambda ev: ev.grad_bellman_penalty(),
    }[quantity](problem.evaluate(x, pi))
    numeric = central_difference(lambda z: value(problem.evaluate(z, pi)), x)
    assert grad.x.shape == (1, 3)
    assert relative_error(grad.x, numeric) < 1e-6


def test_hypergradient_matches_finite_differences(problem):
    x = np.random.default_rng(1).normal(size=(1, 3))
    numeric = central_difference(problem.hyper_objective, x)
    assert relative_error(problem.hypergradient(x).grad, numeric) < 1e-6
