"""An incentive-design economy: a planner, n followers playing a game, linear incentives.

docs/theory.md §7.1. An :class:`IncentiveEconomy` is a followers' game (a
:class:`~stackelberg.bilevel.FollowerModel` holding their own rewards) with a planner's
:class:`~stackelberg.incentives.LinearIncentives` and a cost ``c`` per unit paid. Given the
followers' policies ``pi`` the planner's upper objective (minimized) is

    f(x, pi) = -(W(pi) - c * payments(x, pi))

with ``W`` the social welfare, the followers' own rewards summed and discounted from ``rho``
(transfers excluded: they move value between planner and followers), and ``payments`` the
expected discounted transfers the planner counts as paid (its payment map, see
:mod:`stackelberg.incentives`; taxes it collects are negative payments unless the economy
rebates them). Both are
values of the joint policy, so their gradients in the followers' logits are policy gradients
(:func:`stackelberg.nash.logit_gradient`), and the ``x`` part is the payments' own gradient at
the fixed occupancy (the kernel does not depend on ``x``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from stackelberg.bilevel import FollowerModel
from stackelberg.incentives import LinearIncentives
from stackelberg.nash import (
    NashEquilibrium,
    evaluate_profile,
    logit_gradient,
    nash_equilibrium,
)
from stackelberg.validation import finite_float

if TYPE_CHECKING:
    from stackelberg.incentive_problem import IncentiveProblem
    from stackelberg.nash_followers import NashSolver


@dataclass(frozen=True)
class IncentiveEconomy:
    """A planner's incentive-design problem over a followers' game.

    Attributes
    ----------
    name : str
        Short name (rendering, listings).
    incentives : LinearIncentives
        How the planner's ``x`` reaches the followers; ``incentives.base`` is their own game.
    payment_cost : float
        ``c >= 0``: the cost to the planner of a unit paid (and its gain per unit of tax).
    instrument_names : tuple of str
        One name per instrument (per entry of ``x``).
    state_names, action_names : tuple of str
        For rendering: one name per state, one per action level of a follower.
    """

    name: str
    incentives: LinearIncentives
    payment_cost: float
    instrument_names: tuple[str, ...]
    state_names: tuple[str, ...]
    action_names: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "payment_cost",
                           finite_float("payment_cost", self.payment_cost, nonnegative=True))
        if len(self.instrument_names) != self.incentives.x_shape[0]:
            raise ValueError("instrument_names must name every instrument")

    @property
    def base(self) -> FollowerModel:
        return self.incentives.base

    @property
    def gamma(self) -> float:
        return self.base.gamma

    @property
    def n_followers(self) -> int:
        return self.base.n_followers

    @property
    def n_states(self) -> int:
        return self.base.n_states

    @property
    def upper(self) -> NetWelfare:
        """The planner's objective, welfare net of payments."""
        return NetWelfare(self.incentives, self.payment_cost)

    def problem(self, tau: float, solver: NashSolver | None = None) -> IncentiveProblem:
        """The economy as a bilevel problem with the followers' entropy weight ``tau``."""
        from stackelberg.incentive_problem import IncentiveProblem

        return IncentiveProblem(self, tau, solver)


@dataclass(frozen=True)
class UpperValue:
    """The planner's objective at ``(x, pi)`` and its parts.

    ``objective = -(welfare - payment_cost * payments)``; ``grad_x`` and ``grad_theta`` (one array
    per follower, in its softmax logits) are its gradients.
    """

    objective: float
    welfare: float
    payments: float
    grad_x: np.ndarray
    grad_theta: tuple[np.ndarray, ...]


class NetWelfare:
    """The planner's upper objective ``f(x, pi) = -(W(pi) - c payments(x, pi))`` over a profile
    of follower policies (module docstring; docs/theory.md §7.1), with its gradients in ``x``
    and in every follower's softmax logits.

    Parameters
    ----------
    incentives : LinearIncentives
        The planner's parameterization (its ``base`` holds the followers' own rewards, whose sum
        is the welfare; its payment map says what counts as paid).
    payment_cost : float
        ``c``: the cost to the planner of a unit paid.
    """

    def __init__(self, incentives: LinearIncentives, payment_cost: float):
        self.incentives = incentives
        self.payment_cost = payment_cost

    def value(self, x: np.ndarray | None, profile: Sequence[np.ndarray],
              gradients: bool = True) -> UpperValue:
        """``f(x, pi)`` and its parts; ``x=None`` is the game without incentives (no transfers,
        no ``x`` gradient)."""
        param, c = self.incentives, self.payment_cost
        base = param.base
        transfers = np.zeros(base.r.shape[1:]) if x is None else param.paid(x).sum(axis=0)
        welfare_reward = base.r.sum(axis=0)
        ev = evaluate_profile(base, welfare_reward - c * transfers, profile, 0.0)
        welfare = float((ev.occupancy * welfare_reward).sum())
        payments = float((ev.occupancy * transfers).sum())
        if not gradients:
            return UpperValue(-ev.value, welfare, payments, np.zeros(0), ())
        grad_x = np.zeros(0) if x is None else c * param.payments_gradient(x, ev.occupancy)
        grad_theta = tuple(-logit_gradient(base, ev, profile, j) for j in range(len(profile)))
        return UpperValue(-ev.value, welfare, payments, grad_x, grad_theta)


def upper_objective(economy: IncentiveEconomy, x: np.ndarray | None,
                    profile: Sequence[np.ndarray], gradients: bool = True) -> UpperValue:
    """``f(x, pi) = -(W(pi) - c payments(x, pi))`` with its gradients (:class:`NetWelfare`);
    ``x=None`` is the economy without incentives (no transfers; no ``x`` gradient)."""
    return economy.upper.value(x, profile, gradients)


@dataclass(frozen=True)
class EquilibriumOutcome:
    """The followers' equilibrium at ``x`` and what the planner gets there (the hyper-objective)."""

    equilibrium: NashEquilibrium
    upper: UpperValue

    @property
    def net_welfare(self) -> float:
        """``W - c payments`` at the equilibrium: minus the hyper-objective."""
        return -self.upper.objective


def equilibrium_outcome(economy: IncentiveEconomy, x: np.ndarray | None, tau: float,
                        profile: Sequence[np.ndarray] | None = None, tol: float = 1e-10,
                        damping: float = 0.5, max_iter: int = 5000) -> EquilibriumOutcome:
    """Solve the followers' Nash equilibrium at ``x`` and evaluate the planner there
    (``x=None``: the economy without incentives, the baseline a planner must beat)."""
    model = economy.base if x is None else economy.incentives.followers(x)
    eq = nash_equilibrium(model, tau, profile, damping, tol, max_iter)
    return EquilibriumOutcome(eq, upper_objective(economy, x, eq.profile, gradients=False))
