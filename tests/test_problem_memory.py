"""What ``StackelbergProblem`` remembers between calls (follower MDPs, best responses,
evaluations) must never change an answer: a changed ``x`` or ``tau`` gives a fresh one."""

from __future__ import annotations

import numpy as np
import pytest

from games import random_markov_game
from stackelberg.problem import StackelbergProblem


def problem_and_x(seed: int = 0) -> tuple[StackelbergProblem, np.ndarray]:
    model = random_markov_game(6, 3, 2, 0.9, seed=seed)
    problem = StackelbergProblem(model, tau=0.1)
    x = np.random.default_rng(seed).normal(size=problem.x_shape)
    return problem, x


def fresh_mdp(problem: StackelbergProblem, x: np.ndarray):
    return StackelbergProblem(problem.model, problem.tau).follower_mdp(x)


def test_follower_mdp_is_shared_for_the_same_x():
    problem, x = problem_and_x()
    assert problem.follower_mdp(x) is problem.follower_mdp(x.copy())


def test_follower_mdp_follows_an_x_changed_in_place():
    problem, x = problem_and_x()
    before = problem.follower_mdp(x)
    x[0, 0] += 1.0  # same array object, new values
    after = problem.follower_mdp(x)
    assert after is not before
    expected = fresh_mdp(problem, x)
    np.testing.assert_array_equal(after.P, expected.P)
    np.testing.assert_array_equal(after.r, expected.r)
    assert not np.allclose(after.r, before.r)


def test_follower_mdp_memory_is_bounded_and_forgets_the_oldest():
    problem, x = problem_and_x()
    first = problem.follower_mdp(x)
    for k in range(1, problem.MEMORY + 1):
        problem.follower_mdp(x + k)
    assert len(problem._mdps) == problem.MEMORY
    again = problem.follower_mdp(x)
    assert again is not first
    np.testing.assert_array_equal(again.P, first.P)


def test_set_tau_forgets_the_follower_mdp():
    problem, x = problem_and_x()
    assert problem.follower_mdp(x).tau == 0.1
    problem.set_tau(0.05)
    assert problem.follower_mdp(x).tau == 0.05


def test_shared_follower_mdp_arrays_are_read_only():
    problem, x = problem_and_x()
    mdp = problem.follower_mdp(x)
    for array in (mdp.P, mdp.r, mdp.mu):
        with pytest.raises(ValueError):
            array[0] = 0.0


def test_value_penalty_gradient_is_unchanged_by_the_memory():
    problem, x = problem_and_x(1)
    pi = problem.best_response(x + 0.3).pi  # some other policy
    cold = StackelbergProblem(problem.model, problem.tau)
    for _ in range(2):  # the second round is served from memory
        ev = problem.evaluate(x, pi)
        expected = cold.evaluate(x, pi)
        np.testing.assert_array_equal(ev.grad_follower_value().x, expected.grad_follower_value().x)
        np.testing.assert_array_equal(ev.grad_upper_objective().x,
                                      expected.grad_upper_objective().x)


def test_best_response_warm_starts_from_the_values_of_a_remembered_answer():
    from stackelberg.tabular import solve_mdp

    saved = 0
    for seed in range(4):
        model = random_markov_game(30, 3, 3, 0.9, seed=seed)
        problem = StackelbergProblem(model, tau=0.02)
        x = np.random.default_rng(seed).normal(size=problem.x_shape)
        x_near = x + 0.1 * np.random.default_rng(seed + 1).normal(size=x.shape)
        first = problem.best_response(x, tol=1e-10)
        # the very array it returned: policy iteration starts from that answer's values
        warm = problem.best_response(x_near, pi0=first.pi, tol=1e-10)
        m = problem.follower_mdp(x_near)
        expected = solve_mdp(m.P, m.r, m.gamma, m.tau, V0=first.last.V, tol=1e-10, predict=True)
        np.testing.assert_array_equal(warm.pi, expected.pi)
        # an equal copy is an ordinary warm start (evaluated first)
        other = StackelbergProblem(model, problem.tau)
        other.best_response(x, tol=1e-10)
        by_policy = other.best_response(x_near, pi0=first.pi.copy(), tol=1e-10)
        saved += by_policy.factorizations - warm.factorizations
        exact = StackelbergProblem(model, problem.tau).best_response(x_near, tol=1e-13)
        for solution in (warm, by_policy):
            assert np.abs(solution.pi - exact.pi).max() <= 1e-10
            np.testing.assert_allclose(solution.V, exact.V, rtol=0, atol=1e-10)
    assert saved > 0


def test_an_unevaluated_best_response_is_evaluated_once_and_shared():
    model = random_markov_game(30, 3, 3, 0.9, seed=0)
    problem = StackelbergProblem(model, tau=0.02)
    x = np.random.default_rng(0).normal(size=problem.x_shape)
    solution = problem.best_response(x, tol=1e-10)
    assert solution.mdp is not None  # stopped on the predicted change: not evaluated yet
    ev = problem.evaluate(x, solution.pi)
    assert ev.follower is solution.evaluation
    fresh = StackelbergProblem(model, problem.tau).evaluate(x, solution.pi)
    np.testing.assert_array_equal(ev.follower.V, fresh.follower.V)
    np.testing.assert_array_equal(ev.visitation, fresh.visitation)
