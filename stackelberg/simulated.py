"""A bilevel problem known only through a simulator (DESIGN, "Exact or sampled").

:class:`SimulatedProblem` is what a match gets when a game has no exact model: a factory of
PettingZoo Parallel environments, the two roles' agent names and policy architectures
(:class:`PolicySpec`, plain data), the discount, and the follower's entropy weight ``tau``
(which a leader's schedule may change, as for an exact
:class:`~stackelberg.problem.BilevelProblem`).
It has no ``model``; the coordinator's metrics are then sampled
(:class:`stackelberg.metrics.SampledMetrics`) through ``evaluate``, a Monte-Carlo evaluation of
the policies the specs describe.

The game side (``games/``) builds the problem and knows the closed forms (``describe``); it
does not know how a spec's policy acts, which is the learners' (torch) code. So ``evaluate`` is
supplied by the learners that play the problem (``agents.neural.evaluation.install``, called
when they reset), and importing a game never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces

from stackelberg.tabular import check_tau

__all__ = ["Describe", "PolicySpec", "SampledValues", "SimulatedProblem"]

#: ``describe(leader_mean, follower_mean, x) -> {name: value}``: game-specific quantities of the
#: policies in play, from their mean actions (``leader_mean(obs)`` and ``follower_mean(obs)``
#: map a batch of observations ``(n, obs_size)`` to environment actions ``(n, ...)``).
#: By convention a quantity ``q`` with a known closed form is reported with it as
#: ``q_closed_form`` (the convergence figure draws the pair) and its relative error as
#: ``q_error``.
Describe = Callable[[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray],
                     np.ndarray], dict[str, float]]


@dataclass(frozen=True)
class PolicySpec:
    """The architecture of one role's policy (the torch policies of ``agents.neural.policies``
    are built from it).

    Attributes
    ----------
    observation_size : int
        Length of the (flattened) observation.
    action_space : gymnasium.spaces.Box or Discrete
    hidden : tuple of int
        Hidden tanh layers (``()``: linear in the observation).
    init_mean : float
        Starting mean in normalized units (Gaussian only; 0 is the Box's centre).
    init_std, min_std : float
        Starting and smallest standard deviation in normalized units (Gaussian only).
    learn_std : bool
        Whether the standard deviation is learned (else it stays ``init_std`` and is no
        parameter: the leader's exploration noise, so her score-function gradient keeps a
        bounded variance) [ours].
    """

    observation_size: int
    action_space: spaces.Space
    hidden: tuple[int, ...] = ()
    init_mean: float = 0.0
    init_std: float = 0.3
    min_std: float = 0.02
    learn_std: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.action_space, (spaces.Box, spaces.Discrete)):
            raise ValueError(f"a neural policy needs a Box or Discrete action space, got "
                             f"{self.action_space!r}")
        if not 0 < self.min_std <= self.init_std:
            raise ValueError(f"need 0 < min_std <= init_std, got {self.min_std}, {self.init_std}")


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
    leader_spec, follower_spec : PolicySpec
        The roles' policy architectures.
    gamma : float
        Discount of both players' returns.
    tau : float
        The follower's entropy weight (the coordinator sets it from a leader's schedule).
    describe : callable, optional
        The game's own quantities of the policies in play (:data:`Describe`), e.g. the
        duopoly's quantities next to their closed forms.
    evaluate : callable, optional
        ``evaluate(x, follower_params, episodes, rng) -> SampledValues``; installed by the
        learners that play the problem (module docstring) if the builder gave none.
    fast : bool
        Let simulators use the environment's vectorized fast path if it has one.
    """

    name: str
    make_env: Callable[[], Any]
    leader_agent: str
    follower_agent: str
    leader_spec: PolicySpec
    follower_spec: PolicySpec
    gamma: float
    tau: float
    describe: Describe | None = None
    evaluate: Callable[..., SampledValues] | None = None
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
        """Monte-Carlo values of leader ``x`` against the follower's parameters."""
        if self.evaluate is None:
            raise ValueError(f"{self.name}: no evaluation installed; the learners that play a "
                             "simulated problem install theirs when they reset")
        return self.evaluate(x, follower, episodes, rng)
