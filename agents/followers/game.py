"""Follower learners for a lower level that is a game (docs/theory.md §7).

One learner per follower role; each round the match hands every learner the followers' model
at the planner's current ``x`` and the current profile, and all learners move together
(simultaneously, from the same profile).

- ``best-response`` (:class:`DampedBestResponse`): follower ``i``'s soft best response to the
  others' current policies, damped: ``pi_i <- (1 - eta) pi_i + eta BR_i(pi_-i)``; with all
  followers doing it this is the damped best-response iteration of
  :func:`stackelberg.nash.nash_equilibrium`, one round per match step.
- ``soft-q`` (:class:`IndependentSoftQ`): independent soft Q-learning from the follower's own
  samples only [ours: the game analogue of the single follower's soft-Q learner]; the others
  are part of its environment. Each step draws a batch of transitions from the model (start
  states from ``rho``, the others' current policies and its own exploring one), and takes a
  tabular soft-TD step
  ``Q(s, a_i) += alpha (r_i + transfer + gamma tau logsumexp(Q(s', .)/tau) - Q(s, a_i))``; its
  policy is ``softmax(Q / tau)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stackelberg.bilevel import FollowerModel
from stackelberg.nash import best_response, joint_policy
from stackelberg.tabular import soft_max_value, softmax, td_update
from stackelberg.validation import check_fields


@dataclass(frozen=True)
class DampedBestResponseConfig:
    """``damping``: the step ``eta`` in (0, 1] toward the soft best response."""

    damping: float = 0.5

    section = "follower"

    def __post_init__(self) -> None:
        check_fields(self, unit_interval=("damping",))
        if self.damping == 0:
            raise ValueError("follower.damping must be in (0, 1], got 0")


class DampedBestResponse:
    """Follower ``index``'s damped soft best response (module docstring)."""

    samples = 0

    def __init__(self, index: int, config: DampedBestResponseConfig | None = None):
        self.index = index
        self.config = config or DampedBestResponseConfig()

    def reset(self, model: FollowerModel, tau: float, rng: np.random.Generator) -> None:
        self.tau = float(tau)
        k = model.action_sizes[self.index]
        self._policy = np.full((model.n_states, k), 1.0 / k)
        self._last: np.ndarray | None = None

    def step(self, model: FollowerModel, profile: Sequence[np.ndarray]) -> np.ndarray:
        """The new policy, from the profile all followers share this round."""
        star = best_response(model, profile, self.index, self.tau, pi0=self._last)
        self._last = star.pi
        eta = self.config.damping
        self._policy = (1 - eta) * profile[self.index] + eta * star.pi
        return self._policy

    @property
    def policy(self) -> np.ndarray:
        return self._policy


@dataclass(frozen=True)
class IndependentSoftQConfig:
    """``batch`` transitions per step, TD step ``alpha``; the follower samples its own action
    uniformly with probability ``explore`` (soft Q-learning is off-policy, so this changes what
    is learned only through which pairs are visited: without it, a near-greedy policy at a small
    ``tau`` stopped trying actions whose first estimates were low, measured on the commons)."""

    batch: int = 64
    alpha: float = 0.2
    explore: float = 0.2

    section = "follower"

    def __post_init__(self) -> None:
        check_fields(self, positive_int=("batch",), unit_interval=("alpha", "explore"))


class IndependentSoftQ:
    """Independent soft Q-learning of follower ``index`` from its own samples (module docstring)."""

    def __init__(self, index: int, config: IndependentSoftQConfig | None = None):
        self.index = index
        self.config = config or IndependentSoftQConfig()
        self.samples = 0

    def reset(self, model: FollowerModel, tau: float, rng: np.random.Generator) -> None:
        self.tau, self.rng = float(tau), rng
        self.Q = np.zeros((model.n_states, model.action_sizes[self.index]))

    def step(self, model: FollowerModel, profile: Sequence[np.ndarray]) -> np.ndarray:
        """A batch of transitions, then one soft-TD step on the pairs it visited.

        Each transition starts in a state drawn from ``rho`` (full support), so every state is
        visited; a single long trajectory left the rarely reached high-stock states of the
        commons with their first estimates, measured. Actions come from the others' policies
        and this follower's exploring one; the next state from ``P``.
        """
        n, rng, eps = self.config.batch, self.rng, self.config.explore
        behaviour = list(profile)
        own_k = model.action_sizes[self.index]
        behaviour[self.index] = (1 - eps) * profile[self.index] + eps / own_k
        joint = joint_policy(behaviour)
        states = rng.choice(model.n_states, size=n, p=model.rho)
        joint_actions = (joint.cumsum(axis=1)[states] < rng.random(n)[:, None]).sum(axis=1)
        joint_actions = np.minimum(joint_actions, joint.shape[1] - 1)  # rounding at the top
        cdf = model.P[states, joint_actions].cumsum(axis=1)
        next_states = np.minimum((cdf < rng.random(n)[:, None]).sum(axis=1), model.n_states - 1)
        self.samples += n
        own = np.unravel_index(joint_actions, model.action_sizes)[self.index]
        soft_v = soft_max_value(self.Q, self.tau)
        targets = model.r[self.index, states, joint_actions] + model.gamma * soft_v[next_states]
        self.Q = td_update(self.Q, states, own, targets, self.config.alpha)
        return self.policy

    @property
    def policy(self) -> np.ndarray:
        return softmax(self.Q / self.tau, axis=1)
