"""A bilevel problem known only through a simulator (DESIGN, "Exact or sampled").

:class:`SimulatedProblem` is what a match gets when a game has no exact model: a factory of
PettingZoo Parallel environments, the two roles' agent names and policy architectures, the
discount, and the follower's entropy weight ``tau`` (which a leader's schedule may change, as
for an exact :class:`~stackelberg.problem.BilevelProblem`). It has no ``model``; the coordinator's
metrics are then sampled (:class:`stackelberg.metrics.SampledMetrics`), through ``evaluate``,
the Monte-Carlo evaluation the problem's builder supplies (it knows how the policies act).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stackelberg.tabular import check_tau

__all__ = ["SampledValues", "SimulatedProblem"]


@dataclass(frozen=True)
class SampledValues:
    """Monte-Carlo values of both players (discounted returns) with standard errors, and
    whatever game-specific quantities the problem reports (e.g. the duopoly's quantities)."""

    leader_value: float
    leader_value_se: float
    follower_value: float
    follower_value_se: float
    episodes: int
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class SimulatedProblem:
    """``min_x f(x, pi*_x)`` where ``f`` and the follower's value are only sampled.

    Attributes
    ----------
    name : str
        For summaries.
    make_env : callable
        A fresh PettingZoo Parallel environment; if it has ``commit``, the follower observes the
        leader's commitment (her policy's parameters) as in ``stackelberg/duopoly-v0``.
    leader_agent, follower_agent : str
        The roles' agent names in the environment.
    leader_spec, follower_spec : object
        The roles' policy architectures (``agents.neural.policies.PolicySpec``).
    gamma : float
        Discount of both players' returns.
    tau : float
        The follower's entropy weight (the coordinator sets it from a leader's schedule).
    evaluate : callable
        ``evaluate(x, follower_params, episodes, rng) -> SampledValues``.
    fast : bool
        Let simulators use the environment's vectorized fast path if it has one.
    """

    name: str
    make_env: Callable[[], Any]
    leader_agent: str
    follower_agent: str
    leader_spec: Any
    follower_spec: Any
    gamma: float
    tau: float
    evaluate: Callable[..., SampledValues]
    fast: bool = True
    model: None = None

    def __post_init__(self) -> None:
        self.tau = check_tau(self.tau)
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma!r}")

    @property
    def n_followers(self) -> int:
        return 1

    def set_tau(self, tau: float) -> None:
        self.tau = check_tau(tau)

    def forget(self) -> None:
        """Nothing is remembered between calls (the exact problem's interface)."""

    def values(self, x: np.ndarray, follower: np.ndarray, episodes: int,
               rng: np.random.Generator) -> SampledValues:
        return self.evaluate(x, follower, episodes, rng)
