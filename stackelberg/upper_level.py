"""Upper objectives ``f(x, pi)``, minimized by the leader (docs/theory.md §1, §12).

An upper objective (:class:`UpperObjective`) gives ``f`` at an exact evaluation of ``(x, pi)``
and its gradients in ``x`` and in the follower's logits ``theta``. :class:`ValueObjective` is
the one every game of the package uses: ``f = -rho . V_u``, minus the (unregularized) value of an
``x``-dependent reward ``u_x(s, a)`` on the followers' own chain. For a Stackelberg game ``u_x``
is the leader's reward under its commitment (``f = -V_L``); for a planner it is welfare net of
payments. ``f`` depends on ``x`` twice, through ``u_x`` (a :class:`stackelberg.bilevel.RewardMap`)
and through the followers' kernel ``P_x`` (the parameterization).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from stackelberg.bilevel import BackupWeights, CoupledRewardMap, Gradient, RewardMap
from stackelberg.lower_level import follower_logit_gradient
from stackelberg.tabular import row_sum, safe_log

if TYPE_CHECKING:
    from stackelberg.evaluation import JointEvaluation


@runtime_checkable
class UpperObjective(Protocol):
    """``f(x, pi)`` with its gradients (the leader minimizes ``f``)."""

    def value(self, ev: JointEvaluation) -> float:
        """``f`` at the evaluation's ``(x, pi)``."""

    def gradient(self, ev: JointEvaluation, mirror: bool = False) -> Gradient:
        """``grad f`` in ``x`` and ``theta`` (``mirror``: the mirror-descent directions)."""


class ValueObjective:
    """``f(x, pi) = -rho . V_u``, ``V_u = (I - gamma P_pi)^{-1} sum_a pi u_x`` (no entropy term:
    it is the leader's value, not the follower's).

    Parameters
    ----------
    reward : RewardMap
        ``x -> u_x[s, a]`` and its vector-Jacobian product.
    """

    def __init__(self, reward: RewardMap):
        self.reward = reward
        # checked once: a runtime protocol check costs microseconds on every call
        self._coupled = isinstance(reward, CoupledRewardMap)

    def values(self, ev: JointEvaluation) -> np.ndarray:
        """``V_u(s)``, solved on the follower's factorized chain (the evaluation caches it)."""
        # two steps: the three-operand einsum takes about half as long again
        return ev.follower.solve(row_sum(ev.pi * self.reward.rewards(ev.x)))

    def value(self, ev: JointEvaluation) -> float:
        return -float(ev.mdp.rho @ ev.leader_values)

    def combination(self, ev: JointEvaluation, leader: float, follower: float,
                    mirror: bool = False) -> Gradient:
        """Gradient of ``leader * V_u + follower * V(x, pi)`` in ``x`` and ``theta``.

        Backups, advantages and both gradients are linear in the values, so one backup of the
        combined values ``leader V_u + follower V_pi`` serves both players (a penalized leader
        follows ``f - lam V``: ``leader = -1``, ``follower = -lam``): with
        ``B = leader u_x + follower r_x + gamma P_x (leader V_u + follower V_pi)`` and the
        occupancy weights ``w``, the ``x`` part is the gradient of ``sum w B`` and the ``theta``
        part the policy gradient with the advantage ``B - values - follower tau log pi``.
        A :class:`stackelberg.bilevel.CoupledRewardMap` computes both in one pass.
        """
        values = self._combined_values(ev, leader, follower)
        weights = BackupWeights(ev.occupancy_weights, values, (follower,))
        if self._coupled:
            grad_x, backup = self.reward.backup_gradient(ev.x, weights, leader, mirror)
        else:
            grad_x = ev.problem.pull_back(ev.x, weights, mirror)
            if leader != 0:
                grad_x = grad_x + leader * self.reward.vjp(ev.x, weights.weights, mirror)
            backup = self._pair_backup(ev, leader, follower, values)
        return Gradient(x=grad_x, theta=self._theta(ev, follower, values, backup, mirror))

    def combination_theta(self, ev: JointEvaluation, leader: float, follower: float,
                          mirror: bool = False) -> np.ndarray:
        """The ``theta`` part of :meth:`combination` alone, computed by the same operations
        (so bit for bit the same): an inner minimization over the follower's policy at a fixed
        ``x`` (the Bellman penalty's L-BFGS) needs no ``x`` part."""
        values = self._combined_values(ev, leader, follower)
        if self._coupled:
            backup = self.reward.mixed_backup(ev.x, values, leader, follower)
        else:
            backup = self._pair_backup(ev, leader, follower, values)
        return self._theta(ev, follower, values, backup, mirror)

    @staticmethod
    def _combined_values(ev: JointEvaluation, leader: float, follower: float) -> np.ndarray:
        # each player's terms only where its weight is not zero (V_u costs a solve)
        if leader != 0 and follower != 0:
            return leader * ev.leader_values + follower * ev.follower.V
        if leader != 0:
            return leader * ev.leader_values
        return follower * ev.follower.V

    def _pair_backup(self, ev: JointEvaluation, leader: float, follower: float,
                     values: np.ndarray) -> np.ndarray:
        """``leader u_x + follower r_x + gamma P_x values`` on the follower's pairs."""
        m = ev.mdp
        backup = m.gamma * (m.P.reshape(-1, m.rho.shape[0]) @ values).reshape(m.r.shape)
        if leader != 0:
            backup += leader * self.reward.rewards(ev.x)
        if follower != 0:
            backup += follower * m.r
        return backup

    @staticmethod
    def _theta(ev: JointEvaluation, follower: float, values: np.ndarray, backup: np.ndarray,
               mirror: bool) -> np.ndarray:
        advantage = backup - values[:, None]
        if follower != 0:
            advantage -= (follower * ev.mdp.tau) * safe_log(ev.pi)
        return follower_logit_gradient(ev.state_weights, ev.pi, advantage, mirror)

    def gradient(self, ev: JointEvaluation, mirror: bool = False) -> Gradient:
        """``grad f = -grad V_u``: ``V_u``'s occupancy weights pulled back through the kernel
        and through ``u_x``, and the policy gradient with the advantage ``Q_u - V_u``
        (:meth:`combination` with the weights ``-1`` and ``0``)."""
        return self.combination(ev, -1.0, 0.0, mirror)

    def gradient_theta(self, ev: JointEvaluation, mirror: bool = False) -> np.ndarray:
        """The ``theta`` part of :meth:`gradient` alone (:meth:`combination_theta`)."""
        return self.combination_theta(ev, -1.0, 0.0, mirror)
