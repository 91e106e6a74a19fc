"""The bilevel problem built from a finite Stackelberg Markov game (docs/theory.md §1–3).

The leader's variable ``x`` holds one logit per (state, leader action); the leader commits to
``mu_x(b|s) = softmax(x[s])``. The follower does not see the realized leader action, so it faces
the MDP (docs/theory.md §1, "Stackelberg Markov game reduction")

    r_x(s, a)     = sum_b mu_x(b|s) r_F(s, b, a)
    P_x(s'|s, a)  = sum_b mu_x(b|s) P(s'|s, b, a)

with entropy weight ``tau``. The upper objective is ``f(x, pi) = -V_L(mu_x, pi)``, minimized by
the leader; the hyper-objective is ``Phi(x) = f(x, pi*_x)``.

Follower policies appear in two parameterizations: as matrices ``pi[s, a]``, and, for the
gradients a leader follows, through softmax logits ``theta`` with ``pi = softmax(theta)``.
Every gradient below is closed form and vectorized; tests check each against central finite
differences and against torch autograd.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from stackelberg.model import GameModel
from stackelberg.tabular import (
    MDPSolution,
    PolicyEvaluation,
    check_tau,
    evaluate_policy,
    greedy_policy,
    row_sum,
    safe_log,
    soft_max_value,
    softmax,
    solve_mdp,
)


@dataclass(frozen=True)
class FollowerMDP:
    """The follower's MDP induced by a leader commitment ``mu[s, b]``: ``P[s, a, s']``,
    ``r[s, a]``."""

    P: np.ndarray
    r: np.ndarray
    rho: np.ndarray
    gamma: float
    tau: float
    mu: np.ndarray


@dataclass(frozen=True)
class Gradient:
    """A gradient with respect to the leader logits ``x`` and the follower logits ``theta``."""

    x: np.ndarray
    theta: np.ndarray

    def __add__(self, other: Gradient) -> Gradient:
        return Gradient(self.x + other.x, self.theta + other.theta)

    def __sub__(self, other: Gradient) -> Gradient:
        return Gradient(self.x - other.x, self.theta - other.theta)

    def __mul__(self, scale: float) -> Gradient:
        return Gradient(scale * self.x, scale * self.theta)

    __rmul__ = __mul__

    def norm(self) -> float:
        return float(np.sqrt((self.x**2).sum() + (self.theta**2).sum()))


def leader_logit_gradient(
    mu: np.ndarray, U: np.ndarray, weights: np.ndarray, mirror: bool = False
) -> np.ndarray:
    """Contract ``sum_{s,a} weights[s,a] d/dx (sum_b mu_x(b|s) U[s,b,a])`` for softmax logits.

    With ``q[s,b] = sum_a weights[s,a] U[s,b,a]`` (the gradient in the direct parameters
    ``mu[s,b]``) the result is ``mu[s,c] (q[s,c] - sum_b mu[s,b] q[s,b])``: the softmax
    Jacobian of each state's row. With ``mirror=True`` the factor ``mu[s,c]`` is left out: the
    centred direct gradient, which is the mirror-descent (KL geometry) step on the logits.
    """
    q = np.einsum("sa,sba->sb", weights, U)
    centred = q - row_sum(mu * q)[:, None]
    return centred if mirror else mu * centred


def follower_logit_gradient(
    weights: np.ndarray, pi: np.ndarray, advantage: np.ndarray, mirror: bool = False
) -> np.ndarray:
    """``weights[s] pi[s,a] advantage[s,a]``: the softmax-logit policy gradient shape
    (without the factor ``pi`` for ``mirror=True``; see :func:`leader_logit_gradient`)."""
    return weights[:, None] * (advantage if mirror else pi * advantage)


class JointEvaluation:
    """Exact evaluation of a leader commitment ``x`` and a follower policy ``pi``.

    Computes lazily and caches: the follower's soft values, the leader's values on the same
    chain (one LU factorization serves both, and the visitation), and the backups
    ``U[s,b,a] = r(s,b,a) + gamma sum_s' P(s'|s,b,a) V(s')`` of either player, each only when
    asked for (the value penalty's ``pihat`` needs neither the leader's values nor backup).
    """

    def __init__(
        self,
        problem: StackelbergProblem,
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
        m = self.mdp
        return evaluate_policy(m.P, m.r, self.pi, m.gamma, m.tau)

    @cached_property
    def visitation(self) -> np.ndarray:
        """Normalized discounted state visitation ``d_pi`` from the initial distribution."""
        return self.follower.visitation(self.mdp.rho, self.mdp.gamma)

    @cached_property
    def leader_values(self) -> np.ndarray:
        """``V_L(s)`` of the joint chain (no entropy term for the leader)."""
        model = self.problem.model
        # two steps: the three-operand einsum takes about half as long again
        r_L = row_sum(self.pi * np.einsum("sb,sba->sa", self.mu, model.leader_rewards))
        return self.follower.solve(r_L)

    def _backup(self, rewards: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``rewards + gamma P values`` on ``(s, b, a)``: one ``(S B A) x S`` matrix-vector
        product (OpenBLAS runs one two-column product for both players at about half the speed
        of two matrix-vector products once ``S`` is 100 or more)."""
        model = self.problem.model
        flat = model.transitions.reshape(-1, model.n_states) @ values
        return rewards + model.gamma * flat.reshape(rewards.shape)

    @cached_property
    def follower_backup(self) -> np.ndarray:
        return self._backup(self.problem.model.follower_rewards, self.follower.V)

    @cached_property
    def leader_backup(self) -> np.ndarray:
        return self._backup(self.problem.model.leader_rewards, self.leader_values)

    # -- scalar objectives --------------------------------------------------------------
    @property
    def follower_value(self) -> float:
        """``V(x, pi) = rho . V_pi`` (soft, with entropy weight tau)."""
        return float(self.mdp.rho @ self.follower.V)

    @property
    def upper_objective(self) -> float:
        """``f(x, pi) = -rho . V_L``."""
        return -float(self.mdp.rho @ self.leader_values)

    # -- gradients (docs/theory.md §3) --------------------------------------------------------
    def _leader_gradient(self, U: np.ndarray, weights: np.ndarray,
                         mirror: bool = False) -> np.ndarray:
        """:func:`leader_logit_gradient`, summed over states for a shared commitment."""
        return self.problem.reduce_x(leader_logit_gradient(self.mu, U, weights, mirror))

    @cached_property
    def _state_weights(self) -> np.ndarray:
        """``d_pi(s) / (1 - gamma)``, shared by the gradients."""
        return self.visitation / (1.0 - self.mdp.gamma)

    @cached_property
    def _occupancy_weights(self) -> np.ndarray:
        return self.visitation[:, None] * self.pi / (1.0 - self.mdp.gamma)

    def grad_follower_value_x(self, mirror: bool = False) -> np.ndarray:
        """The ``x`` part of :meth:`grad_follower_value` alone (the value penalty's ``pihat``
        term needs no ``theta`` part)."""
        return self._leader_gradient(self.follower_backup, self._occupancy_weights, mirror)

    def grad_follower_value(self, mirror: bool = False) -> Gradient:
        """Gradient of ``V(x, pi)`` in ``x`` and in the follower logits ``theta``
        (``mirror=True``: the mirror-descent directions, see :func:`leader_logit_gradient`)."""
        tau = self.mdp.tau
        ev = self.follower
        advantage = ev.Q - tau * safe_log(self.pi) - ev.V[:, None]
        return Gradient(
            x=self.grad_follower_value_x(mirror),
            theta=follower_logit_gradient(self._state_weights, self.pi, advantage, mirror),
        )

    def grad_value_combination(self, leader: float, follower: float,
                               mirror: bool = False) -> Gradient:
        """Gradient of ``leader * V_L(x, pi) + follower * V(x, pi)`` in ``x`` and ``theta``.

        Backups, advantages and both gradients are linear in the values, so one backup of the
        combined values serves both players (a penalized leader follows ``f - lam V``:
        ``leader = -1``, ``follower = -lam``), where :meth:`grad_upper_objective` and
        :meth:`grad_follower_value` take one each.
        """
        model, pi = self.problem.model, self.pi
        values = leader * self.leader_values + follower * self.follower.V
        U = self._backup(leader * model.leader_rewards + follower * model.follower_rewards,
                         values)
        # sum_b mu U = leader Q_L + follower Q over the follower's actions
        advantage = np.einsum("sb,sba->sa", self.mu, U) - values[:, None]
        if follower != 0:
            advantage -= (follower * self.mdp.tau) * safe_log(pi)
        return Gradient(
            x=self._leader_gradient(U, self._occupancy_weights, mirror),
            theta=follower_logit_gradient(self._state_weights, pi, advantage, mirror),
        )

    def leader_q_over_follower_actions(self) -> np.ndarray:
        """``Q_L(s, a) = sum_b mu(b|s) U_L(s, b, a)``: the leader's value of each follower
        action."""
        return np.einsum("sb,sba->sa", self.mu, self.leader_backup)

    def grad_upper_objective(self, mirror: bool = False) -> Gradient:
        """Gradient of ``f(x, pi) = -V_L(mu_x, pi)`` in ``x`` and ``theta``."""
        advantage = self.leader_q_over_follower_actions() - self.leader_values[:, None]
        return Gradient(
            x=-self._leader_gradient(self.leader_backup, self._occupancy_weights, mirror),
            theta=-follower_logit_gradient(self._state_weights, self.pi, advantage, mirror),
        )

    def bellman_penalty(self) -> float:
        """``g(x, pi) = E_rho[max_q <Q_pi, q> - tau h(q) - V_pi]`` (docs/theory.md §2)."""
        ev = self.follower
        gap = soft_max_value(ev.Q, self.mdp.tau) - ev.V
        return float(self.mdp.rho @ gap)

    def grad_bellman_penalty(self, mirror: bool = False) -> Gradient:
        """Closed-form gradient of the Bellman penalty.

        With ``sigma = softmax(Q_pi / tau)`` (the envelope of the inner max),
        ``dg = E_{s~rho, a~sigma}[dQ_pi(s,a)] - rho . dV_pi``. Writing
        ``dQ_pi = dr + gamma dP V_pi + gamma P dV_pi`` collects the ``dV_pi`` terms into a signed
        start vector ``nu = gamma P_sigma^T rho - rho``, whose occupancy
        ``dtilde = (I - gamma P_pi)^{-T} nu`` weights the usual policy-gradient terms.
        """
        m, ev = self.mdp, self.follower
        sigma = greedy_policy(ev.Q, m.tau)
        # P_sigma^T rho as one product with P's (s, a) rows, without forming P_sigma
        S = m.rho.shape[0]
        nu = m.gamma * ((m.rho[:, None] * sigma).reshape(-1) @ m.P.reshape(-1, S)) - m.rho
        dtilde = ev.solve_transposed(nu)
        weights_x = m.rho[:, None] * sigma + dtilde[:, None] * self.pi
        advantage = ev.Q - m.tau * safe_log(self.pi) - ev.V[:, None]
        return Gradient(
            x=self._leader_gradient(self.follower_backup, weights_x, mirror),
            theta=follower_logit_gradient(dtilde, self.pi, advantage, mirror),
        )


@dataclass(frozen=True)
class HyperGradient:
    """The hyper-objective ``Phi(x) = f(x, pi*_x)``, its exact gradient, and ``pi*_x``."""

    value: float
    grad: np.ndarray
    best_response: np.ndarray


class StackelbergProblem:
    """The bilevel problem ``min_x f(x, pi*_x)`` of a finite Stackelberg Markov game.

    Parameters
    ----------
    model : GameModel
        The exact game.
    tau : float
        Entropy weight of the follower (``tau > 0`` makes ``pi*_x`` unique and smooth in ``x``).
    """

    n_followers = 1

    #: How many recent follower MDPs, best responses and policy evaluations are remembered.
    MEMORY = 4

    def __init__(self, model: GameModel, tau: float):
        self.model = model
        self.tau = check_tau(tau)
        # In a match the follower solves best_response(x_k), then the leader evaluates the same
        # policy at the same x, and the metrics solve best_response again: remembering the last
        # few answers (keyed by the arrays' bytes) saves those factorizations; likewise the
        # follower's MDP at x_k, which the follower and the leader both need. Pure functions of
        # their arguments, so remembering them changes no result.
        self._mdps: dict[bytes, FollowerMDP] = {}
        self._best_responses: dict[bytes, tuple[float, MDPSolution]] = {}
        self._evaluations: dict[tuple[bytes, bytes], MDPSolution] = {}
        self._last_policy: tuple[tuple[str, bytes], np.ndarray] | None = None

    def set_tau(self, tau: float) -> None:
        """Change the follower's entropy weight (a leader with a decaying schedule, Zeng et al.
        2026, RAC); forgets the remembered answers, which belong to the old weight."""
        tau = check_tau(tau)
        if tau != self.tau:
            self.tau = tau
            self.forget()

    def forget(self) -> None:
        """Drop every remembered answer.

        A remembered best response is not a pure function of its ``x``: it carries the warm
        start and the predicted stop of the call that made it, and a later call at the same
        ``x`` returns it as it is. So a match starts with an empty memory (what ran on this
        problem before must not change its numbers), and an observer works on a
        :meth:`detached` copy.
        """
        self._mdps.clear()
        self._best_responses.clear()
        self._evaluations.clear()

    def detached(self) -> StackelbergProblem:
        """The same problem (model, ``tau``) with its own, empty memory.

        What is computed on the copy never reaches this problem's remembered answers (warm
        starts, predicted stops, evaluations): the exact metrics of a match solve on a detached
        copy, so that watching a match cannot change what its leader and followers see.
        """
        twin = copy.copy(self)
        twin._mdps, twin._best_responses, twin._evaluations = {}, {}, {}
        return twin

    def _remember(self, table: dict, key, value) -> None:
        if len(table) >= self.MEMORY:
            table.pop(next(iter(table)))
        table[key] = value

    @property
    def x_shape(self) -> tuple[int, int]:
        """``(S, B)``, or ``(1, B)`` when the game has a shared commitment."""
        rows = 1 if self.model.shared_commitment else self.model.n_states
        return (rows, self.model.n_leader_actions)

    @property
    def policy_shape(self) -> tuple[int, int]:
        return (self.model.n_states, self.model.n_follower_actions)

    def initial_x(self) -> np.ndarray:
        """Zero logits: the uniform leader policy."""
        return np.zeros(self.x_shape)

    def leader_policy(self, x: np.ndarray) -> np.ndarray:
        """``mu_x = softmax(x)`` row by row, as a read-only ``(S, B)`` array (a shared
        commitment's one row is repeated for every state).

        The last answer is remembered (by ``x``'s value): a sample-based match asks for the
        same commitment several times per iteration (the follower's batch, the leader's chains
        and estimates). A pure function of ``x``, so remembering it changes no number.
        """
        if x.shape != self.x_shape:
            raise ValueError(f"leader variable x must have shape {self.x_shape}, got {x.shape}")
        key = (x.dtype.str, x.tobytes())
        if self._last_policy is not None and self._last_policy[0] == key:
            return self._last_policy[1]
        mu = softmax(x, axis=1)
        if self.model.shared_commitment:
            mu = np.repeat(mu, self.model.n_states, axis=0)
        mu.flags.writeable = False
        self._last_policy = (key, mu)
        return mu

    def reduce_x(self, per_state: np.ndarray) -> np.ndarray:
        """Map a per-state quantity on ``x``'s rows (shape ``(S, ...)``) to ``x``'s shape: the
        identity, or the sum over states for a shared commitment (the chain rule, since every
        state's row is the same variable)."""
        if self.model.shared_commitment:
            return per_state.sum(axis=0, keepdims=True)
        return per_state

    def follower_mdp(self, x: np.ndarray) -> FollowerMDP:
        """The follower's MDP ``M_tau(x)`` under the leader commitment ``mu_x``.

        Remembered for the last few ``x`` (by value); its arrays are read-only, since callers
        share them.
        """
        key = x.tobytes()
        known = self._mdps.get(key)
        if known is not None:
            return known
        mu = self.leader_policy(x)
        m = self.model
        S, B, A = m.leader_rewards.shape
        # sum_b mu[s,b] P[s,b,a,s'] as S batched (1 x B) @ (B x A S) products (BLAS, not einsum)
        P_x = np.matmul(mu[:, None, :], m.transitions.reshape(S, B, A * S)).reshape(S, A, S)
        r_x = np.einsum("sb,sba->sa", mu, m.follower_rewards)
        for array in (P_x, r_x, mu):
            array.flags.writeable = False
        mdp = FollowerMDP(P=P_x, r=r_x, rho=m.initial, gamma=m.gamma, tau=self.tau, mu=mu)
        self._remember(self._mdps, key, mdp)
        return mdp

    def mean_reward_gradient(
        self, x: np.ndarray, rewards: np.ndarray, states: np.ndarray, actions: np.ndarray
    ) -> np.ndarray:
        """Sample mean of ``grad_x sum_b mu_x(b|s) R(s, b, a)`` over pairs ``(s, a)``.

        For a reward tensor ``R[s, b, a]`` (the follower's or the leader's), the gradient of the
        induced reward in the softmax logits of row ``s`` is
        ``mu(c|s) (R(s, c, a) - sum_b mu(b|s) R(s, b, a))``. With ``(s, a)`` drawn from a
        policy's discounted visitation, the mean divided by ``1 - gamma`` is an unbiased estimate
        of ``grad_x`` of that policy's value when the transitions do not depend on ``x``
        (docs/theory.md §4, RAC's Hessian-free estimate).
        """
        total = np.zeros((self.model.n_states, self.model.n_leader_actions))
        np.add.at(total, states, self.reward_gradients(x, rewards, states, actions))
        return self.reduce_x(total) / len(states)

    def reward_gradients(
        self, x: np.ndarray, rewards: np.ndarray, states: np.ndarray, actions: np.ndarray
    ) -> np.ndarray:
        """``grad sum_b mu_x(b|s) R(s, b, a)`` in the logits of ``s``'s row, for every pair:
        ``mu(c|s) (R(s, c, a) - sum_b mu(b|s) R(s, b, a))``, shape ``(n, B)``."""
        mu = self.leader_policy(x)[states]  # (n, B)
        r = rewards[states, :, actions]  # (n, B)
        return mu * (r - (mu * r).sum(axis=1, keepdims=True))

    def evaluate(
        self, x: np.ndarray, pi: np.ndarray, mdp: FollowerMDP | None = None
    ) -> JointEvaluation:
        """Exact evaluation of ``(x, pi)``; see :class:`JointEvaluation`. Pass ``mdp`` (the
        result of :meth:`follower_mdp` for this ``x``) to share it between evaluations."""
        known = self._evaluations.get((x.tobytes(), pi.tobytes()))
        follower = None if known is None else known.evaluation
        return JointEvaluation(self, x, pi, mdp, follower=follower)

    def best_response(
        self, x: np.ndarray, pi0: np.ndarray | None = None, tol: float = 1e-12
    ) -> MDPSolution:
        """The follower's exact (soft) best response ``pi*_x`` by policy iteration.

        A best response to the same ``x`` found recently to the same or a finer tolerance is
        returned as it is. A warm start ``pi0`` that is (the very array of) a remembered best
        response to another ``x`` starts from that answer's values instead (``V0`` of
        :func:`solve_mdp`: one evaluation fewer), and policy iteration stops on its prediction
        of the next policy change (``predict``): the returned policy is evaluated only when
        asked for (the Bellman-penalty leader never asks).
        """
        key = x.tobytes()
        known = self._best_responses.get(key)
        if known is not None and known[0] <= tol:
            return known[1]
        # identity, not equality: a follower passes back the array it was given, and a stale
        # warm start would only cost iterations
        V0 = next((s.last.V for _, s in self._best_responses.values() if s.pi is pi0), None)
        m = self.follower_mdp(x)
        solution = solve_mdp(m.P, m.r, m.gamma, m.tau, pi0=pi0, tol=tol, V0=V0, predict=True)
        self._remember(self._best_responses, key, (tol, solution))
        self._remember(self._evaluations, (key, solution.pi.tobytes()), solution)
        return solution

    def value_penalty(self, x: np.ndarray, pi: np.ndarray) -> float:
        """``p(x, pi) = V*(x) - V(x, pi) >= 0`` (docs/theory.md §2)."""
        star = self.best_response(x, pi0=pi)
        return float(self.model.initial @ (star.V - self.evaluate(x, pi).follower.V))

    def penalized_response(
        self, x: np.ndarray, lam: float, pi0: np.ndarray | None = None, tol: float = 1e-10
    ) -> MDPSolution:
        """``argmin_pi f(x, pi) + lam * p(x, pi)`` for the value penalty, exactly.

        ``F_lam = -V_L(pi) + lam V*(x) - lam V(x, pi)``, and ``V(x, pi) + V_L(pi) / lam`` is the
        soft value of ``pi`` in the follower's MDP with reward ``r_x + r_L,x / lam`` (both values
        are linear in the same discounted occupancy). So the penalized policy that minimizes
        ``F_lam(x, .)`` is the soft-optimal policy of that MDP: one policy-iteration solve.
        """
        if not lam > 0:
            raise ValueError(f"the penalty weight must be > 0, got {lam!r}")
        m = self.follower_mdp(x)
        r_L = np.einsum("sb,sba->sa", m.mu, self.model.leader_rewards)
        return solve_mdp(m.P, m.r + r_L / lam, m.gamma, m.tau, pi0=pi0, tol=tol)

    def hyper_objective(self, x: np.ndarray, pi0: np.ndarray | None = None) -> float:
        """``Phi(x) = f(x, pi*_x)``."""
        pi_star = self.best_response(x, pi0=pi0).pi
        return self.evaluate(x, pi_star).upper_objective

    def hypergradient(self, x: np.ndarray, pi_star: np.ndarray | None = None) -> HyperGradient:
        """Exact ``grad Phi(x)`` by implicit differentiation of the soft Bellman fixed point.

        docs/theory.md §3: ``dQ*/dx = (I - gamma P_x Pi*)^{-1} (dr_x/dx + gamma (dP_x/dx) V*)`` and
        ``dpi*/dx = (1/tau) pi* (dQ*/dx - E_pi* dQ*/dx)``. Instead of forming the
        ``(S A) x (S B)`` Jacobian we solve the adjoint system: with
        ``g = df/dpi`` and ``w = (1/tau) pi* (g - E_pi* g)``, the push-through identity
        ``(I - gamma P Pi)^{-1} = I + gamma P (I - gamma P_pi)^{-1} Pi`` reduces the adjoint to
        one transposed ``S x S`` solve: ``y = (I - gamma P_pi)^{-T} P^T w``,
        ``u = w + gamma y pi*``, and ``grad Phi = grad_x f + u . (dr_x/dx + gamma dP_x/dx V*)``.

        Parameters
        ----------
        x : array (S, B)
        pi_star : array (S, A), optional
            A best response to use (e.g. a follower's estimate); computed exactly if omitted.
        """
        if self.tau <= 0:
            raise ValueError(
                "the exact hypergradient needs tau > 0 (a unique, differentiable best response)"
            )
        if pi_star is None:
            pi_star = self.best_response(x).pi
        ev = self.evaluate(x, pi_star)
        m, gamma = ev.mdp, self.model.gamma
        df_dpi = -ev.visitation[:, None] * ev.leader_q_over_follower_actions() / (1 - gamma)
        w = pi_star * (df_dpi - (pi_star * df_dpi).sum(axis=1, keepdims=True)) / self.tau
        y = ev.follower.solve_transposed(np.einsum("sa,sat->t", w, m.P))
        u = w + gamma * y[:, None] * pi_star
        grad = ev.grad_upper_objective().x + ev._leader_gradient(ev.follower_backup, u)
        return HyperGradient(value=ev.upper_objective, grad=grad, best_response=pi_star)
