"""The identities of docs/theory.md §2 on random games: penalties, KL, sandwich, visitation.

For a leader commitment ``x`` and a follower policy ``pi``:

- value penalty ``p(x, pi) = V*(x) - V(x, pi) >= 0`` and Bellman penalty ``g(x, pi) >= 0``, both
  zero at ``pi = pi*_x``;
- ``p = (tau / (1 - gamma)) sum_s d_pi(s) KL(pi(.|s) || pi*(.|s))``;
- ``g = tau E_rho KL(pi || softmax(Q_pi / tau))``, and ``E_rho[max_a Q_pi - <Q_pi, pi>]`` at
  tau = 0;
- ``g <= p <= (max_s d_{pi*}(s) / rho(s)) / (1 - gamma) * g``;
- ``d_pi`` is a probability distribution.

Every right-hand side is computed here from the policy evaluation's ``V``/``Q`` with scipy's
softmax and an explicit KL, not with the library's penalty code.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st

from games import random_markov_game
from stackelberg.problem import StackelbergProblem
from stackelberg.tabular import evaluate_policy

EXAMPLES = settings(max_examples=30, deadline=None)
#: Slack of the inequalities (values are O(1/(1-gamma)) = O(20); solves are exact to ~1e-14).
SLACK = 1e-10

seeds = st.integers(min_value=0, max_value=2**20)
sizes = st.integers(min_value=1, max_value=5)
actions = st.integers(min_value=1, max_value=4)
gammas = st.sampled_from([0.0, 0.3, 0.6, 0.9, 0.95])
#: tau >= 0.05 keeps softmax(Q*/tau) free of underflow (|Q| <= 20 at gamma = 0.95), so that
#: KL(pi || pi*) is finite and the KL identity is exact.
positive_taus = st.floats(min_value=0.05, max_value=2.0)
taus = st.one_of(st.just(0.0), positive_taus)


def instance(seed, S, B, A, gamma, tau, logit_scale=2.0):
    """A random game, a random leader commitment ``x`` and a random follower policy ``pi``."""
    model = random_markov_game(S, B, A, gamma=gamma, seed=seed)
    rng = np.random.default_rng(seed + 1)
    x = rng.normal(scale=logit_scale, size=(S, B))
    pi = scipy.special.softmax(rng.normal(scale=logit_scale, size=(S, A)), axis=1)
    return StackelbergProblem(model, tau), x, pi


def kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise KL(p || q) for strictly positive rows, written out independently."""
    return (p * (np.log(p) - np.log(q))).sum(axis=1)


def visitation_of(problem: StackelbergProblem, x: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """``d_pi = (1-gamma) rho^T (I - gamma P_pi)^{-1}`` by a dense solve, independent of the LU."""
    m = problem.follower_mdp(x)
    P_pi = np.einsum("sa,sat->st", pi, m.P)
    S = P_pi.shape[0]
    return (1 - m.gamma) * np.linalg.solve((np.eye(S) - m.gamma * P_pi).T, m.rho)


# -- non-negativity and zeros ---------------------------------------------------------------------


@EXAMPLES
@given(seed=seeds, S=sizes, B=actions, A=actions, gamma=gammas, tau=taus)
def test_penalties_are_nonnegative_and_vanish_at_the_best_response(seed, S, B, A, gamma, tau):
    problem, x, pi = instance(seed, S, B, A, gamma, tau)
    assert problem.value_penalty(x, pi) >= -SLACK
    assert problem.evaluate(x, pi).bellman_penalty() >= -SLACK
    pi_star = problem.best_response(x).pi
    assert problem.value_penalty(x, pi_star) == pytest.approx(0.0, abs=SLACK)
    assert problem.evaluate(x, pi_star).bellman_penalty() == pytest.approx(0.0, abs=SLACK)


@pytest.mark.parametrize("tau", [0.0, 0.1, 1.0])
def test_penalties_are_strictly_positive_away_from_the_best_response(tau):
    """Makes the zero checks above meaningful: a random policy is not optimal."""
    problem, x, pi = instance(7, 4, 3, 3, 0.9, tau)
    assert problem.value_penalty(x, pi) > 1e-3
    assert problem.evaluate(x, pi).bellman_penalty() > 1e-3


def test_best_response_maximizes_the_follower_value_among_random_policies():
    problem, x, _ = instance(11, 4, 2, 3, 0.9, 0.2)
    v_star = problem.evaluate(x, problem.best_response(x).pi).follower_value
    rng = np.random.default_rng(0)
    for _ in range(50):
        pi = scipy.special.softmax(rng.normal(scale=3.0, size=(4, 3)), axis=1)
        assert problem.evaluate(x, pi).follower_value <= v_star + SLACK


# -- KL identity for the value penalty ------------------------------------------------------------


@EXAMPLES
@given(seed=seeds, S=sizes, B=actions, A=actions, gamma=gammas, tau=positive_taus)
def test_value_penalty_kl_identity(seed, S, B, A, gamma, tau):
    problem, x, pi = instance(seed, S, B, A, gamma, tau)
    pi_star = problem.best_response(x).pi
    d_pi = problem.evaluate(x, pi).visitation
    expected = tau / (1 - gamma) * float(d_pi @ kl(pi, pi_star))
    assert problem.value_penalty(x, pi) == pytest.approx(expected, rel=1e-9, abs=1e-12)


# -- closed form of the Bellman penalty -----------------------------------------------------------


@EXAMPLES
@given(seed=seeds, S=sizes, B=actions, A=actions, gamma=gammas, tau=positive_taus)
def test_bellman_penalty_is_expected_kl_to_the_soft_greedy_policy(seed, S, B, A, gamma, tau):
    problem, x, pi = instance(seed, S, B, A, gamma, tau)
    ev = problem.evaluate(x, pi)
    sigma = scipy.special.softmax(ev.follower.Q / tau, axis=1)
    expected = tau * float(problem.model.initial @ kl(pi, sigma))
    assert ev.bellman_penalty() == pytest.approx(expected, rel=1e-9, abs=1e-12)


@EXAMPLES
@given(seed=seeds, S=sizes, B=actions, A=actions, gamma=gammas)
def test_bellman_penalty_at_tau_zero_is_the_greedy_gap(seed, S, B, A, gamma):
    problem, x, pi = instance(seed, S, B, A, gamma, 0.0)
    ev = problem.evaluate(x, pi)
    Q = ev.follower.Q
    expected = float(problem.model.initial @ (Q.max(axis=1) - (Q * pi).sum(axis=1)))
    assert ev.bellman_penalty() == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_bellman_penalty_matches_its_variational_definition():
    """``max_q <Q, q> - tau h(q)`` over the simplex, checked against many random ``q``."""
    tau = 0.3
    problem, x, pi = instance(5, 3, 2, 3, 0.8, tau)
    ev = problem.evaluate(x, pi)
    Q, rho = ev.follower.Q, problem.model.initial
    inner = lambda q: (Q * q).sum(axis=1) - tau * (q * np.log(q)).sum(axis=1)  # noqa: E731
    g = ev.bellman_penalty()
    rng = np.random.default_rng(1)
    for _ in range(200):
        q = rng.dirichlet(np.ones(3), size=3)
        assert float(rho @ (inner(q) - inner(pi))) <= g + SLACK
    sigma = scipy.special.softmax(Q / tau, axis=1)
    assert float(rho @ (inner(sigma) - inner(pi))) == pytest.approx(g, rel=1e-10)


# -- sandwich g <= p <= C g -----------------------------------------------------------------------


@EXAMPLES
@given(seed=seeds, S=sizes, B=actions, A=actions, gamma=gammas, tau=taus)
def test_penalty_sandwich(seed, S, B, A, gamma, tau):
    problem, x, pi = instance(seed, S, B, A, gamma, tau)
    g = problem.evaluate(x, pi).bellman_penalty()
    p = problem.value_penalty(x, pi)
    pi_star = problem.best_response(x).pi
    d_star = problem.evaluate(x, pi_star).visitation
    C = float((d_star / problem.model.initial).max()) / (1 - gamma)
    assert g <= p + SLACK
    assert p <= C * g + SLACK


# -- visitation -----------------------------------------------------------------------------------


@EXAMPLES
@given(seed=seeds, S=sizes, B=actions, A=actions, gamma=gammas, tau=taus)
def test_visitation_is_a_distribution(seed, S, B, A, gamma, tau):
    problem, x, pi = instance(seed, S, B, A, gamma, tau)
    d = problem.evaluate(x, pi).visitation
    assert d.shape == (S,)
    assert (d >= -1e-15).all()
    assert d.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(d, visitation_of(problem, x, pi), rtol=1e-10, atol=1e-14)
    # d_pi >= (1 - gamma) rho: the start distribution's own share of the discounted visits
    assert (d >= (1 - gamma) * problem.model.initial - 1e-14).all()


def test_visitation_matches_the_truncated_discounted_series():
    problem, x, pi = instance(3, 4, 2, 3, 0.9, 0.5)
    m = problem.follower_mdp(x)
    P_pi = np.einsum("sa,sat->st", pi, m.P)
    state, series = m.rho.copy(), np.zeros(4)
    for t in range(600):
        series += (1 - m.gamma) * m.gamma**t * state
        state = state @ P_pi
    np.testing.assert_allclose(problem.evaluate(x, pi).visitation, series, rtol=1e-12, atol=1e-15)


def test_visitation_is_the_library_policy_evaluation_visitation():
    problem, x, pi = instance(9, 3, 2, 2, 0.7, 0.1)
    m = problem.follower_mdp(x)
    ev = evaluate_policy(m.P, m.r, pi, m.gamma, m.tau)
    np.testing.assert_array_equal(ev.visitation(m.rho, m.gamma), problem.evaluate(x, pi).visitation)
