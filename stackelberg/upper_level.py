"""Upper objectives ``f(x, pi)``, minimized by the leader (docs/theory.md §1, §11).

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

from stackelberg.bilevel import BackupWeights, Gradient, RewardMap
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

    def values(self, ev: JointEvaluation) -> np.ndarray:
        """``V_u(s)``, solved on the follower's factorized chain (the evaluation caches it)."""
        # two steps: the three-operand einsum takes about half as long again
        return ev.follower.solve(row_sum(ev.pi * self.reward.rewards(ev.x)))

    def value(self, ev: JointEvaluation) -> float:
        return -float(ev.mdp.rho @ ev.leader_values)

    def q_values(self, ev: JointEvaluation) -> np.ndarray:
        """``Q_u(s, a) = u_x(s, a) + gamma sum_s' P_x(s'|s, a) V_u(s')``."""
        m = ev.mdp
        S = m.rho.shape[0]
        backup = (m.P.reshape(-1, S) @ ev.leader_values).reshape(m.r.shape)
        return self.reward.rewards(ev.x) + m.gamma * backup

    def combination(self, ev: JointEvaluation, leader: float, follower: float,
                    mirror: bool = False) -> Gradient:
        """Gradient of ``leader * V_u + follower * V(x, pi)`` in ``x`` and ``theta``.

        Backups, advantages and both gradients are linear in the values, so one backup of the
        combined values carries both players' kernel terms to ``x`` (a penalized leader follows
        ``f - lam V``: ``leader = -1``, ``follower = -lam``).
        """
        # each player's terms only where its weight is not zero (V_u costs a solve)
        values = np.zeros_like(ev.follower.V)
        advantage = np.zeros_like(ev.pi)
        if leader != 0:
            values += leader * ev.leader_values
            advantage += leader * self.q_values(ev)
        if follower != 0:
            values += follower * ev.follower.V
            advantage += follower * (ev.follower.Q - ev.mdp.tau * safe_log(ev.pi))
        advantage -= values[:, None]
        occupancy = ev.occupancy_weights
        grad_x = ev.problem.pull_back(ev.x, BackupWeights(occupancy, values, (follower,)),
                                      mirror)
        if leader != 0:
            grad_x = grad_x + leader * self.reward.vjp(ev.x, occupancy, mirror)
        theta = follower_logit_gradient(ev.state_weights, ev.pi, advantage, mirror)
        return Gradient(x=grad_x, theta=theta)

    def gradient(self, ev: JointEvaluation, mirror: bool = False) -> Gradient:
        """``grad f = -grad V_u``: ``V_u``'s occupancy weights pulled back through the kernel
        and through ``u_x``, and the policy gradient with the advantage ``Q_u - V_u``."""
        return self.combination(ev, -1.0, 0.0, mirror)
