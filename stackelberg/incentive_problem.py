"""An incentive-design economy as a bilevel problem: linear incentives, n followers playing a
game, welfare net of payments (docs/theory.md §7, §12).

:class:`IncentiveProblem` is the :class:`stackelberg.problem.BilevelProblem` whose three objects
are the planner's :class:`stackelberg.incentives.LinearIncentives` (how ``x`` reaches the
followers), :class:`stackelberg.nash_followers.NashFollowers` (the lower level: the followers'
entropy-regularized Nash equilibrium, Nash gap and Nikaido–Isoda penalty) and
:class:`stackelberg.economy.NetWelfare` (the upper objective). The hyper-objective is
``Phi(x) = f(x, pi*_x)`` at the equilibrium reached from the uniform profile.

Its lower level is a game, so the single-follower methods of the base class (``follower_mdp``,
``evaluate``, ``best_response``) do not apply; the methods below take a profile, one policy per
follower. The entropy weight is the problem's ``tau``, which the coordinator may change
(:meth:`set_tau`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stackelberg.bilevel import FollowerModel
from stackelberg.economy import EquilibriumOutcome, IncentiveEconomy, NetWelfare, UpperValue
from stackelberg.nash import NashEquilibrium, NashGap, PenaltyGradient
from stackelberg.nash_followers import NashFollowers, NashSolver
from stackelberg.problem import BilevelProblem


class IncentiveProblem(BilevelProblem):
    """``min_x f(x, pi*_x)``: a planner's incentives over n followers playing a game (module
    docstring).

    Parameters
    ----------
    economy : IncentiveEconomy
        The followers' game, the planner's incentives and payment cost, and the names for
        listings and plots.
    tau : float
        The followers' entropy weight (> 0).
    solver : NashSolver, optional
        Settings of the equilibrium solver.
    """

    def __init__(self, economy: IncentiveEconomy, tau: float, solver: NashSolver | None = None):
        super().__init__(economy.incentives, NetWelfare(economy.incentives,
                                                        economy.payment_cost), tau,
                         lower=NashFollowers(economy.n_followers, solver))
        self.economy = economy
        self._equilibria: dict[bytes, NashEquilibrium] = {}

    # -- the problem's data --------------------------------------------------------------------
    @property
    def x_shape(self) -> tuple[int, ...]:
        return self.parameterization.x_shape

    @property
    def gamma(self) -> float:
        return self.economy.gamma

    @property
    def initial(self) -> np.ndarray:
        """The followers' initial state distribution ``rho``."""
        return self.economy.base.rho

    def initial_x(self) -> np.ndarray:
        """The parameterization's neutral incentive."""
        return self.parameterization.initial_x()

    def followers(self, x: np.ndarray) -> FollowerModel:
        """The followers' model at ``x`` (their rewards plus the transfers)."""
        return self.parameterization.followers(x)

    def uniform_profile(self) -> tuple[np.ndarray, ...]:
        return self.lower.uniform_profile(self.economy.base)

    # -- remembered answers -------------------------------------------------------------------
    def forget(self) -> None:
        super().forget()
        self._equilibria.clear()

    def detached(self) -> IncentiveProblem:
        twin = super().detached()
        twin._equilibria = {}
        return twin

    # -- the lower level ----------------------------------------------------------------------
    def equilibrium(self, x: np.ndarray) -> NashEquilibrium:
        """The followers' equilibrium at ``x``, from the uniform profile (a function of ``x``
        and ``tau`` alone, so it is remembered)."""
        key = x.tobytes()
        known = self._equilibria.get(key)
        if known is None:
            known = self.lower.equilibrium(self.followers(x), self.tau)
            self._remember(self._equilibria, key, known)
        return known

    def nash_gap(self, x: np.ndarray, profile: Sequence[np.ndarray]) -> NashGap:
        """The Nash gap and Nikaido–Isoda penalty of ``profile`` at ``x``."""
        return self.lower.gap(self.followers(x), profile, self.tau)

    def penalty_gradient(self, x: np.ndarray, profile: Sequence[np.ndarray],
                         best_responses: Sequence[np.ndarray] | None = None
                         ) -> tuple[PenaltyGradient, np.ndarray]:
        """``psi(x, pi)`` with its Danskin gradients, and its gradient in ``x`` (the model
        weights pulled back through the parameterization)."""
        ni = self.lower.penalty_gradient(self.followers(x), profile, self.tau, best_responses)
        return ni, self.parameterization.vjp(x, ni.dP, ni.dr)

    # -- the upper level ----------------------------------------------------------------------
    def upper_value(self, x: np.ndarray | None, profile: Sequence[np.ndarray],
                    gradients: bool = True) -> UpperValue:
        """``f(x, pi)`` and its parts (``x=None``: no incentives)."""
        return self.upper.value(x, profile, gradients)

    def hyper_objective(self, x: np.ndarray, pi0: np.ndarray | None = None) -> float:
        """``Phi(x) = f(x, pi*_x)`` at the equilibrium from the uniform profile."""
        return self.upper_value(x, self.equilibrium(x).profile, gradients=False).objective

    def outcome(self, x: np.ndarray | None) -> EquilibriumOutcome:
        """The equilibrium at ``x`` and what the planner gets there (``x=None``: the game
        without incentives, the baseline a planner must beat)."""
        if x is None:
            eq = self.lower.equilibrium(self.economy.base, self.tau)
        else:
            eq = self.equilibrium(x)
        return EquilibriumOutcome(eq, self.upper_value(x, eq.profile, gradients=False))

    def levels(self, x: np.ndarray) -> dict[str, float]:
        """The instrument levels at ``x``, by name."""
        return dict(zip(self.economy.instrument_names,
                        map(float, self.parameterization.levels(x)), strict=True))
