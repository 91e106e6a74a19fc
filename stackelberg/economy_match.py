"""One match in an incentive economy: a planner's leader against n follower learners.

The economy counterpart of :mod:`stackelberg.coordinator` (DESIGN, "One match, as data"). Each
iteration:

1. every follower learner takes ``follower_steps`` steps, all from the same profile (they move
   simultaneously), against the followers' model at the planner's current ``x``;
2. the planner's leader takes one step;
3. the exact metrics of the new state are recorded (docs/theory.md §5 and §7): at the
   followers' current profile, the social welfare, payments, net welfare and the Nash gap; at
   the exact equilibrium of the new ``x`` (damped best responses from the uniform profile), the same
   three (the hyper-objective); and the leader's own diagnostics.

It knows no algorithm by name: it receives objects with the methods of the protocols below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from stackelberg.bilevel import FollowerModel
from stackelberg.economy import IncentiveEconomy, equilibrium_outcome, upper_objective
from stackelberg.nash import nash_gap


class GameFollowerLearner(Protocol):
    samples: int

    def reset(self, model: FollowerModel, tau: float, rng: np.random.Generator) -> None: ...

    def step(self, model: FollowerModel, profile: Sequence[np.ndarray]) -> np.ndarray: ...

    @property
    def policy(self) -> np.ndarray: ...


class EconomyLeader(Protocol):
    samples: int

    def reset(self, economy: IncentiveEconomy, tau: float, rng: np.random.Generator) -> None: ...

    def step(self) -> dict[str, float]: ...

    @property
    def x(self) -> np.ndarray: ...


@dataclass(frozen=True)
class EconomyMatchResult:
    """The metrics rows of a match, the final ``x`` and profile, and the no-incentive baseline.

    ``baseline_net_welfare`` is ``W - c payments`` (payments zero) at the followers' equilibrium
    without incentives: what the planner must beat.
    """

    rows: tuple[dict[str, float], ...]
    x: np.ndarray
    profile: tuple[np.ndarray, ...]
    baseline_net_welfare: float
    baseline_welfare: float


def play_economy(economy: IncentiveEconomy, tau: float, leader: EconomyLeader,
                 followers: Sequence[GameFollowerLearner], iterations: int, seed: int = 0,
                 follower_steps: int = 1, metrics_every: int = 1) -> EconomyMatchResult:
    """Run one match (module docstring); the seed derives every learner's generator."""
    if len(followers) != economy.n_followers:
        raise ValueError(f"the economy has {economy.n_followers} followers, "
                         f"got {len(followers)} follower learners")
    streams = np.random.SeedSequence(seed).spawn(len(followers) + 1)
    leader.reset(economy, tau, np.random.default_rng(streams[0]))
    model = economy.incentives.followers(leader.x)
    for learner, stream in zip(followers, streams[1:], strict=True):
        learner.reset(model, tau, np.random.default_rng(stream))
    profile = tuple(learner.policy for learner in followers)
    baseline = equilibrium_outcome(economy, None, tau)
    rows = []
    for k in range(1, iterations + 1):
        model = economy.incentives.followers(leader.x)
        for _ in range(follower_steps):
            profile = tuple(learner.step(model, profile) for learner in followers)
        diagnostics = leader.step()
        if k % metrics_every and k != iterations and k != 1:
            continue
        x = leader.x
        played = upper_objective(economy, x, profile, gradients=False)
        # from the uniform profile every time: the followers' game may have several equilibria,
        # and the one reached from a fixed start is a function of x alone
        outcome = equilibrium_outcome(economy, x, tau)
        rows.append({
            "iteration": float(k),
            "welfare": played.welfare, "payments": played.payments,
            "net_welfare": -played.objective,
            "nash_gap": nash_gap(economy.incentives.followers(x), profile, tau).gap,
            "equilibrium_welfare": outcome.upper.welfare,
            "equilibrium_payments": outcome.upper.payments,
            "equilibrium_net_welfare": outcome.net_welfare,
            "samples": float(leader.samples + sum(f.samples for f in followers)),
            **diagnostics,
        })
    return EconomyMatchResult(tuple(rows), leader.x, profile, baseline.net_welfare,
                              baseline.upper.welfare)
