"""Random finite Stackelberg Markov games, for testing and benchmarking."""

from __future__ import annotations

import numpy as np

from games._validate import discount, nonnegative_int, positive_int
from stackelberg.model import GameModel


def random_markov_game(
    n_states: int = 5,
    n_leader_actions: int = 2,
    n_follower_actions: int = 2,
    gamma: float = 0.9,
    seed: int = 0,
) -> GameModel:
    """Draw a random general-sum Stackelberg Markov game.

    Each transition row ``transitions[s, b, a, :]`` is drawn from a flat Dirichlet(1)
    distribution (uniform on the probability simplex); both players' rewards are drawn
    independently from Uniform[0, 1]; the initial distribution is uniform. All randomness comes
    from ``numpy.random.default_rng(seed)``, so the same arguments give the same game.

    Parameters
    ----------
    n_states : int, default 5
        Number of states ``S`` (>= 1).
    n_leader_actions : int, default 2
        Number of leader actions ``B`` (>= 1).
    n_follower_actions : int, default 2
        Number of follower actions ``A`` (>= 1).
    gamma : float, default 0.9
        Discount factor in [0, 1).
    seed : int, default 0
        Non-negative seed of the random generator.

    Returns
    -------
    GameModel
        ``transitions`` of shape (S, B, A, S); rewards of shape (S, B, A).

    Raises
    ------
    ValueError
        If a parameter is out of range; the message names it.
    """
    S = positive_int("n_states", n_states)
    B = positive_int("n_leader_actions", n_leader_actions)
    A = positive_int("n_follower_actions", n_follower_actions)
    gamma = discount("gamma", gamma)
    seed = nonnegative_int("seed", seed)
    rng = np.random.default_rng(seed)
    transitions = rng.dirichlet(np.ones(S), size=(S, B, A))
    leader_rewards = rng.uniform(0.0, 1.0, size=(S, B, A))
    follower_rewards = rng.uniform(0.0, 1.0, size=(S, B, A))
    return GameModel(
        transitions=transitions,
        leader_rewards=leader_rewards,
        follower_rewards=follower_rewards,
        initial=np.full(S, 1.0 / S),
        gamma=gamma,
        name=f"random-markov(seed={seed})",
    )
