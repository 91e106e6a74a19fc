"""Bimatrix games: one state, no future (``gamma = 0``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stackelberg.model import GameModel, check_finite


def _payoff_matrix(name: str, payoffs: Sequence[Sequence[float]]) -> np.ndarray:
    try:
        matrix = np.array(payoffs, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a 2-D numeric matrix (list of rows): {err}") from None
    if matrix.ndim != 2 or 0 in matrix.shape:
        raise ValueError(
            f"{name} must be a non-empty 2-D matrix (rows = leader actions, "
            f"columns = follower actions), got shape {matrix.shape}"
        )
    check_finite(name, matrix)
    return matrix


def matrix_game(
    leader_payoffs: Sequence[Sequence[float]],
    follower_payoffs: Sequence[Sequence[float]],
) -> GameModel:
    """Build a one-shot bimatrix game as a one-state Markov game.

    The leader picks a row ``b``, the follower a column ``a``; they receive
    ``leader_payoffs[b][a]`` and ``follower_payoffs[b][a]``. The game has a single state, every
    transition returns to it, and ``gamma = 0``, so each round is an independent one-shot game.

    Parameters
    ----------
    leader_payoffs : sequence of sequences of float, shape (B, A)
        Leader's payoff; rows are leader actions, columns are follower actions.
    follower_payoffs : sequence of sequences of float, shape (B, A)
        Follower's payoff, same layout and shape as ``leader_payoffs``.

    Returns
    -------
    GameModel
        A model with ``S = 1``, ``B`` leader actions and ``A`` follower actions.

    Raises
    ------
    ValueError
        If a matrix is not 2-D, is empty, has non-finite entries, or the two shapes differ.

    Examples
    --------
    >>> model = matrix_game([[2, 4], [1, 3]], [[1, 0], [0, 1]])
    >>> model.transitions.shape
    (1, 2, 2, 1)
    """
    leader = _payoff_matrix("leader_payoffs", leader_payoffs)
    follower = _payoff_matrix("follower_payoffs", follower_payoffs)
    if leader.shape != follower.shape:
        raise ValueError(
            f"leader_payoffs has shape {leader.shape} but follower_payoffs has shape "
            f"{follower.shape}; both must be (leader actions, follower actions)"
        )
    n_leader, n_follower = leader.shape
    return GameModel(
        transitions=np.ones((1, n_leader, n_follower, 1)),
        leader_rewards=leader[np.newaxis],
        follower_rewards=follower[np.newaxis],
        initial=np.ones(1),
        gamma=0.0,
        name="matrix",
        state_names=("s0",),
        leader_action_names=tuple(f"row{b}" for b in range(n_leader)),
        follower_action_names=tuple(f"col{a}" for a in range(n_follower)),
    )
