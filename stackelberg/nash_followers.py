"""The lower level with n followers playing a game: their Nash equilibrium and the Nikaido–Isoda
penalty, as one object beside :class:`stackelberg.lower_level.SoftFollower` (docs/theory.md §7.2,
§7.3, §12).

:class:`NashFollowers` is what a bilevel problem whose lower level is a game holds as its
``lower``: given the followers' model at ``x`` (a :class:`stackelberg.bilevel.FollowerModel`)
and an explicit entropy weight ``tau``, it computes the entropy-regularized Markov Nash
equilibrium by damped simultaneous best responses, the Nash gap of a profile, and the
Nikaido–Isoda penalty with its Danskin gradients. The mathematics is :mod:`stackelberg.nash`;
this object fixes the solver's settings and hands the gradients over as the core does, as
weights on the model's arrays that the parameterization's ``vjp`` carries to ``x``.

With one follower the game is the follower's MDP: the equilibrium is the soft best response,
the Nash gap is ``max_s (V* - V_pi)(s)`` and the penalty is the value penalty
``V*(x) - V(x, pi)`` (tests/test_nash_followers.py checks all three against
:class:`~stackelberg.lower_level.SoftFollower`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stackelberg.bilevel import FollowerModel
from stackelberg.nash import (
    NashEquilibrium,
    NashGap,
    PenaltyGradient,
    best_response,
    nash_equilibrium,
    nash_gap,
    ni_penalty_gradient,
)
from stackelberg.tabular import MDPSolution
from stackelberg.validation import check_fields


@dataclass(frozen=True)
class NashSolver:
    """Settings of the damped best-response iteration (:func:`stackelberg.nash.nash_equilibrium`):
    the step ``damping`` in (0, 1], the Nash-gap tolerance ``tol``, at most ``max_iter`` rounds."""

    damping: float = 0.5
    tol: float = 1e-10
    max_iter: int = 5000

    section = "lower"

    def __post_init__(self) -> None:
        check_fields(self, unit_interval=("damping",), positive=("tol",),
                     positive_int=("max_iter",))
        if self.damping == 0:
            raise ValueError("lower.damping must be in (0, 1], got 0")


class NashFollowers:
    """``n`` entropy-regularized followers playing a game (module docstring). Stateless: every
    method takes the followers' model and ``tau``."""

    def __init__(self, n_followers: int, solver: NashSolver | None = None):
        if isinstance(n_followers, bool) or not isinstance(n_followers, (int, np.integer)) \
                or n_followers < 1:
            raise ValueError(f"the number of followers must be an integer >= 1, got "
                             f"{n_followers!r}")
        self.n_followers = int(n_followers)
        self.solver = solver or NashSolver()

    def _check(self, model: FollowerModel) -> None:
        if model.n_followers != self.n_followers:
            raise ValueError(f"a lower level of {self.n_followers} followers got a model with "
                             f"{model.n_followers}")

    def uniform_profile(self, model: FollowerModel) -> tuple[np.ndarray, ...]:
        """Every follower uniform over its own actions."""
        return tuple(np.full((model.n_states, k), 1.0 / k) for k in model.action_sizes)

    def equilibrium(self, model: FollowerModel, tau: float,
                    profile: Sequence[np.ndarray] | None = None) -> NashEquilibrium:
        """The followers' equilibrium by damped best responses from ``profile`` (uniform by
        default: the followers' game may have several equilibria, and the one reached from a
        fixed start is a function of the model alone)."""
        self._check(model)
        s = self.solver
        return nash_equilibrium(model, tau, profile, s.damping, s.tol, s.max_iter)

    def best_response(self, model: FollowerModel, profile: Sequence[np.ndarray], i: int,
                      tau: float, pi0: np.ndarray | None = None) -> MDPSolution:
        """Follower ``i``'s soft best response to the others of ``profile``."""
        return best_response(model, profile, i, tau, pi0=pi0)

    def gap(self, model: FollowerModel, profile: Sequence[np.ndarray], tau: float,
            warm: Sequence[np.ndarray] | None = None) -> NashGap:
        """The Nash gap and the Nikaido–Isoda penalty of ``profile``."""
        self._check(model)
        return nash_gap(model, profile, tau, warm)

    def penalty_gradient(self, model: FollowerModel, profile: Sequence[np.ndarray], tau: float,
                         best_responses: Sequence[np.ndarray] | None = None) -> PenaltyGradient:
        """``psi(pi)`` with its Danskin gradients: ``dP``, ``dr`` on the model (for the
        parameterization's ``vjp``) and one logit gradient per follower."""
        self._check(model)
        return ni_penalty_gradient(model, profile, tau, best_responses)


__all__ = ["NashFollowers", "NashSolver"]
