"""Exact tabular mathematics of an entropy-regularized MDP (REFERENCE §1).

Pure functions on numpy arrays. An MDP here is ``P[s, a, s']`` (shape ``(S, A, S)``),
``r[s, a]``, a discount ``gamma`` and an entropy weight ``tau >= 0``; a policy ``pi[s, a]`` is
row-stochastic. With ``h(p) = sum_a p_a log p_a``:

    V_pi = (I - gamma P_pi)^{-1} (r_pi - tau h(pi))
    Q_pi = r + gamma P V_pi
    d_pi = (1 - gamma) rho^T (I - gamma P_pi)^{-1}

Every linear solve goes through one LU factorization of ``I - gamma P_pi`` per policy
(:class:`PolicyEvaluation`), which serves values (``M x = b``) and visitations (``M^T y = c``)
alike; this is what keeps one PBRL iteration at a handful of solves' worth of work.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.linalg.lapack


class ConvergenceError(RuntimeError):
    """An iterative solver did not reach its tolerance within its iteration budget."""


def check_tau(tau: float) -> float:
    """Return ``tau`` as a float, or raise ``ValueError`` if it is negative or not finite."""
    tau = float(tau)
    if not np.isfinite(tau) or tau < 0:
        raise ValueError(f"tau (the entropy weight) must be a finite number >= 0, got {tau!r}")
    return tau


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis``."""
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable log-softmax along ``axis``."""
    z = logits - logits.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def xlogx(p: np.ndarray) -> np.ndarray:
    """Elementwise ``p log p`` with ``0 log 0 = 0``."""
    out = np.zeros_like(p, dtype=float)
    positive = p > 0
    out[positive] = p[positive] * np.log(p[positive])
    return out


def neg_entropy(pi: np.ndarray) -> np.ndarray:
    """``h(pi)(s) = sum_a pi(a|s) log pi(a|s)`` for every state (REFERENCE §1)."""
    return xlogx(pi).sum(axis=-1)


def safe_log(p: np.ndarray) -> np.ndarray:
    """``log p`` with ``log 0`` replaced by a large negative finite number."""
    return np.log(np.maximum(p, 1e-300))


def kl_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise ``KL(p || q)`` for stochastic matrices (``0 log 0 = 0``)."""
    return (xlogx(p) - np.where(p > 0, p * safe_log(q), 0.0)).sum(axis=-1)


def state_transitions(P: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """``P_pi[s, s'] = sum_a pi(a|s) P(s'|s,a)`` (a batched matrix product, which BLAS runs
    several times faster than the equivalent ``einsum``)."""
    return np.matmul(pi[:, None, :], P)[:, 0, :]


def lu_factor(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LU factorization by LAPACK ``getrf`` directly (scipy's ``lu_factor`` wrapper costs
    several times a small system's factorization in Python overhead)."""
    lu, piv, info = scipy.linalg.lapack.dgetrf(M)
    if info > 0:
        raise np.linalg.LinAlgError("I - gamma P_pi is singular (is gamma < 1?)")
    return lu, piv


def lu_solve(factors: tuple[np.ndarray, np.ndarray], rhs: np.ndarray,
             trans: int = 0) -> np.ndarray:
    """Solve with a factorization from :func:`lu_factor` (LAPACK ``getrs``)."""
    x, _ = scipy.linalg.lapack.dgetrs(*factors, rhs, trans=trans)
    return x


@dataclass(frozen=True)
class PolicyEvaluation:
    """Exact evaluation of one policy in one MDP, with its factorized linear system.

    Attributes
    ----------
    V : array (S,)
        Soft state values ``V_pi``.
    Q : array (S, A)
        Soft action values ``Q_pi = r + gamma P V_pi``.
    lu : tuple
        LU factorization ``(lu, piv)`` of ``I - gamma P_pi`` (LAPACK ``getrf``), reused by
        :meth:`solve` and :meth:`solve_transposed`.
    """

    V: np.ndarray
    Q: np.ndarray
    lu: tuple = field(repr=False)

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """``(I - gamma P_pi)^{-1} rhs``."""
        return lu_solve(self.lu, rhs)

    def solve_transposed(self, rhs: np.ndarray) -> np.ndarray:
        """``(I - gamma P_pi)^{-T} rhs`` (discounted occupancy from a start vector)."""
        return lu_solve(self.lu, rhs, trans=1)

    def visitation(self, rho: np.ndarray, gamma: float) -> np.ndarray:
        """Normalized discounted state visitation ``d_pi = (1-gamma) rho^T (I-gamma P_pi)^{-1}``."""
        return (1.0 - gamma) * self.solve_transposed(rho)


def evaluate_policy(
    P: np.ndarray, r: np.ndarray, pi: np.ndarray, gamma: float, tau: float = 0.0
) -> PolicyEvaluation:
    """Evaluate ``pi`` exactly in the MDP ``(P, r, gamma)`` with entropy weight ``tau``.

    Parameters
    ----------
    P : array (S, A, S)
    r : array (S, A)
    pi : array (S, A)
    gamma : float in [0, 1)
    tau : float >= 0

    Returns
    -------
    PolicyEvaluation
    """
    S = P.shape[0]
    M = np.eye(S) - gamma * state_transitions(P, pi)
    lu = lu_factor(M)
    r_pi = (pi * r).sum(axis=1) - tau * neg_entropy(pi)
    V = lu_solve(lu, r_pi)
    Q = r + gamma * (P.reshape(-1, S) @ V).reshape(r.shape)
    return PolicyEvaluation(V=V, Q=Q, lu=lu)


def greedy_policy(Q: np.ndarray, tau: float) -> np.ndarray:
    """The (soft-)greedy policy of ``Q``: ``softmax(Q/tau)``, or uniform over argmax for tau = 0."""
    if tau > 0:
        return softmax(Q / tau, axis=-1)
    best = Q >= Q.max(axis=-1, keepdims=True) - 1e-12 * (1.0 + np.abs(Q).max())
    return best / best.sum(axis=-1, keepdims=True)


def soft_max_value(Q: np.ndarray, tau: float) -> np.ndarray:
    """``max_q <Q, q> - tau h(q)`` per state: ``tau logsumexp(Q/tau)``, or ``max Q`` for tau = 0."""
    if tau > 0:
        m = Q.max(axis=-1)
        return m + tau * np.log(np.exp((Q - m[:, None]) / tau).sum(axis=-1))
    return Q.max(axis=-1)


@dataclass(frozen=True)
class MDPSolution:
    """Optimal (soft) policy of an MDP with its evaluation and the iterations it took."""

    pi: np.ndarray
    evaluation: PolicyEvaluation
    iterations: int

    @property
    def V(self) -> np.ndarray:
        return self.evaluation.V

    @property
    def Q(self) -> np.ndarray:
        return self.evaluation.Q


def solve_mdp(
    P: np.ndarray,
    r: np.ndarray,
    gamma: float,
    tau: float,
    pi0: np.ndarray | None = None,
    tol: float = 1e-12,
    max_iter: int = 200,
) -> MDPSolution:
    """Optimal policy of an (entropy-regularized) MDP by (soft) policy iteration.

    Policy iteration alternates exact evaluation and (soft-)greedy improvement
    ``pi <- softmax(Q_pi / tau)``. It converges at least at the rate ``gamma`` of soft value
    iteration and locally quadratically (it is Newton's method on the soft Bellman equation), so
    a warm start ``pi0`` near the optimum costs one or two factorizations. For ``tau = 0`` it
    stops when the greedy action set is stable, at an exactly optimal policy.

    Parameters
    ----------
    P, r, gamma, tau
        The MDP and the entropy weight.
    pi0 : array (S, A), optional
        Warm start; uniform by default.
    tol : float
        Stop when the policy changes by less than ``tol`` (max-norm).
    max_iter : int
        Upper bound on improvement steps.

    Returns
    -------
    MDPSolution
    """
    tau = check_tau(tau)
    S, A = r.shape
    pi = np.full((S, A), 1.0 / A) if pi0 is None else pi0
    evaluation = evaluate_policy(P, r, pi, gamma, tau)
    for iteration in range(1, max_iter + 1):
        new_pi = greedy_policy(evaluation.Q, tau)
        if tau == 0:
            # keep the current action where it is still greedy, so the iteration terminates
            keep = (pi > 0) & (new_pi > 0)
            new_pi = np.where(keep.any(axis=1, keepdims=True), keep * pi, new_pi)
            new_pi = new_pi / new_pi.sum(axis=1, keepdims=True)
        change = np.abs(new_pi - pi).max()
        if change <= tol:
            # pi is (soft-)greedy in its own Q to within tol: it is the fixed point, and its
            # evaluation is already at hand (no extra factorization)
            return MDPSolution(pi=pi, evaluation=evaluation, iterations=iteration)
        pi = new_pi
        evaluation = evaluate_policy(P, r, pi, gamma, tau)
    raise ConvergenceError(
        f"policy iteration did not converge in {max_iter} steps (last policy change {change:.3g})"
    )


def td_update(
    Q: np.ndarray, states: np.ndarray, actions: np.ndarray, targets: np.ndarray, step: float
) -> np.ndarray:
    """One tabular TD step from a batch: ``Q(s, a) += step (mean target of (s, a) - Q(s, a))``
    for every pair in the batch (repeated pairs are averaged first); other entries stay."""
    S, A = Q.shape
    pair = states * A + actions
    counts = np.bincount(pair, minlength=S * A).reshape(S, A)
    sums = np.bincount(pair, weights=targets, minlength=S * A).reshape(S, A)
    mean_target = np.where(counts > 0, sums / np.maximum(counts, 1), Q)
    return Q + step * (mean_target - Q)
