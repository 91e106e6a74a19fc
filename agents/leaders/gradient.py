"""Gradient-descent leaders that differentiate through (or around) the follower's response.

- ``hypergradient``: gradient descent on the exact hypergradient of ``Phi(x) = f(x, pi*_x)``
  by implicit differentiation of the soft Bellman fixed point (REFERENCE §3). This is the
  second-order, implicit-differentiation baseline of both papers (e.g. PARL). The follower
  learner's current policy stands in for ``pi*_x``; with the ``best-response`` follower it is
  exact.
- ``partial-gradient``: the standard alternating update that ignores how the follower's policy
  depends on ``x``: ``x <- x - alpha grad_x f(x, pihat)`` (REFERENCE §4, baselines).
- ``partial-gradient-sampled``: the same update along an unbiased score-function estimate of
  ``grad_x f(x, pihat)`` from sampled episodes (:mod:`agents.leaders.score_function`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agents.leaders.score_function import EpisodeSettings, StateBaseline, sampled_estimate
from stackelberg.problem import StackelbergProblem
from stackelberg.validation import check_fields


@dataclass(frozen=True)
class GradientLeaderConfig:
    """Hyperparameters of a plain gradient-descent leader.

    Attributes
    ----------
    alpha : float
        Step size on the leader logits ``x``.
    """

    section = "leader"

    alpha: float = 0.5

    def __post_init__(self) -> None:
        check_fields(self, positive=("alpha",))


class DescentLeader:
    """Shared loop: ``x <- x - alpha * direction(pihat)``; subclasses give the direction (and
    a sample-based one counts its transitions in ``samples``)."""

    samples = 0
    penalized_policy = None

    def __init__(self, config: GradientLeaderConfig | None = None):
        self.config = config or GradientLeaderConfig()

    def reset(self, problem: StackelbergProblem, rng: np.random.Generator) -> None:
        self.problem = problem
        self._x = problem.initial_x()
        self.k = 0

    @property
    def x(self) -> np.ndarray:
        return self._x

    def direction(self, pihat: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def step_size(self) -> float:
        """``alpha (k+1)^-step_decay`` (a config without ``step_decay`` keeps ``alpha``)."""
        return self.config.alpha * (self.k + 1.0) ** -getattr(self.config, "step_decay", 0.0)

    def step(self, responses: Sequence[np.ndarray]) -> dict[str, float]:
        grad = self.direction(responses[0])
        alpha = self.step_size()
        self._x = self._x - alpha * grad
        self.k += 1
        return {"grad_norm": float(np.sqrt((grad**2).sum()))}


class HypergradientLeader(DescentLeader):
    """Gradient descent on the exact (implicit-differentiation) hypergradient."""

    def reset(self, problem: StackelbergProblem, rng: np.random.Generator) -> None:
        if problem.tau <= 0:
            raise ValueError(
                "leader 'hypergradient' needs follower.tau > 0: the implicit hypergradient "
                "exists only for a unique, smooth best response"
            )
        super().reset(problem, rng)

    def direction(self, pihat: np.ndarray) -> np.ndarray:
        return self.problem.hypergradient(self._x, pi_star=pihat).grad


class PartialGradientLeader(DescentLeader):
    """Ignores the follower's dependence on ``x``: descends ``grad_x f(x, pihat)``."""

    def direction(self, pihat: np.ndarray) -> np.ndarray:
        return self.problem.evaluate(self._x, pihat).grad_upper_objective().x


@dataclass(frozen=True)
class SampledGradientConfig(EpisodeSettings):
    """Hyperparameters of the sample-based partial-gradient leader: the fields of
    :class:`agents.leaders.score_function.EpisodeSettings` (``episodes`` per step, ...), and

    Attributes
    ----------
    alpha : float
        Step size on the leader logits ``x``.
    step_decay : float
        ``c`` in the step size ``alpha (k+1)^-c`` at step ``k`` (0: constant; stochastic
        approximation converges for ``1/2 < c <= 1``).
    """

    alpha: float = 0.5
    step_decay: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fields(self, positive=("alpha",), non_negative=("step_decay",))


class SampledPartialGradientLeader(DescentLeader):
    """Partial gradient from samples: ``x <- x - alpha g``, ``g`` the score-function estimate
    of ``grad_x f(x, pihat)`` (:mod:`agents.leaders.score_function`), unbiased."""

    def __init__(self, config: SampledGradientConfig | None = None):
        self.config = config or SampledGradientConfig()

    def reset(self, problem: StackelbergProblem, rng: np.random.Generator) -> None:
        super().reset(problem, rng)
        self.rng = rng
        self.baseline = StateBaseline(problem.model.n_states, self.config.baseline_rate)
        self.samples = 0

    def direction(self, pihat: np.ndarray) -> np.ndarray:
        estimate, episodes = sampled_estimate(self.problem, self._x, pihat, self.config,
                                              self.rng, self.baseline)
        self.samples += episodes.n_transitions
        return estimate.grad_upper_objective.x
