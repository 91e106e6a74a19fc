"""The equality-constrained Hessian solve of the logit equilibrium (docs/theory.md §11).

At path flows ``h > 0`` the Hessian of the potential is
``H = Delta diag(l'(f)) Delta^T + tau diag(1 / h)`` and the constraints are ``B^T h = d``
(``B`` the path-pair membership). :class:`ReducedSolver` returns, for a right-hand side ``r``,

    u = H^{-1} (r - B w)   with   w  such that  B^T u = 0,

which is the Newton direction of the equilibrium (``r`` the potential's gradient) and the
adjoint of the planner's hypergradient (``r = Delta m``). ``H^{-1}`` is applied by the Woodbury
identity around ``W = diag(h / tau)``: one ``E x E`` Cholesky factor and one ``K x K`` solve,
nothing of size paths x paths.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg.lapack
import scipy.sparse as sp

from stackelberg.congestion.network import Network
from stackelberg.congestion.paths import PathSet

__all__ = ["ReducedSolver"]


def _cho_factor(a: np.ndarray) -> np.ndarray:
    """The upper Cholesky factor of ``a`` by LAPACK ``potrf``: the call
    ``scipy.linalg.cho_factor`` makes, with the same checks, without its wrappers' overhead
    (several times the factorization of these small matrices)."""
    if not np.isfinite(a).all():
        raise ValueError("array must not contain infs or NaNs")
    c, info = scipy.linalg.lapack.dpotrf(a, lower=False, clean=False)
    if info > 0:
        raise np.linalg.LinAlgError(
            f"{info}-th leading minor of the array is not positive definite")
    return c


def _cho_solve(c: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a^{-1} b`` from :func:`_cho_factor`'s factor (LAPACK ``potrs``, as
    ``scipy.linalg.cho_solve``)."""
    if not np.isfinite(b).all():
        raise ValueError("array must not contain infs or NaNs")
    x, _ = scipy.linalg.lapack.dpotrs(c, b, lower=False)
    return x


class ReducedSolver:
    """``r -> H^{-1} (r - B w)`` with ``B^T`` of the result zero, for one ``(h, f, tau)``."""

    def __init__(self, net: Network, paths: PathSet, h: np.ndarray, f: np.ndarray,
                 tau: float) -> None:
        self.starts, self.pair = paths.starts, paths.pair
        self.w = h / tau
        slope = net.latency_derivative(f)
        # H = G G^T + W^{-1} with G = Delta diag(sqrt(l'))
        # built on the incidence's own sparsity pattern (what ``multiply`` and ``tocsr`` give,
        # entry by entry, at a fraction of their cost on these small matrices)
        incidence = paths.incidence
        g = incidence.data * np.sqrt(slope)[incidence.indices]
        self.g = sp.csr_matrix((g, incidence.indices, incidence.indptr),
                               shape=incidence.shape)  # P x E
        order, indices, indptr = paths.transposed
        self.gw = sp.csr_matrix((g[order] * self.w[indices], indices, indptr),
                                shape=incidence.shape[::-1])  # E x P: G^T W
        m = np.eye(net.n_edges) + (self.gw @ self.g).toarray()
        self.m_factor = _cho_factor(m)
        # S = B^T H^{-1} B = diag(B^T W 1) - U^T M^{-1} U, U = G^T W B (E x K)
        u = np.add.reduceat(self.gw.toarray(), self.starts, axis=1)
        s = np.diag(np.add.reduceat(self.w, self.starts)) \
            - u.T @ _cho_solve(self.m_factor, u)
        self.s_factor = _cho_factor(s)

    def h_inv(self, x: np.ndarray) -> np.ndarray:
        """``H^{-1} x`` by Woodbury: ``W x - W G M^{-1} G^T W x``."""
        correction = self.g @ _cho_solve(self.m_factor, self.gw @ x)
        return self.w * (x - correction)

    def solve(self, r: np.ndarray) -> np.ndarray:
        y = self.h_inv(r)
        w = _cho_solve(self.s_factor, np.add.reduceat(y, self.starts))
        return y - self.h_inv(w[self.pair])
