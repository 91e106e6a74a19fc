"""The duopolies as simulator-only problems (registry kind ``"simulator"``): what a match of the
neural learners plays on ``stackelberg/duopoly-v0`` and ``stackelberg/duopoly-dynamic-v0``.

Each builder returns a :class:`~stackelberg.simulated.SimulatedProblem`: the Parallel
environment (the follower observes the leader's commitment, her policy's parameters), the two
roles' policy architectures, the discount, and ``describe``, the firms' planned (mean)
quantities next to their closed forms (docs/theory.md §9). The leader's policy is linear with a
fixed spread (her parameters, weight and bias, are the commitment); the follower's is linear by
default, since his best response is affine in what he observes (docs/theory.md §9). Nothing here
imports torch: the learners supply the Monte-Carlo evaluation (:mod:`stackelberg.simulated`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from games.duopoly import FOLLOWER, LEADER, DuopolyMarket, duopoly_env
from games.duopoly_dynamic import duopoly_dynamic_env
from stackelberg.simulated import PolicySpec, SimulatedProblem

__all__ = ["duopoly_dynamic_problem", "duopoly_problem", "duopoly_quantities"]

#: Length of the leader's commitment: the weight and bias of her linear policy on her
#: one-number observation.
COMMITMENT_SIZE = 2

Mean = Callable[[np.ndarray], np.ndarray]


def duopoly_quantities(market: DuopolyMarket, leader_mean: Mean, follower_mean: Mean,
                       x: np.ndarray, level: float | None = None) -> dict[str, float]:
    """The firms' planned (mean) quantities against the closed forms (docs/theory.md §9): the
    leader's against Stackelberg, the follower's against his best response to the leader's
    planned quantity. In the dynamic game (``level`` = the demand level ``a_t / a`` shown to
    both, 1 at the mean demand) the market is the period's, ``a_t = level * a``."""
    shown = [] if level is None else [level]
    q_leader = float(np.asarray(leader_mean(np.array([shown or [0.0]])))[0, 0])
    follower_obs = np.concatenate([shown, np.asarray(x, dtype=np.float64)])[None]
    q_follower = float(np.asarray(follower_mean(follower_obs))[0, 0])
    if level is not None:
        market = DuopolyMarket(level * market.a, market.b, market.cost_leader,
                               market.cost_follower)
    target = market.stackelberg().q_leader
    response = market.best_response(q_leader)
    return {"leader_quantity": q_leader, "leader_quantity_closed_form": target,
            "leader_quantity_error": abs(q_leader - target) / target,
            "follower_quantity": q_follower, "follower_quantity_closed_form": response,
            "follower_quantity_error": abs(q_follower - response) / max(response, 1e-12)}


def _problem(name: str, make_env: Callable[[], object], follower_obs: int, gamma: float,
             tau: float, hidden: tuple[int, ...], init_std: float, min_std: float,
             leader_std: float, fast: bool, describe, start: float) -> SimulatedProblem:
    """The problem; both firms' policies start planning the quantity ``start``."""
    probe = make_env()
    space = probe.action_space(LEADER)
    # ``start`` in the policies' normalized units (-1: the Box's low end, +1: its high end)
    init_mean = float(2 * (start - space.low[0]) / (space.high[0] - space.low[0]) - 1)
    leader_spec = PolicySpec(1, space, (), init_mean=init_mean, init_std=leader_std,
                             min_std=leader_std, learn_std=False)
    follower_spec = PolicySpec(follower_obs, probe.action_space(FOLLOWER), tuple(hidden),
                               init_mean=init_mean, init_std=init_std, min_std=min_std)
    return SimulatedProblem(name=name, make_env=make_env, leader_agent=LEADER,
                            follower_agent=FOLLOWER, leader_spec=leader_spec,
                            follower_spec=follower_spec, gamma=gamma, tau=tau,
                            describe=describe, fast=fast)


def duopoly_problem(tau: float = 0.05, *, a: float = 10.0, b: float = 1.0,
                    cost_leader: float = 2.0, cost_follower: float = 2.0,
                    hidden: tuple[int, ...] = (), init_std: float = 0.3, min_std: float = 0.02,
                    leader_std: float = 0.1, fast: bool = True) -> SimulatedProblem:
    """``stackelberg/duopoly-v0`` for the neural learners: one round, ``gamma = 0``.

    Parameters
    ----------
    tau : float
        The follower's entropy weight (a leader's schedule may change it).
    a, b, cost_leader, cost_follower : float
        The market (:class:`games.duopoly.DuopolyMarket`).
    hidden : tuple of int
        Hidden tanh layers of the follower's policy (``()``: linear).
    init_std, min_std : float
        The follower's starting and smallest spread, in normalized units.
    leader_std : float
        The leader's fixed spread (her exploration), in normalized units.
    fast : bool
        Let the simulators use the environment's vectorized round.
    """
    market = DuopolyMarket(a, b, cost_leader, cost_follower)

    def make_env():
        return duopoly_env("parallel", a=a, b=b, cost_leader=cost_leader,
                           cost_follower=cost_follower, commitment_size=COMMITMENT_SIZE)

    def describe(leader_mean: Mean, follower_mean: Mean, x: np.ndarray) -> dict[str, float]:
        return duopoly_quantities(market, leader_mean, follower_mean, x)

    return _problem("stackelberg/duopoly-v0", make_env, COMMITMENT_SIZE, 0.0, tau, hidden,
                    init_std, min_std, leader_std, fast, describe, start=a / (2 * b))


def duopoly_dynamic_problem(tau: float = 0.05, *, a: float = 10.0, b: float = 1.0,
                            cost_leader: float = 2.0, cost_follower: float = 2.0,
                            periods: int = 8, gamma: float = 0.9, rho: float = 0.8,
                            sigma: float = 0.1, hidden: tuple[int, ...] = (),
                            init_std: float = 0.2, min_std: float = 0.02,
                            leader_std: float = 0.0667, fast: bool = True) -> SimulatedProblem:
    """``stackelberg/duopoly-dynamic-v0`` for the neural learners: ``periods`` rounds under a
    drifting demand (``rho``, ``sigma``: :mod:`games.duopoly_dynamic`), discount ``gamma``;
    the other parameters as :func:`duopoly_problem`, whose spreads in quantity units the
    defaults keep (this Box, up to ``3a / (2b)``, is 1.5 times as wide: ``init_std`` 0.2 and
    ``leader_std`` 0.0667 here are 0.3 and 0.1 there). ``describe`` reports the quantities in a
    period at the mean demand ``a_t = a`` (each period's answer is the static one at ``a_t``).
    Why the starting point and the spreads matter: docs/theory.md §9."""
    market = DuopolyMarket(a, b, cost_leader, cost_follower)

    def make_env():
        return duopoly_dynamic_env("parallel", periods, a=a, b=b, cost_leader=cost_leader,
                                   cost_follower=cost_follower, gamma=gamma, rho=rho,
                                   sigma=sigma, commitment_size=COMMITMENT_SIZE)

    def describe(leader_mean: Mean, follower_mean: Mean, x: np.ndarray) -> dict[str, float]:
        return duopoly_quantities(market, leader_mean, follower_mean, x, level=1.0)

    # both firms start at a / (2b), as in the static game (the Box's centre there): this Box,
    # up to 3a / (2b), has its centre 3a / (4b) where the follower's best response is near 0,
    # and a follower pushed out of the Box learns nothing (every quantity clips to 0)
    return _problem("stackelberg/duopoly-dynamic-v0", make_env, 1 + COMMITMENT_SIZE, gamma, tau,
                    hidden, init_std, min_std, leader_std, fast, describe, start=a / (2 * b))
