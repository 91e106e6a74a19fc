"""Exact Stackelberg solutions: the strong Stackelberg equilibrium of a bimatrix game by linear
programming, and the leader's value against an exact, leader-favouring best response.

A strong Stackelberg equilibrium (SSE) lets the leader commit to a mixed strategy ``mu``; the
follower best-responds, breaking ties in the leader's favour. Conitzer & Sandholm (EC 2006):
for each follower action ``j`` solve

    max_mu  mu . L[:, j]   s.t.  mu . (F[:, j] - F[:, k]) >= 0 for all k,  mu in the simplex

and keep the best feasible ``j``. This is the ground truth penalty methods must approach on
matrix games (docs/theory.md §1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stackelberg.model import GameModel
from stackelberg.tabular import evaluate_policy, solve_mdp

#: Follower actions whose value is within this (relative) tolerance of the best count as ties.
TIE_RTOL = 1e-9


@dataclass(frozen=True)
class StackelbergSolution:
    """A strong Stackelberg equilibrium of a bimatrix game.

    Attributes
    ----------
    leader_strategy : array (B,)
        The leader's optimal commitment.
    follower_action : int
        The follower's (leader-favouring) best response to it.
    leader_value, follower_value : float
        Payoffs at the equilibrium.
    """

    leader_strategy: np.ndarray
    follower_action: int
    leader_value: float
    follower_value: float


def _payoff_matrix(name: str, value: object) -> np.ndarray:
    matrix = np.asarray(value, dtype=float)
    if matrix.ndim != 2 or min(matrix.shape) < 1:
        raise ValueError(f"{name} must be a non-empty 2-D matrix, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError(f"{name} has non-finite entries")
    return matrix


def strong_stackelberg(leader_payoffs: object, follower_payoffs: object) -> StackelbergSolution:
    """Strong Stackelberg equilibrium of a bimatrix game (one LP per follower action).

    Parameters
    ----------
    leader_payoffs, follower_payoffs : array_like (B, A)
        Rows are leader actions, columns follower actions.

    Returns
    -------
    StackelbergSolution

    Examples
    --------
    >>> sol = strong_stackelberg([[2, 4], [1, 3]], [[1, 0], [0, 1]])
    >>> round(sol.leader_value, 6), sol.follower_action
    (3.5, 1)
    """
    L = _payoff_matrix("leader_payoffs", leader_payoffs)
    F = _payoff_matrix("follower_payoffs", follower_payoffs)
    if L.shape != F.shape:
        raise ValueError(f"payoff matrices differ in shape: {L.shape} and {F.shape}")
    B, A = L.shape
    from scipy.optimize import linprog  # here: every `stackelberg` command imports this module

    best: StackelbergSolution | None = None
    for j in range(A):
        # mu . (F[:, k] - F[:, j]) <= 0 for every k != j
        others = [k for k in range(A) if k != j]
        A_ub = (F[:, others] - F[:, [j]]).T if others else None
        b_ub = np.zeros(len(others)) if others else None
        result = linprog(
            -L[:, j],
            A_ub=A_ub,
            b_ub=b_ub,
            A_eq=np.ones((1, B)),
            b_eq=[1.0],
            bounds=[(0, None)] * B,
            method="highs",
        )
        if result.status != 0:
            continue  # action j is never a best response
        mu = np.clip(result.x, 0, None)
        mu /= mu.sum()
        value = float(mu @ L[:, j])
        if best is None or value > best.leader_value + 1e-12:
            best = StackelbergSolution(mu, j, value, float(mu @ F[:, j]))
    assert best is not None, "some follower action is always a best response"
    return best


def matrix_payoffs(model: GameModel) -> tuple[np.ndarray, np.ndarray]:
    """Leader and follower payoff matrices of a one-state, ``gamma = 0`` game."""
    if not model.is_matrix_game:
        raise ValueError(f"{model.name} is not a matrix game (one state, gamma = 0)")
    return model.leader_rewards[0], model.follower_rewards[0]


@dataclass(frozen=True)
class CommitmentOutcome:
    """What a leader commitment yields against an exact, leader-favouring best response."""

    leader_value: float
    follower_value: float
    follower_policy: np.ndarray


def leader_value_against_best_response(model: GameModel, mu: np.ndarray) -> CommitmentOutcome:
    """The leader's value when the follower plays an exact (unregularized) best response to
    ``mu``, ties broken in the leader's favour.

    The follower's optimal actions in each state are those within ``TIE_RTOL`` of the optimal
    ``Q*``; any policy supported on them is follower-optimal, so the leader-favouring one solves a
    second MDP: the leader's rewards over the follower's optimal actions only.

    Parameters
    ----------
    model : GameModel
    mu : array (S, B)
        The leader's (state-wise) commitment.
    """
    P = np.einsum("sb,sbat->sat", mu, model.transitions)
    r_F = np.einsum("sb,sba->sa", mu, model.follower_rewards)
    r_L = np.einsum("sb,sba->sa", mu, model.leader_rewards)
    follower = solve_mdp(P, r_F, model.gamma, tau=0.0)
    scale = 1.0 + np.abs(follower.Q).max()
    optimal = follower.Q >= follower.Q.max(axis=1, keepdims=True) - TIE_RTOL * scale
    # Leader's MDP restricted to the follower's optimal actions: forbidden actions get a reward
    # so low that no optimal policy of the restricted problem uses them.
    span = np.abs(r_L).max() + 1.0
    penalty = (span / (1.0 - model.gamma)) * 4.0
    restricted = np.where(optimal, r_L, r_L - penalty)
    start = optimal / optimal.sum(axis=1, keepdims=True)
    leader = solve_mdp(P, restricted, model.gamma, tau=0.0, pi0=start)
    pi = leader.pi
    value_L = float(model.initial @ evaluate_policy(P, r_L, pi, model.gamma).V)
    value_F = float(model.initial @ evaluate_policy(P, r_F, pi, model.gamma).V)
    return CommitmentOutcome(value_L, value_F, pi)
