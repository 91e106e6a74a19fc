"""The penalized actor with its soft TD critic: RAC's steps 2-3, shared by the sampled PBRL.

Minimizing ``F_w(x, .) = f(x, .) + w p(x, .)`` over the penalized policy (value penalty,
docs/theory.md §2) is maximizing the soft value ``V + V_L / w`` of the follower's MDP with reward
``r_F + r_L / w`` (``StackelbergProblem.penalized_response``). From a batch of transitions
played by the penalized policy ``pi``, one iteration takes

1. a critic step, TD(0) with step ``beta`` towards the soft target
   ``r_F + r_L / w + gamma sum_a' pi(a'|s') (Q(s', a') - tau log pi(a'|s'))``
   (:func:`stackelberg.tabular.td_update`), so ``Q`` tracks the soft ``Q_pi`` of that reward;
2. an actor step, policy mirror descent with step ``alpha`` on the critic,
   ``log pi' = (log pi + alpha Q) / (1 + alpha tau)`` (normalized): the natural-gradient form of
   a step along ``-grad_theta F_w / w`` (docs/theory.md §4, RAC and PBRL's natural geometry).
"""

from __future__ import annotations

import numpy as np

from agents.followers.model_based import empirical_means, empirical_transitions, tally
from stackelberg.sampling import TransitionBatch
from stackelberg.tabular import evaluate_policy, log_softmax, td_update


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


class ModelBasedPenalizedActor:
    """The penalized policy with a certainty-equivalence critic (RAC's ``critic = "model"``).

    The leader knows its own commitment ``mu_x`` and sees its own action ``b`` in every
    transition, so it can estimate the *stationary* parts of the game: the transitions
    ``P_hat(s'|s, a)`` (counts; the transitions do not depend on ``b``, as RAC requires) and
    both players' mean rewards ``r_hat(s, b, a)`` (plain sample means). Each step it adds a batch
    to these statistics, evaluates the current policy exactly on the estimated MDP with reward
    ``sum_b mu_x(b|s) (r_hat_F + r_hat_L / w)(s, b, a)`` (the reward of
    ``StackelbergProblem.penalized_response``, docs/theory.md §2), and takes the same mirror-descent
    step as :class:`PenalizedActorCritic`. Unlike a TD critic, this one has no lag behind ``x``
    (the reward is recomputed for the current ``mu_x``) and needs no bootstrapping across the
    grid, so with a large ``alpha`` (soft policy iteration) the actor stays at the penalized
    response of the estimated model while ``x`` moves.

    Parameters
    ----------
    shape : (int, int)
        ``(S, A)``.
    n_leader_actions : int
        ``B``.
    """

    def __init__(self, shape: tuple[int, int], n_leader_actions: int):
        S, A = shape
        self.transition_counts = np.zeros((S, A, S))
        self.reward_counts = np.zeros((S, n_leader_actions, A))
        self.follower_sums = np.zeros((S, n_leader_actions, A))
        self.leader_sums = np.zeros((S, n_leader_actions, A))
        self.log_pi = np.full(shape, -np.log(A))
        self.Q = np.zeros(shape)

    @property
    def policy(self) -> np.ndarray:
        return np.exp(self.log_pi)

    def observe(self, batch: TransitionBatch) -> None:
        """Add a batch of transitions to the statistics."""
        S, B, A = self.reward_counts.shape
        self.transition_counts += tally((S, A, S), (batch.states, batch.follower_actions,
                                                    batch.next_states))
        cell = (batch.states, batch.leader_actions, batch.follower_actions)
        self.reward_counts += tally((S, B, A), cell)
        self.follower_sums += tally((S, B, A), cell, batch.follower_rewards)
        self.leader_sums += tally((S, B, A), cell, batch.leader_rewards)

    def step(self, batch: TransitionBatch, mu: np.ndarray, w: float, tau: float, gamma: float,
             alpha: float) -> None:
        """Observe ``batch``, evaluate the policy on the estimated model for the commitment
        ``mu`` (shape ``(S, B)``) and the penalty weight ``w``, and take one actor step."""
        self.observe(batch)
        reward = (empirical_means(self.follower_sums, self.reward_counts)
                  + empirical_means(self.leader_sums, self.reward_counts) / w)
        r = np.einsum("sb,sba->sa", mu, reward)
        P = empirical_transitions(self.transition_counts)
        self.Q = evaluate_policy(P, r, self.policy, gamma, tau).Q
        self.log_pi = log_softmax((self.log_pi + alpha * self.Q) / (1.0 + alpha * tau), axis=1)
