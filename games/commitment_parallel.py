"""The Parallel environment of a finite game in which the follower observes the leader's
commitment, with a vectorized path for batched rollouts.

This is the sampled twin of the exact :class:`~stackelberg.problem.StackelbergProblem`: there
the follower answers the leader's committed policy ``mu(. | s)`` in the MDP ``M(x)`` whose reward
and transitions average over her action ``b ~ mu(. | s)`` (docs/theory.md §1); he never sees
the realized ``b``. Here, each round:

1. the leader's policy has been declared with :meth:`CommitmentParallelEnv.commit` (a
   ``commitment_view`` turns what the leader declares, e.g. her policy's parameters, into the
   table ``mu`` of shape ``(S, B)``);
2. both agents move at once: the leader draws ``b`` from her policy, the follower picks ``a``
   having observed ``[one-hot state (S) | agent indicator (2) | mu(. | s) (B)]``;
3. the round ``(s, b, a)`` of the model is played (rewards ``r[s, b, a]``, next state
   ``P(. | s, b, a)``), as in :class:`games.env.StackelbergParallelEnv`.

So a follower that learns ``pi(a | s, mu(. | s))`` against a leader who acts with ``mu`` faces
exactly the MDP ``M(x)`` of the exact problem. The leader observes ``[one-hot state |
indicator]`` (the parent's observation).

The vectorized path (:meth:`CommitmentParallelEnv.fast_batch`): ``n`` copies of an episode,
seeded per copy, played with array operations, giving *the same* rollout as ``n`` copies stepped
one by one (``stackelberg.simulator.ParallelSimulator`` uses it with ``fast=True``; the tests
compare both). It relies on how a copy draws its randomness: ``reset(seed)`` makes the
generator ``seeding.np_random(seed)``, the initial state and every next state are one
``Generator.choice(S, p=...)`` each, which reads exactly one ``Generator.random()`` and returns
``searchsorted(cumsum(p) / cumsum(p)[-1], u, side="right")``. A copy's stream is therefore the
``1 + max_cycles`` uniforms drawn at once at reset. (Episodes end by truncation after
``max_cycles`` rounds, or by termination after the one round of a ``gamma = 0`` game: every copy
plays the same number of rounds; ``discount_as_termination`` is not offered here.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding

from games import observations
from games.env import FOLLOWER, LEADER, StackelbergParallelEnv
from stackelberg.model import GameModel

__all__ = ["CommitmentBatch", "CommitmentParallelEnv"]

CommitmentView = Callable[[np.ndarray], np.ndarray]


def _identity_table(commitment: np.ndarray) -> np.ndarray:
    return np.asarray(commitment, dtype=np.float64)


class CommitmentParallelEnv(StackelbergParallelEnv):
    """Simultaneous moves, the follower observing the leader's commitment (module docstring).

    Parameters
    ----------
    model : GameModel
        The exact game; the environment samples from it (the learners never read it).
    commitment_view : callable, optional
        Maps what :meth:`commit` receives to the table ``mu`` of shape ``(S, B)``; default: the
        argument is the table itself.
    max_cycles, render_mode, name
        As in :class:`games.env.StackelbergParallelEnv`.
    """

    def __init__(self, model: GameModel, commitment_view: CommitmentView | None = None,
                 max_cycles: int | None = None, render_mode: str | None = None,
                 name: str | None = None) -> None:
        super().__init__(model, max_cycles, render_mode, observations.ONEHOT, False, name)
        S, B = model.n_states, model.n_leader_actions
        self.commitment_view = _identity_table if commitment_view is None else commitment_view
        self.observation_spaces = {LEADER: observations.unit_box(S + 2),
                                   FOLLOWER: observations.unit_box(S + 2 + B)}
        self._table = np.full((S, B), 1.0 / B, dtype=np.float32)
        # the vectorized path's copy of the model: cumulative rows exactly as Generator.choice
        # computes them (cumsum, then divided by the last entry)
        self._initial_cdf = self._cdf(model.initial)
        self._transition_cdf = self._cdf(model.transitions)

    @staticmethod
    def _cdf(p: np.ndarray) -> np.ndarray:
        cdf = np.cumsum(p, axis=-1)
        return cdf / cdf[..., -1:]

    def commit(self, commitment: Any) -> None:
        """Declare the leader's policy; the follower sees its row ``mu(. | s)`` from the next
        observation on. Refuses a table that is not ``(S, B)`` rows of probabilities (the last
        declared one stays)."""
        table = np.asarray(self.commitment_view(commitment), dtype=np.float64)
        shape = (self.model.n_states, self.model.n_leader_actions)
        if table.shape != shape or not np.isfinite(table).all() or (table < 0).any() or \
                not np.allclose(table.sum(axis=1), 1.0, atol=1e-6):
            raise ValueError(f"a commitment must be {shape} rows of probabilities, got "
                             f"{np.array2string(table, precision=3)}")
        self._table = table.astype(np.float32)

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def _observations(self) -> dict[str, np.ndarray]:
        shown = self._table[self._state]
        return {LEADER: self._encode(LEADER),
                FOLLOWER: np.concatenate([self._encode(FOLLOWER), shown])}

    # -- the vectorized path --------------------------------------------------------------------

    def _batch_observations(self, states: np.ndarray) -> dict[str, np.ndarray]:
        S = self.model.n_states
        n = len(states)
        leader = np.zeros((n, S + 2))
        leader[np.arange(n), states] = 1.0
        follower = np.concatenate([leader, self._table[states].astype(np.float64)], axis=1)
        leader[:, S] = 1.0
        follower[:, S + 1] = 1.0
        return {LEADER: leader, FOLLOWER: follower}

    def fast_batch(self, seeds: Sequence[int]) -> CommitmentBatch:
        """``len(seeds)`` copies, each reset with its seed, stepped as arrays (module docstring);
        :class:`stackelberg.simulator.ParallelSimulator` drives it with ``fast=True``."""
        return CommitmentBatch(self, seeds)


class CommitmentBatch:
    """Copies of a :class:`CommitmentParallelEnv` as arrays: every copy's uniforms are drawn at
    reset (``1 + max_cycles`` of them), so the copies step exactly as they would one by one;
    they all end together, after ``max_cycles`` rounds."""

    def __init__(self, env: CommitmentParallelEnv, seeds: Sequence[int]) -> None:
        self.env = env
        self.uniforms = np.stack([seeding.np_random(int(s))[0].random(1 + env.max_cycles)
                                  for s in seeds])
        self.states = (env._initial_cdf[None] <= self.uniforms[:, :1]).sum(axis=1)
        self.t = 0

    def observations(self) -> dict[str, np.ndarray]:
        return self.env._batch_observations(self.states)

    def step(self, actions: dict[str, np.ndarray]
             ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], bool]:
        """Both agents' batches of actions -> (observations, rewards, whether every copy ended)."""
        model, n = self.env.model, len(self.states)
        b = np.asarray(actions[LEADER]).reshape(n).astype(np.int64)
        a = np.asarray(actions[FOLLOWER]).reshape(n).astype(np.int64)
        if ((b < 0) | (b >= model.n_leader_actions)).any() or \
                ((a < 0) | (a >= model.n_follower_actions)).any():
            raise ValueError("an action is outside its Discrete space")
        rewards = {LEADER: model.leader_rewards[self.states, b, a],
                   FOLLOWER: model.follower_rewards[self.states, b, a]}
        cdf = self.env._transition_cdf[self.states, b, a]
        self.t += 1
        self.states = (cdf <= self.uniforms[:, self.t, None]).sum(axis=1)
        return self.observations(), rewards, self.t == self.env.max_cycles
