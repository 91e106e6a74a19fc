"""Four-Rooms for the sample-based learners: the same problem with a game to sample from
(docs/theory.md §10).

The sample-based leaders and followers of ``agents`` draw transitions from a finite Stackelberg
game (:class:`stackelberg.model.GameModel`) under the leader's commitment ``mu_x``. HPGD's
incentive is one: with ``p = softmax(w)`` (105 entries) as a commitment shared by every state,
a *leader action* ``b < 104`` puts the whole penalty ``-scale`` on cell ``b`` and ``b = 104``
(the slack) puts none, so

    r_F(s, b, a) = r_0(s) - scale F[s, b]
    r_L(s, b, a) = 1[target] - beta scale 1[goal] 1[b < 104]

mixed by ``p`` give exactly the follower's reward and the planner's reward of
:mod:`games.four_rooms`, and the kernel does not depend on ``b``. A sampled step draws ``b``
from ``p`` (an unbiased, noisier reward). The exact computations stay those of
:class:`games.four_rooms.FourRoomsProblem` (closed forms on 209 states, without the game's
``(S, B, A, S)`` array); the game (about 150 MB) only serves the samplers.
"""

from __future__ import annotations

import numpy as np

from games.four_rooms import FourRoomsProblem, four_rooms_problem
from stackelberg.model import GameModel


def incentive_game(problem: FourRoomsProblem) -> GameModel:
    """The shared-commitment game whose mixture under ``softmax(w)`` is ``problem``."""
    base, incentive, reward = problem.incentive.base, problem.incentive, problem.reward
    S, A = base.r.shape[1:]
    K = incentive.features.shape[1]
    penalty = np.concatenate([incentive.features, np.zeros((S, 1))], axis=1)  # (S, K + 1)
    follower = base.r[0][:, None, :] - incentive.scale * penalty[:, :, None]
    spent = np.append(np.ones(K), 0.0)  # the slack pays nothing
    leader = (reward.target[:, None]
              - reward.beta * incentive.scale * reward.goal[:, None] * spent[None, :])
    leader = np.repeat(leader[:, :, None], A, axis=2)
    transitions = np.broadcast_to(base.P[:, None], (S, K + 1, A, S))
    return GameModel(transitions=transitions, leader_rewards=leader,
                     follower_rewards=follower, initial=base.rho, gamma=base.gamma,
                     name="four-rooms", shared_commitment=True)


class SampledFourRoomsProblem(FourRoomsProblem):
    """:class:`FourRoomsProblem` with ``model`` (:func:`incentive_game`) and the commitment
    methods of :class:`stackelberg.problem.StackelbergProblem` the samplers call."""

    def __init__(self, problem: FourRoomsProblem):
        super().__init__(problem.grid, problem.incentive, problem.reward, problem.lam,
                         problem.beta, problem.settings)
        self.model = incentive_game(problem)

    def leader_policy(self, x: np.ndarray) -> np.ndarray:
        """``softmax(x)`` repeated for every state, ``(S, K + 1)``."""
        p = self.incentive.shares(x)
        return np.broadcast_to(p, (self.model.n_states, p.size))

    def reward_gradients(self, x: np.ndarray, rewards: np.ndarray, states: np.ndarray,
                         actions: np.ndarray) -> np.ndarray:
        """``grad sum_b mu(b) R(s, b, a)`` in the logits for every pair, ``(n, K + 1)``
        (:meth:`stackelberg.problem.StackelbergProblem.reward_gradients`)."""
        p = self.incentive.shares(x)[None, :]
        r = rewards[states, :, actions]
        return p * (r - (p * r).sum(axis=1, keepdims=True))

    def mean_reward_gradient(self, x: np.ndarray, rewards: np.ndarray, states: np.ndarray,
                             actions: np.ndarray) -> np.ndarray:
        """Sample mean of :meth:`reward_gradients`, shaped like ``x``."""
        return self.reward_gradients(x, rewards, states, actions).mean(axis=0, keepdims=True)


def sampled_four_rooms_problem(**params) -> SampledFourRoomsProblem:
    """:func:`games.four_rooms.four_rooms_problem` (same keywords) with its game."""
    return SampledFourRoomsProblem(four_rooms_problem(**params))
