"""Follower learners for a lower level that is a game (docs/theory.md §7).

One learner per follower role (:class:`stackelberg.protocols.GameFollowerLearner`, follower
``index`` of the profile); each round the coordinator shows every learner the profile they all
start from, then each steps against the followers' model at the planner's current ``x``
(:meth:`stackelberg.incentive_problem.IncentiveProblem.followers`), so all learners move
together (simultaneously, from the same profile). The entropy weight is the problem's current
``tau``.

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

from stackelberg.incentive_problem import IncentiveProblem
from stackelberg.nash import best_response, joint_policy
from stackelberg.tabular import soft_max_value, softmax, td_update
from stackelberg.validation import check_fields


@dataclass(frozen=True)
class DampedBestResponseConfig:
    """Settings of the damped best response in an economy.

    Attributes
    ----------
    damping : float
        The step ``eta`` in (0, 1] toward the soft best response.
    """

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

    def reset(self, problem: IncentiveProblem, rng: np.random.Generator) -> None:
        self.problem = problem
        self._policy = problem.uniform_profile()[self.index]
        self._profile: tuple[np.ndarray, ...] = problem.uniform_profile()
        self._last: np.ndarray | None = None

    def see_others(self, profile: Sequence[np.ndarray]) -> None:
        self._profile = tuple(profile)

    def step(self, x: np.ndarray) -> None:
        """The damped step toward the best response to the profile all followers share this
        round."""
        profile = self._profile
        star = best_response(self.problem.followers(x), profile, self.index, self.problem.tau,
                             pi0=self._last)
        self._last = star.pi
        eta = self.config.damping
        self._policy = (1 - eta) * profile[self.index] + eta * star.pi

    @property
    def policy(self) -> np.ndarray:
        return self._policy


@dataclass(frozen=True)
class IndependentSoftQConfig:
    """Settings of independent soft Q-learning in an economy.

    Attributes
    ----------
    batch : int
        Transitions sampled per step.
    alpha : float
        The TD step.
    explore : float
        The follower samples its own action uniformly with this probability (soft Q-learning
        is off-policy, so this changes what is learned only through which pairs are visited:
        without it, a near-greedy policy at a small ``tau`` stopped trying actions whose first
        estimates were low, measured on the commons).
    """

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

    def reset(self, problem: IncentiveProblem, rng: np.random.Generator) -> None:
        self.problem, self.rng = problem, rng
        self._profile: tuple[np.ndarray, ...] = problem.uniform_profile()
        self.Q = np.zeros_like(self._profile[self.index])

    def see_others(self, profile: Sequence[np.ndarray]) -> None:
        self._profile = tuple(profile)

    def step(self, x: np.ndarray) -> None:
        """A batch of transitions, then one soft-TD step on the pairs it visited.

        Each transition starts in a state drawn from ``rho`` (full support), so every state is
        visited; a single long trajectory left the rarely reached high-stock states of the
        commons with their first estimates, measured. Actions come from the others' policies
        and this follower's exploring one; the next state from ``P``.
        """
        n, rng, eps = self.config.batch, self.rng, self.config.explore
        model, profile, tau = self.problem.followers(x), self._profile, self.problem.tau
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
        soft_v = soft_max_value(self.Q, tau)
        targets = model.r[self.index, states, joint_actions] + model.gamma * soft_v[next_states]
        self.Q = td_update(self.Q, states, own, targets, self.config.alpha)

    @property
    def policy(self) -> np.ndarray:
        return softmax(self.Q / self.problem.tau, axis=1)
