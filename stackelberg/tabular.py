"""Exact tabular mathematics of an entropy-regularized MDP (docs/theory.md §1).

Pure functions on numpy arrays. An MDP here is ``P[s, a, s']`` (shape ``(S, A, S)``),
``r[s, a]``, a discount ``gamma`` and an entropy weight ``tau >= 0``; a policy ``pi[s, a]`` is
row-stochastic. With ``h(p) = sum_a p_a log p_a``:

    V_pi = (I - gamma P_pi)^{-1} (r_pi - tau h(pi))
    Q_pi = r + gamma P V_pi
    d_pi = (1 - gamma) rho^T (I - gamma P_pi)^{-1}

Every linear solve goes through one LU factorization of ``I - gamma P_pi`` per policy
(:class:`PolicyEvaluation`), which serves values (``M x = b``) and visitations (``M^T y = c``)
alike; this is what keeps one PBRL iteration at a handful of solves' worth of work. In policy
iteration, where successive policies are close, a policy may instead borrow the previous
factorization and solve by iterative refinement (:func:`refine`), which is cheaper than a new
factorization on large state spaces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache, cached_property, reduce

import numpy as np

from stackelberg.scipy_functions import scipy_functions as sf


class ConvergenceError(RuntimeError):
    """An iterative solver did not reach its tolerance within its iteration budget."""


def check_tau(tau: float) -> float:
    """Return ``tau`` as a float, or raise ``ValueError`` if it is negative or not finite."""
    tau = float(tau)
    if not np.isfinite(tau) or tau < 0:
        raise ValueError(f"tau (the entropy weight) must be a finite number >= 0, got {tau!r}")
    return tau


#: Rows up to this length are reduced across their entries (a few elementwise calls, or a
#: product with a vector of ones) rather than by numpy's reduction along the last axis, which
#: loops over the rows one by one: the row maxima of a 100 x 3 array took 4 us, against 1.4 us
#: across its 3 columns (16.7 against 2 us at 500 x 3).
SHORT_ROW = 16


@cache
def _ones(n: int) -> np.ndarray:
    ones = np.ones(n)
    ones.flags.writeable = False
    return ones


def row_max(z: np.ndarray) -> np.ndarray:
    """Maximum over the last axis (shape ``(rows,)`` for a 2-D array)."""
    if z.ndim != 2 or z.shape[1] > SHORT_ROW:
        return z.max(axis=-1)
    if z.shape[1] == 1:
        return z[:, 0].copy()
    return reduce(np.maximum, z.T)


def row_sum(z: np.ndarray) -> np.ndarray:
    """Sum over the last axis of a float array (shape ``(rows,)`` for a 2-D one)."""
    if z.ndim != 2 or z.shape[1] > SHORT_ROW:
        return z.sum(axis=-1)
    return z @ _ones(z.shape[1])


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis``."""
    rows = logits.ndim == 2 and axis in (-1, 1)
    z = logits - (row_max(logits)[:, None] if rows else logits.max(axis=axis, keepdims=True))
    if z.dtype.kind != "f":
        z = z.astype(float)
    # in place: on small arrays the allocations cost as much as the arithmetic
    np.exp(z, out=z)
    z /= row_sum(z)[:, None] if rows else z.sum(axis=axis, keepdims=True)
    return z


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable log-softmax along ``axis``."""
    z = logits - logits.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def xlogx(p: np.ndarray) -> np.ndarray:
    """Elementwise ``p log p`` with ``0 log 0 = 0``, for ``p >= 0`` (one ufunc call)."""
    return sf.xlogy(p, p)


def neg_entropy(pi: np.ndarray) -> np.ndarray:
    """``h(pi)(s) = sum_a pi(a|s) log pi(a|s)`` for every state (docs/theory.md §1)."""
    return row_sum(xlogx(pi))


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


def lu_factor(M: np.ndarray, overwrite: bool = False) -> tuple[np.ndarray, np.ndarray, bool]:
    """Factors of ``M`` for :func:`lu_solve`, by LAPACK ``getrf`` directly (scipy's
    ``lu_factor`` wrapper costs several times a small system's factorization in Python overhead).

    A C-ordered ``M`` is factorized as ``M^T``, whose Fortran-ordered view LAPACK takes without
    a transposing copy (:func:`lu_solve` swaps the transposition back); ``overwrite=True``
    factorizes a scratch ``M`` in place.
    """
    transposed = M.flags.c_contiguous and not M.flags.f_contiguous
    lu, piv, info = sf.dgetrf(M.T if transposed else M, overwrite_a=overwrite)
    if info > 0:
        raise np.linalg.LinAlgError("I - gamma P_pi is singular (is gamma < 1?)")
    return lu, piv, transposed


def lu_solve(factors: tuple[np.ndarray, np.ndarray, bool], rhs: np.ndarray,
             trans: int = 0) -> np.ndarray:
    """Solve ``M x = rhs`` (``M^T x = rhs`` for ``trans=1``) with the factors of ``M`` from
    :func:`lu_factor` (LAPACK ``getrs``)."""
    lu, piv, transposed = factors
    x, _ = sf.dgetrs(lu, piv, rhs, trans=trans ^ transposed)
    return x


#: :func:`refine` stops once its estimate of the remaining error is below this, relative to
#: the solution (max-norm): the accuracy of a direct LU solve of these well-conditioned systems.
REFINE_RTOL = float(np.finfo(float).eps)

#: A refinement whose corrections shrink by less than this factor per step has stalled.
REFINE_MIN_CONTRACTION = 0.5

#: Policy iteration borrows factorizations from this many states on (see :func:`solve_mdp`).
REFINE_MIN_STATES = 150

#: Margin of :func:`solve_mdp`'s prediction of the next policy change (``predict=True``): the
#: quadratic model's constant, estimated from the last two changes, grows by at most this factor
#: (measured on warm-started random games: it shrank from one step to the next).
PREDICT_SAFETY = 10.0

#: The soft-greedy policy ``softmax(Q / tau)`` is known only to within rounding: ``Q`` carries
#: an error of a few units in the last place of its largest entry (``|Q| ~ r / (1 - gamma)``),
#: and a policy entry moves by up to ``1 / (4 tau)`` per unit change of an action-value
#: difference. So policy changes below ``POLICY_FLOOR_ULPS * eps * max|Q| / tau`` are noise
#: (:func:`policy_resolution`); policy iteration asked for less stops there instead of cycling
#: in the noise until its iteration budget runs out. Measured: with rewards in [0, 1],
#: gamma = 0.999 and tau = 1e-3, near-tied actions made successive policies differ by 1e-11 to
#: 3e-11 for ever (about 0.1 eps max|Q| / tau), and a tolerance of 1e-12 raised
#: ConvergenceError on 10 of 20 random MDPs; the floor is 8 eps max|Q| / tau, about 2e-9 there
#: (2e-6 at tau = 1e-6).
POLICY_FLOOR_ULPS = 8.0

#: Refinement steps a solve may take with a borrowed factorization after policy iteration has
#: accepted it (each step contracts by the rate policy iteration observed, so a few suffice).
REFINE_MAX_STEPS = 50


def refine(
    M: np.ndarray,
    factors: tuple[np.ndarray, np.ndarray, bool],
    rhs: np.ndarray,
    trans: int = 0,
    max_steps: int = REFINE_MAX_STEPS,
) -> np.ndarray | None:
    """Solve ``M x = rhs`` (``M^T x = rhs`` for ``trans=1``) by iterative refinement with the
    LU ``factors`` of a nearby matrix ``M0``.

    Each step ``x += M0^{-1} (rhs - M x)`` multiplies the error by ``M0^{-1} (M0 - M)``; the
    iteration stops when the last correction times its observed contraction rate (an estimate
    of the remaining error) is below ``REFINE_RTOL`` of ``x``, or when the correction is at
    that level already (rounding).

    Returns
    -------
    array or None
        The solution, or None when the iteration stalls or would need more than ``max_steps``
        steps at its observed rate (the caller then factorizes ``M`` itself).
    """
    x = lu_solve(factors, rhs, trans)
    M_op = M.T if trans else M
    size = float(np.abs(x).max())
    scale = REFINE_RTOL * size  # |x| changes by a relative O(rate) only
    for step in range(1, max_steps + 1):
        dx = lu_solve(factors, rhs - M_op @ x, trans)
        x += dx
        previous, size = size, float(np.abs(dx).max())
        rate = size / previous if previous > 0 else 0.0
        if size * min(rate, 1.0) <= scale or size <= scale:
            return x
        if rate > REFINE_MIN_CONTRACTION:
            return None
        # steps still needed at this rate: rate^n * size <= scale
        if step + math.log(scale / size) / math.log(rate) > max_steps:
            return None
    return None


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
        LU factors of ``I - gamma P_pi`` from :func:`lu_factor`, reused by
        :meth:`solve` and :meth:`solve_transposed`; or, when ``M`` is given, of a nearby
        matrix (a previous policy's in policy iteration).
    M : array (S, S) or None
        ``I - gamma P_pi`` when ``lu`` is borrowed: solves then :func:`refine` against it.
    """

    V: np.ndarray
    Q: np.ndarray
    lu: tuple = field(repr=False)
    M: np.ndarray | None = field(default=None, repr=False)

    def _solve(self, rhs: np.ndarray, trans: int) -> np.ndarray:
        if self.M is None:
            return lu_solve(self.lu, rhs, trans)
        x = refine(self.M, self.lu, rhs, trans)
        if x is None:  # not expected: the factorization was accepted at a fast rate
            x = np.linalg.solve(self.M.T if trans else self.M, rhs)
        return x

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """``(I - gamma P_pi)^{-1} rhs``."""
        return self._solve(rhs, 0)

    def solve_transposed(self, rhs: np.ndarray) -> np.ndarray:
        """``(I - gamma P_pi)^{-T} rhs`` (discounted occupancy from a start vector)."""
        return self._solve(rhs, 1)

    def visitation(self, rho: np.ndarray, gamma: float) -> np.ndarray:
        """Normalized discounted state visitation ``d_pi = (1-gamma) rho^T (I-gamma P_pi)^{-1}``."""
        return (1.0 - gamma) * self.solve_transposed(rho)


def evaluate_policy(
    P: np.ndarray,
    r: np.ndarray,
    pi: np.ndarray,
    gamma: float,
    tau: float = 0.0,
    borrow: tuple[np.ndarray, np.ndarray, bool] | None = None,
    max_refine_steps: int = REFINE_MAX_STEPS,
) -> PolicyEvaluation:
    """Evaluate ``pi`` exactly in the MDP ``(P, r, gamma)`` with entropy weight ``tau``.

    Parameters
    ----------
    P : array (S, A, S)
    r : array (S, A)
    pi : array (S, A)
    gamma : float in [0, 1)
    tau : float >= 0
    borrow : tuple, optional
        LU factors of ``I - gamma P_pi0`` for a nearby policy ``pi0``: tried first, by
        :func:`refine` with at most ``max_refine_steps`` steps; ``I - gamma P_pi`` is factorized
        only if that fails.
    max_refine_steps : int

    Returns
    -------
    PolicyEvaluation
        With ``M`` set when the borrowed factors were kept.
    """
    S = P.shape[0]
    M = state_transitions(P, pi)
    M *= -gamma
    M.reshape(-1)[:: S + 1] += 1.0  # I - gamma P_pi without an identity matrix
    # one row sum of r - tau log pi under pi
    w = pi * r
    if tau > 0:
        w -= tau * xlogx(pi)
    r_pi = row_sum(w)
    V = None if borrow is None else refine(M, borrow, r_pi, max_steps=max_refine_steps)
    if V is None:
        lu, kept = lu_factor(M, overwrite=True), None
        V = lu_solve(lu, r_pi)
    else:
        lu, kept = borrow, M
    Q = r + gamma * (P.reshape(-1, S) @ V).reshape(r.shape)
    return PolicyEvaluation(V=V, Q=Q, lu=lu, M=kept)


def policy_resolution(Q: np.ndarray, tau: float) -> float:
    """The smallest change (max-norm) of ``softmax(Q / tau)`` that rounding of ``Q`` does not
    explain: ``POLICY_FLOOR_ULPS * eps * max|Q| / tau`` (0 for ``tau = 0``, whose greedy
    action sets are compared with a relative tolerance instead)."""
    if tau <= 0:
        return 0.0
    return POLICY_FLOOR_ULPS * REFINE_RTOL * float(np.abs(Q).max()) / tau


def greedy_policy(Q: np.ndarray, tau: float) -> np.ndarray:
    """The (soft-)greedy policy of ``Q``: ``softmax(Q/tau)``, or uniform over argmax for tau = 0."""
    if tau > 0:
        return softmax(Q / tau, axis=-1)
    best = Q >= Q.max(axis=-1, keepdims=True) - 1e-12 * (1.0 + np.abs(Q).max())
    return best / best.sum(axis=-1, keepdims=True)


def soft_max_value(Q: np.ndarray, tau: float) -> np.ndarray:
    """``max_q <Q, q> - tau h(q)`` per state: ``tau logsumexp(Q/tau)``, or ``max Q`` for tau = 0."""
    m = row_max(Q)
    if tau > 0:
        return m + tau * np.log(row_sum(np.exp((Q - m[:, None]) / tau)))
    return m


@dataclass(frozen=True)
class MDPSolution:
    """Optimal (soft) policy of an MDP with its evaluation and the iterations it took.

    Attributes
    ----------
    pi : array (S, A)
        The policy.
    iterations : int
        Improvement steps taken.
    last : PolicyEvaluation
        The last evaluation policy iteration made: of ``pi`` itself, or, when ``mdp`` is set,
        of the policy ``pi`` is (soft-)greedy for (its values are within the square of the last
        policy change of the optimal ones: a warm start for a nearby MDP, see ``V0`` of
        :func:`solve_mdp`).
    factorizations : int
        LU factorizations it took (the rest borrowed one); not counting ``evaluation``'s when
        it is made on demand.
    mdp : tuple or None
        When ``pi`` was returned without its own evaluation, the arguments of
        :func:`evaluate_policy` other than ``pi`` (``P, r, gamma, tau, borrow,
        max_refine_steps``); :attr:`evaluation` then evaluates it on first access.
    """

    pi: np.ndarray
    iterations: int
    last: PolicyEvaluation = field(repr=False)
    factorizations: int = 0
    mdp: tuple | None = field(default=None, repr=False)

    @cached_property
    def evaluation(self) -> PolicyEvaluation:
        """Exact evaluation of ``pi`` (made on first access when ``pi`` was not evaluated)."""
        if self.mdp is None:
            return self.last
        P, r, gamma, tau, borrow, max_refine_steps = self.mdp
        return evaluate_policy(P, r, self.pi, gamma, tau, borrow, max_refine_steps)

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
    max_refine_steps: int | None = None,
    V0: np.ndarray | None = None,
    predict: bool = False,
) -> MDPSolution:
    """Optimal policy of an (entropy-regularized) MDP by (soft) policy iteration.

    Policy iteration alternates exact evaluation and (soft-)greedy improvement
    ``pi <- softmax(Q_pi / tau)``. It converges at least at the rate ``gamma`` of soft value
    iteration and locally quadratically (it is Newton's method on the soft Bellman equation), so
    a warm start ``pi0`` near the optimum costs one or two factorizations. For ``tau = 0`` it
    stops when the greedy action set is stable, at an exactly optimal policy.

    Successive policies are close, so each evaluation first borrows the last factorization and
    refines (:func:`evaluate_policy`); a new factorization is made only when that would take
    more than ``max_refine_steps`` steps. The policies are the same as with a factorization per
    evaluation, up to rounding.

    Parameters
    ----------
    P, r, gamma, tau
        The MDP and the entropy weight.
    pi0 : array (S, A), optional
        Warm start; uniform by default.
    tol : float
        Stop when the policy changes by less than ``tol`` (max-norm); with ``predict``, also
        when the next change is predicted to be below ``tol``. A ``tol`` below the rounding
        floor of the soft-greedy policy (:func:`policy_resolution`, relative to the scale of
        the values and to ``tau``) is raised to that floor.
    max_iter : int
        Upper bound on improvement steps.
    max_refine_steps : int, optional
        Default ``S // 40`` from ``REFINE_MIN_STATES`` states on, else 0 (factorize every
        policy): a refinement step (a solve with given factors and a product by ``M``,
        ``4 S^2`` flops) against a factorization (``2 S^3 / 3``), with the per-call overhead
        that makes refinement a loss on small systems (measured: slower at ``S = 100``, faster
        from ``S = 200``).
    V0 : array (S,), optional
        Values near the optimal ones (e.g. a nearby MDP's, :attr:`MDPSolution.last`): the
        first policy is then greedy for ``r + gamma P V0``, which costs a matrix-vector product
        where ``pi0`` costs an evaluation; ``pi0`` is ignored.
    predict : bool
        For ``tau > 0``, also stop once the quadratic convergence of the policy changes
        ``c_k`` predicts the next one, ``c_{k+1} ~ c_k^3 / c_{k-1}^2``, to be below ``tol``
        with a margin of ``PREDICT_SAFETY``: the new policy is returned without being evaluated
        (its :attr:`MDPSolution.evaluation` is made on demand), which saves the evaluation
        that would only confirm convergence.

    Returns
    -------
    MDPSolution
    """
    tau = check_tau(tau)
    S, A = r.shape
    if max_refine_steps is None:
        max_refine_steps = S // 40 if S >= REFINE_MIN_STATES else 0
    if V0 is not None:
        pi = greedy_policy(r + gamma * (P.reshape(-1, S) @ V0).reshape(r.shape), tau)
    else:
        pi = np.full((S, A), 1.0 / A) if pi0 is None else pi0
    evaluation = evaluate_policy(P, r, pi, gamma, tau)
    factorizations = 1
    predict = predict and tau > 0
    previous = math.inf  # the last policy change (none yet: no prediction)
    for iteration in range(1, max_iter + 1):
        new_pi = greedy_policy(evaluation.Q, tau)
        if tau == 0:
            # keep the current action where it is still greedy, so the iteration terminates
            keep = (pi > 0) & (new_pi > 0)
            new_pi = np.where(keep.any(axis=1, keepdims=True), keep * pi, new_pi)
            new_pi = new_pi / new_pi.sum(axis=1, keepdims=True)
        change = np.abs(new_pi - pi).max()
        limit = max(tol, policy_resolution(evaluation.Q, tau))
        if change <= limit:
            # pi is (soft-)greedy in its own Q to within tol: it is the fixed point, and its
            # evaluation is already at hand (no extra factorization)
            return MDPSolution(pi=pi, iterations=iteration, last=evaluation,
                               factorizations=factorizations)
        borrow = evaluation.lu if max_refine_steps > 0 else None
        if predict and change < previous < math.inf and (
            PREDICT_SAFETY * change**3 <= limit * previous**2
        ):
            return MDPSolution(pi=new_pi, iterations=iteration, last=evaluation,
                               factorizations=factorizations,
                               mdp=(P, r, gamma, tau, borrow, max_refine_steps))
        pi, previous = new_pi, change
        evaluation = evaluate_policy(P, r, pi, gamma, tau, borrow, max_refine_steps)
        factorizations += evaluation.M is None
    raise ConvergenceError(
        f"policy iteration did not converge in {max_iter} steps (last policy change "
        f"{change:.3g}, tolerance {limit:.3g})"
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
