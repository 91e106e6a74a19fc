"""Vectorized sampling of transitions from a game's exact model.

The PettingZoo environments are the interface; sample-based learners draw batches here, from
the same arrays the environments sample from, so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stackelberg.model import GameModel


def sample_categorical(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of ``probs`` (shape ``(N, K)``) by inverting the cumulative sums."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random((probs.shape[0], 1)) * cdf[:, -1:]
    return np.minimum((cdf <= u).sum(axis=1), probs.shape[1] - 1)


@dataclass(frozen=True)
class TransitionBatch:
    """A batch of one-step transitions ``(s, b, a, r_L, r_F, s')``, arrays of equal length."""

    states: np.ndarray
    leader_actions: np.ndarray
    follower_actions: np.ndarray
    leader_rewards: np.ndarray
    follower_rewards: np.ndarray
    next_states: np.ndarray

    def __len__(self) -> int:
        return len(self.states)


def sample_transitions(
    model: GameModel,
    mu: np.ndarray,
    states: np.ndarray,
    follower_actions: np.ndarray,
    rng: np.random.Generator,
) -> TransitionBatch:
    """Draw the leader's action ``b ~ mu(.|s)`` and the next state ``s' ~ P(.|s, b, a)``.

    Parameters
    ----------
    model : GameModel
    mu : array (S, B)
        The leader's commitment.
    states, follower_actions : int arrays (N,)
    rng : numpy Generator
    """
    b = sample_categorical(mu[states], rng)
    next_states = sample_categorical(model.transitions[states, b, follower_actions], rng)
    return TransitionBatch(
        states=states,
        leader_actions=b,
        follower_actions=follower_actions,
        leader_rewards=model.leader_rewards[states, b, follower_actions],
        follower_rewards=model.follower_rewards[states, b, follower_actions],
        next_states=next_states,
    )
