"""Soft Q-learning from sampled transitions (a sample-based follower learner).

Each step draws ``batch_size`` transitions from the game's model under the leader's current
commitment, at state-action pairs chosen uniformly (generative-model access), and moves the
table towards the soft Bellman target (docs/theory.md §1, soft optimality):

    Q(s, a) <- Q(s, a) + alpha (r_F + gamma * tau * logsumexp(Q(s', .) / tau) - Q(s, a))

averaging the targets of repeated pairs within a batch. The policy is ``softmax(Q / tau)``
(greedy for ``tau = 0``). A constant ``alpha`` lets the learner track a moving leader.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stackelberg.problem import StackelbergProblem
from stackelberg.sampling import sample_transitions
from stackelberg.tabular import greedy_policy, soft_max_value, td_update
from stackelberg.validation import check_fields


@dataclass(frozen=True)
class SoftQConfig:
    """Hyperparameters of soft Q-learning.

    Attributes
    ----------
    batch_size : int
        Transitions drawn per step.
    alpha : float
        Learning rate in (0, 1].
    """

    section = "follower"

    batch_size: int = 256
    alpha: float = 0.5

    def __post_init__(self) -> None:
        check_fields(self, positive_int=("batch_size",), positive=("alpha",))
        if self.alpha > 1:
            raise ValueError(f"follower.alpha must be in (0, 1], got {self.alpha!r}")


class SoftQFollower:
    """Tabular soft Q-learning on transitions sampled from the exact model."""

    def __init__(self, config: SoftQConfig | None = None):
        self.config = config or SoftQConfig()

    def reset(self, problem: StackelbergProblem, rng: np.random.Generator) -> None:
        self.problem = problem
        self.rng = rng
        self.Q = np.zeros(problem.policy_shape)
        self.samples = 0

    def step(self, x: np.ndarray) -> None:
        problem, c = self.problem, self.config
        S, A = self.Q.shape
        n = c.batch_size
        states = self.rng.integers(S, size=n)
        actions = self.rng.integers(A, size=n)
        batch = sample_transitions(
            problem.model, problem.leader_policy(x), states, actions, self.rng
        )
        gamma, tau = problem.model.gamma, problem.tau
        target = batch.follower_rewards + gamma * soft_max_value(self.Q, tau)[batch.next_states]
        self.Q = td_update(self.Q, states, actions, target, c.alpha)
        self.samples += n

    @property
    def policy(self) -> np.ndarray:
        return greedy_policy(self.Q, self.problem.tau)
