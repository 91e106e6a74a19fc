"""The lower level with one follower: its soft best response and penalties (docs/theory.md §2, §3,
§12).

Given the follower's model at ``x`` (:class:`FollowerMDP`, the ``n = 1`` case of
:class:`stackelberg.bilevel.FollowerModel` with the entropy weight ``tau``), :class:`SoftFollower`
computes the soft best response, the value and Bellman penalties, and their gradients. A
gradient comes in two parts: in the follower's softmax logits ``theta`` (an array), and in ``x``
as *weights on the model's arrays* (:class:`stackelberg.bilevel.BackupWeights`), which any
parameterization's vector-Jacobian product carries to ``x``. The exact hypergradient's adjoint
(:meth:`SoftFollower.hypergradient_weights`) is handed over the same way.

The methods read the exact evaluation of ``(x, pi)`` they are given
(:class:`stackelberg.evaluation.JointEvaluation`, which caches the factorized policy evaluation
and the visitation), so no linear system is solved twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from stackelberg.bilevel import BackupWeights, FollowerModel
from stackelberg.tabular import (
    MDPSolution,
    PolicyEvaluation,
    evaluate_policy,
    greedy_policy,
    safe_log,
    soft_max_value,
    solve_mdp,
)

if TYPE_CHECKING:
    from stackelberg.evaluation import JointEvaluation


@dataclass(frozen=True)
class FollowerMDP:
    """The follower's MDP at one leader variable: ``P[s, a, s']``, ``r[s, a]``, the entropy
    weight ``tau``, and, for a leader commitment, ``mu[s, b]`` (None otherwise)."""

    P: np.ndarray
    r: np.ndarray
    rho: np.ndarray
    gamma: float
    tau: float
    mu: np.ndarray | None = None

    @classmethod
    def of(cls, model: FollowerModel, tau: float, mu: np.ndarray | None = None) -> FollowerMDP:
        """The single follower's MDP of ``model`` (which must have one follower)."""
        if model.n_followers != 1:
            raise ValueError(
                f"a single-follower lower level needs a model with one follower, got "
                f"{model.n_followers}"
            )
        return cls(P=model.P, r=model.r[0], rho=model.rho, gamma=model.gamma, tau=tau, mu=mu)


def follower_logit_gradient(
    weights: np.ndarray, pi: np.ndarray, advantage: np.ndarray, mirror: bool = False
) -> np.ndarray:
    """``weights[s] pi[s,a] advantage[s,a]``: the softmax-logit policy gradient shape
    (without the factor ``pi`` for ``mirror=True``, the mirror-descent direction)."""
    return weights[:, None] * (advantage if mirror else pi * advantage)


class SoftFollower:
    """One entropy-regularized follower: ``max_pi V(x, pi)`` in the MDP ``M_tau(x)``
    (docs/theory.md §1-§3). Stateless: every method takes the MDP (or an evaluation on it)."""

    n_followers = 1

    def evaluate(self, mdp: FollowerMDP, pi: np.ndarray) -> PolicyEvaluation:
        """Exact soft evaluation of ``pi``: values and a factorized ``I - gamma P_pi``."""
        return evaluate_policy(mdp.P, mdp.r, pi, mdp.gamma, mdp.tau)

    def best_response(self, mdp: FollowerMDP, pi0: np.ndarray | None = None,
                      tol: float = 1e-12, V0: np.ndarray | None = None) -> MDPSolution:
        """``pi*_x`` by soft policy iteration, stopping on its predicted next change
        (:func:`stackelberg.tabular.solve_mdp`)."""
        return solve_mdp(mdp.P, mdp.r, mdp.gamma, mdp.tau, pi0=pi0, tol=tol, V0=V0,
                         predict=True)

    def value(self, ev: JointEvaluation) -> float:
        """``V(x, pi) = rho . V_pi`` (soft)."""
        return float(ev.mdp.rho @ ev.follower.V)

    def advantage(self, ev: JointEvaluation) -> np.ndarray:
        """``Q_pi - tau log pi - V_pi``: the soft advantage in the logit gradients."""
        f = ev.follower
        return f.Q - ev.mdp.tau * safe_log(ev.pi) - f.V[:, None]

    # -- the value V(x, pi) (docs/theory.md §3) -----------------------------------------------
    def value_weights(self, ev: JointEvaluation) -> BackupWeights:
        """``grad_x V(x, pi)`` as weights on the model: the occupancy
        ``d_pi(s) pi(a|s) / (1 - gamma)`` on the backups of the follower's reward and values."""
        return BackupWeights(ev.occupancy_weights, ev.follower.V)

    def value_theta(self, ev: JointEvaluation, mirror: bool = False) -> np.ndarray:
        """``grad_theta V(x, pi) = d_pi(s) pi(a|s) (Q - tau log pi - V)(s,a) / (1 - gamma)``."""
        return follower_logit_gradient(ev.state_weights, ev.pi, self.advantage(ev), mirror)

    # -- the Bellman penalty g(x, pi) (docs/theory.md §2) -------------------------------------
    def bellman_penalty(self, ev: JointEvaluation) -> float:
        """``g(x, pi) = E_rho[max_q <Q_pi, q> - tau h(q) - V_pi]``."""
        gap = soft_max_value(ev.follower.Q, ev.mdp.tau) - ev.follower.V
        return float(ev.mdp.rho @ gap)

    def bellman_gradient(self, ev: JointEvaluation,
                         mirror: bool = False) -> tuple[BackupWeights, np.ndarray]:
        """Closed-form gradient of the Bellman penalty: the ``x`` part as weights on the model,
        and the ``theta`` part.

        With ``sigma = softmax(Q_pi / tau)`` (the envelope of the inner max),
        ``dg = E_{s~rho, a~sigma}[dQ_pi(s,a)] - rho . dV_pi``. Writing
        ``dQ_pi = dr + gamma dP V_pi + gamma P dV_pi`` collects the ``dV_pi`` terms into a signed
        start vector ``nu = gamma P_sigma^T rho - rho``, whose occupancy
        ``dtilde = (I - gamma P_pi)^{-T} nu`` weights the usual policy-gradient terms.
        """
        m, f = ev.mdp, ev.follower
        sigma = greedy_policy(f.Q, m.tau)
        # P_sigma^T rho as one product with P's (s, a) rows, without forming P_sigma
        S = m.rho.shape[0]
        nu = m.gamma * ((m.rho[:, None] * sigma).reshape(-1) @ m.P.reshape(-1, S)) - m.rho
        dtilde = f.solve_transposed(nu)
        weights_x = m.rho[:, None] * sigma + dtilde[:, None] * ev.pi
        theta = follower_logit_gradient(dtilde, ev.pi, self.advantage(ev), mirror)
        return BackupWeights(weights_x, f.V), theta

    # -- the exact hypergradient (docs/theory.md §3, §12) -------------------------------------
    def hypergradient_weights(self, ev: JointEvaluation, f_theta: np.ndarray) -> BackupWeights:
        """The adjoint of the soft Bellman fixed point at ``pi* = ev.pi``: weights ``u`` on the
        model such that ``grad Phi(x) = grad_x f + vjp(u)``.

        ``f_theta`` is ``grad_theta f`` at ``pi*`` (softmax logits), i.e. ``pi* (g - E_pi* g)``
        for the direct gradient ``g = df/dpi``; with ``dpi*/dx = (1/tau) pi* (dQ*/dx -
        E_pi* dQ*/dx)`` the chain rule puts the weight ``w = f_theta / tau`` on ``dQ*/dx``, and
        ``dQ*/dx = (I - gamma P_x Pi*)^{-1} (dr_x/dx + gamma (dP_x/dx) V*)``. The push-through
        identity ``(I - gamma P Pi)^{-1} = I + gamma P (I - gamma P_pi)^{-1} Pi`` reduces the
        adjoint to one transposed ``S x S`` solve: ``y = (I - gamma P_pi)^{-T} P^T w``,
        ``u = w + gamma y pi*``, the weights on the backups ``r_x + gamma P_x V*``.
        """
        m, pi_star = ev.mdp, ev.pi
        w = f_theta / m.tau
        y = ev.follower.solve_transposed(np.einsum("sa,sat->t", w, m.P))
        u = w + m.gamma * y[:, None] * pi_star
        return BackupWeights(u, ev.follower.V)
