"""The penalized actor with its soft TD critic: RAC's steps 2-3, shared by the sampled PBRL.

Minimizing ``F_w(x, .) = f(x, .) + w p(x, .)`` over the penalized policy (value penalty,
REFERENCE §2) is maximizing the soft value ``V + V_L / w`` of the follower's MDP with reward
``r_F + r_L / w`` (``StackelbergProblem.penalized_response``). From a batch of transitions
played by the penalized policy ``pi``, one iteration takes

1. a critic step, TD(0) with step ``beta`` towards the soft target
   ``r_F + r_L / w + gamma sum_a' pi(a'|s') (Q(s', a') - tau log pi(a'|s'))``
   (:func:`stackelberg.tabular.td_update`), so ``Q`` tracks the soft ``Q_pi`` of that reward;
2. an actor step, policy mirror descent with step ``alpha`` on the critic,
   ``log pi' = (log pi + alpha Q) / (1 + alpha tau)`` (normalized): the natural-gradient form of
   a step along ``-grad_theta F_w / w`` (REFERENCE §4, RAC and PBRL's natural geometry).
"""

from __future__ import annotations

import numpy as np

from stackelberg.sampling import TransitionBatch
from stackelberg.tabular import log_softmax, td_update


class PenalizedActorCritic:
    """The penalized policy ``pi = exp(log_pi)`` (uniform at first) and its critic ``Q``.

    Parameters
    ----------
    shape : (int, int)
        ``(S, A)``.
    """

    def __init__(self, shape: tuple[int, int]):
        self.Q = np.zeros(shape)
        self.log_pi = np.full(shape, -np.log(shape[1]))

    @property
    def policy(self) -> np.ndarray:
        return np.exp(self.log_pi)

    def step(self, batch: TransitionBatch, w: float, tau: float, gamma: float, alpha: float,
             beta: float) -> None:
        """One critic step (``beta``) and one actor step (``alpha``) from ``batch``, played by
        the current policy, for the penalty weight ``w`` (module docstring)."""
        pi = self.policy
        reward = batch.follower_rewards + batch.leader_rewards / w
        soft_v = (pi * (self.Q - tau * self.log_pi)).sum(axis=1)
        target = reward + gamma * soft_v[batch.next_states]
        self.Q = td_update(self.Q, batch.states, batch.follower_actions, target, beta)
        self.log_pi = log_softmax((self.log_pi + alpha * self.Q) / (1.0 + alpha * tau), axis=1)
