"""The exact evaluation of one pair ``(x, pi)``: a cache shared by the lower level and the upper
objective (docs/theory.md §3, §12).

:class:`JointEvaluation` computes lazily and caches what several gradients share: the
follower's soft evaluation (one LU factorization of ``I - gamma P_pi`` serves values,
visitation, the upper objective's values and every adjoint solve), the visitation and the
occupancy weights. The mathematics lives in the problem's lower level
(:class:`stackelberg.lower_level.SoftFollower`) and upper objective
(:mod:`stackelberg.upper_level`); gradients in ``x`` reach the leader's variable through the
problem's parameterization (:meth:`stackelberg.problem.BilevelProblem.pull_back`).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from stackelberg.bilevel import Gradient
from stackelberg.lower_level import FollowerMDP
from stackelberg.tabular import PolicyEvaluation
from stackelberg.upper_level import ValueObjective

if TYPE_CHECKING:
    from stackelberg.problem import BilevelProblem


class JointEvaluation:
    """Exact evaluation of a leader variable ``x`` and a follower policy ``pi``.

    ``mu`` is the leader's commitment when ``x`` is one (``None`` otherwise). Pass ``follower``
    (a known :class:`stackelberg.tabular.PolicyEvaluation` of ``pi`` in this MDP) to skip the
    factorization.
    """

    def __init__(
        self,
        problem: BilevelProblem,
        x: np.ndarray,
        pi: np.ndarray,
        mdp: FollowerMDP | None = None,
        follower: PolicyEvaluation | None = None,
    ):
        self.problem = problem
        self.x = x
        self.pi = pi
        self.mdp = problem.follower_mdp(x) if mdp is None else mdp
        self.mu = self.mdp.mu
        if follower is not None:
            self.__dict__["follower"] = follower  # a known evaluation fills the cached property

    @cached_property
    def follower(self) -> PolicyEvaluation:
        return self.problem.lower.evaluate(self.mdp, self.pi)

    @cached_property
    def visitation(self) -> np.ndarray:
        """Normalized discounted state visitation ``d_pi`` from the initial distribution."""
        return self.follower.visitation(self.mdp.rho, self.mdp.gamma)

    @cached_property
    def leader_values(self) -> np.ndarray:
        """The upper objective's value function on the same chain (``V_L(s)`` in a
        Stackelberg game; no entropy term)."""
        return self.problem.upper.values(self)

    @cached_property
    def state_weights(self) -> np.ndarray:
        """``d_pi(s) / (1 - gamma)``, shared by the gradients."""
        return self.visitation / (1.0 - self.mdp.gamma)

    @cached_property
    def occupancy_weights(self) -> np.ndarray:
        """``d_pi(s) pi(a|s) / (1 - gamma)``: the weights of a value's gradient in ``x``."""
        return self.visitation[:, None] * self.pi / (1.0 - self.mdp.gamma)

    # -- scalar objectives --------------------------------------------------------------
    @property
    def follower_value(self) -> float:
        """``V(x, pi) = rho . V_pi`` (soft, with entropy weight tau)."""
        return self.problem.lower.value(self)

    @property
    def upper_objective(self) -> float:
        """``f(x, pi)`` (``-rho . V_L`` in a Stackelberg game)."""
        return self.problem.upper.value(self)

    def bellman_penalty(self) -> float:
        """``g(x, pi) = E_rho[max_q <Q_pi, q> - tau h(q) - V_pi]`` (docs/theory.md §2)."""
        return self.problem.lower.bellman_penalty(self)

    # -- gradients (docs/theory.md §3) --------------------------------------------------------
    def grad_follower_value_x(self, mirror: bool = False) -> np.ndarray:
        """The ``x`` part of :meth:`grad_follower_value` alone (the value penalty's ``pihat``
        term needs no ``theta`` part)."""
        return self.problem.pull_back(self.x, self.problem.lower.value_weights(self), mirror)

    def grad_follower_value(self, mirror: bool = False) -> Gradient:
        """Gradient of ``V(x, pi)`` in ``x`` and in the follower logits ``theta``
        (``mirror=True``: the mirror-descent directions, the logit gradients without the
        softmax factors)."""
        return Gradient(x=self.grad_follower_value_x(mirror),
                        theta=self.problem.lower.value_theta(self, mirror))

    def grad_value_combination(self, leader: float, follower: float,
                               mirror: bool = False) -> Gradient:
        """Gradient of ``leader * V_L(x, pi) + follower * V(x, pi)`` in ``x`` and ``theta``,
        ``V_L`` the upper objective's values (``f = -rho . V_L``); one backup of the combined
        values serves both (see :meth:`stackelberg.upper_level.ValueObjective.combination`)."""
        return self.problem.upper.combination(self, leader, follower, mirror)

    def grad_upper_objective(self, mirror: bool = False) -> Gradient:
        """Gradient of ``f(x, pi)`` in ``x`` and ``theta``."""
        return self.problem.upper.gradient(self, mirror)

    def grad_upper_objective_theta(self) -> np.ndarray:
        """The ``theta`` part of :meth:`grad_upper_objective` alone, bit for bit the same: an
        inner minimization over the follower's policy at a fixed ``x`` needs no ``x`` part, and
        a value objective then skips its ``x`` pull-back."""
        upper = self.problem.upper
        if isinstance(upper, ValueObjective):
            return upper.gradient_theta(self)
        return upper.gradient(self).theta

    def grad_bellman_penalty_theta(self) -> np.ndarray:
        """The ``theta`` part of :meth:`grad_bellman_penalty` alone (no pull-back to ``x``)."""
        return self.problem.lower.bellman_gradient(self)[1]

    def grad_bellman_penalty(self, mirror: bool = False) -> Gradient:
        """Closed-form gradient of the Bellman penalty
        (:meth:`stackelberg.lower_level.SoftFollower.bellman_gradient`)."""
        weights, theta = self.problem.lower.bellman_gradient(self, mirror)
        return Gradient(x=self.problem.pull_back(self.x, weights, mirror), theta=theta)
