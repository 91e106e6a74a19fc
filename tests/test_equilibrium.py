"""Exact strong Stackelberg equilibria (LP) and the leader value against a best response."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from games import matrix_game, random_markov_game
from stackelberg.equilibrium import leader_value_against_best_response, strong_stackelberg


def test_textbook_commitment_game_is_exact():
    # docs/theory.md §6: Nash gives the leader 2, committing 50/50 gives 3.5.
    sol = strong_stackelberg([[2, 4], [1, 3]], [[1, 0], [0, 1]])
    assert sol.leader_value == pytest.approx(3.5, abs=1e-12)
    assert sol.follower_action == 1
    np.testing.assert_allclose(sol.leader_strategy, [0.5, 0.5], atol=1e-12)


def test_pure_commitment_when_follower_has_a_dominant_action():
    # The follower always prefers column 0; the leader picks its best row in that column.
    sol = strong_stackelberg([[1, 9], [3, 0], [2, 5]], [[1, 0], [1, 0], [1, 0]])
    assert sol.leader_value == pytest.approx(3.0, abs=1e-12)
    assert sol.follower_action == 0
    np.testing.assert_allclose(sol.leader_strategy, [0, 1, 0], atol=1e-12)


def test_zero_sum_stackelberg_value_is_the_minimax_value():
    # Matching pennies: in zero-sum games commitment gives the minimax value 0.
    L = np.array([[1.0, -1.0], [-1.0, 1.0]])
    sol = strong_stackelberg(L, -L)
    assert sol.leader_value == pytest.approx(0.0, abs=1e-12)


def test_mismatched_payoffs_are_rejected():
    with pytest.raises(ValueError, match="shape"):
        strong_stackelberg([[1, 2]], [[1, 2], [3, 4]])


def _pure_nash_leader_values(L: np.ndarray, F: np.ndarray) -> list[float]:
    values = []
    for i, j in itertools.product(range(L.shape[0]), range(L.shape[1])):
        if L[i, j] >= L[:, j].max() - 1e-12 and F[i, j] >= F[i, :].max() - 1e-12:
            values.append(L[i, j])
    return values


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), rows=st.integers(2, 4), cols=st.integers(2, 4))
def test_commitment_never_hurts_the_leader(seed, rows, cols):
    """The SSE value is at least the leader's value at every pure Nash equilibrium, at least its
    pure-commitment value, and a grid of commitments never beats it."""
    rng = np.random.default_rng(seed)
    L, F = rng.uniform(size=(rows, cols)), rng.uniform(size=(rows, cols))
    sol = strong_stackelberg(L, F)
    for value in _pure_nash_leader_values(L, F):
        assert sol.leader_value >= value - 1e-9
    model = matrix_game(L.tolist(), F.tolist())
    for i in range(rows):
        pure = np.eye(rows)[i][None]
        pure_value = leader_value_against_best_response(model, pure).leader_value
        assert sol.leader_value >= pure_value - 1e-9
    # the SSE commitment itself achieves the SSE value against a leader-favouring best response
    at_sse = leader_value_against_best_response(model, sol.leader_strategy[None])
    assert at_sse.leader_value == pytest.approx(sol.leader_value, abs=1e-7)
    # and the follower action is a best response to the commitment
    payoff = sol.leader_strategy @ F
    assert payoff[sol.follower_action] >= payoff.max() - 1e-9


def test_random_commitments_do_not_beat_the_lp():
    rng = np.random.default_rng(7)
    for _ in range(20):
        L, F = rng.uniform(size=(3, 3)), rng.uniform(size=(3, 3))
        sol = strong_stackelberg(L, F)
        model = matrix_game(L.tolist(), F.tolist())
        for mu in rng.dirichlet(np.ones(3), size=200):
            value = leader_value_against_best_response(model, mu[None]).leader_value
            assert value <= sol.leader_value + 1e-9


def test_best_response_outcome_in_a_markov_game_is_follower_optimal():
    model = random_markov_game(n_states=6, n_leader_actions=2, n_follower_actions=3, gamma=0.8,
                               seed=3)
    mu = np.random.default_rng(0).dirichlet(np.ones(2), size=6)
    outcome = leader_value_against_best_response(model, mu)
    # the follower's value of the returned policy equals the optimal (unregularized) value
    from stackelberg.tabular import solve_mdp

    P = np.einsum("sb,sbat->sat", mu, model.transitions)
    r_F = np.einsum("sb,sba->sa", mu, model.follower_rewards)
    best = solve_mdp(P, r_F, model.gamma, tau=0.0)
    assert outcome.follower_value == pytest.approx(float(model.initial @ best.V), abs=1e-9)
