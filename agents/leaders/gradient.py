"""Gradient-descent leaders that differentiate through (or around) the follower's response.

- ``hypergradient``: gradient descent on the exact hypergradient of ``Phi(x) = f(x, pi*_x)``
  by implicit differentiation of the soft Bellman fixed point (REFERENCE §3). This is the
  second-order, implicit-differentiation baseline of both papers (e.g. PARL). The follower
  learner's current policy stands in for ``pi*_x``; with the ``best-response`` follower it is
  exact.
- ``partial-gradient``: the standard alternating update that ignores how the follower's policy
  depends on ``x``: ``x <- x - alpha grad_x f(x, pihat)`` (REFERENCE §4, baselines).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

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


class _GradientLeader:
    """Shared loop: ``x <- x - alpha * direction(x, pihat)``; subclasses give the direction."""

    samples = 0
    penalized_policy = None

    def __init__(self, config: GradientLeaderConfig | None = None):
        self.config = config or GradientLeaderConfig()

    def reset(self, problem: StackelbergProblem, rng: np.random.Generator) -> None:
        self.problem = problem
        self._x = problem.initial_x()

    @property
    def x(self) -> np.ndarray:
        return self._x

    def direction(self, pihat: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def step(self, responses: Sequence[np.ndarray]) -> dict[str, float]:
        grad = self.direction(responses[0])
        self._x = self._x - self.config.alpha * grad
        return {"grad_norm": float(np.sqrt((grad**2).sum()))}


class HypergradientLeader(_GradientLeader):
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


class PartialGradientLeader(_GradientLeader):
    """Ignores the follower's dependence on ``x``: descends ``grad_x f(x, pihat)``."""

    def direction(self, pihat: np.ndarray) -> np.ndarray:
        return self.problem.evaluate(self._x, pihat).grad_upper_objective().x
