"""Unconstrained L-BFGS with the iterates of ``scipy.optimize.minimize(method="L-BFGS-B")``,
without its per-evaluation wrapper.

The Bellman penalty's inner minimization over the follower's logits (``PBRLLeader.
_minimize_over_pi``) runs L-BFGS about 50 evaluations at a time, hundreds of times per match, on
an objective that costs about 200 us on a 10-state game; ``scipy.optimize.minimize`` adds about
65 us per evaluation around it (``ScalarFunction``'s memo, copies and checks; BENCHMARKS.md,
"Branch speed"). :func:`minimize_lbfgs` drives the same L-BFGS-B routine (Byrd, Lu, Nocedal & Zhu,
*A limited memory algorithm for bound constrained optimization*, SIAM J. Sci. Comput. 1995;
scipy's ``setulb``) with scipy's defaults and stopping rules, so it returns the same ``x`` bit
for bit (``tests/test_fast_paths.py`` checks it against ``minimize``), and it reuses an
evaluation of the starting point that the caller already made.

``setulb`` is a private scipy function whose signature changed in scipy 1.15; on an older scipy,
or one newer than 1.17 (not checked yet), the function falls back to
``scipy.optimize.minimize``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

#: scipy's defaults for ``method="L-BFGS-B"``: memory, ``ftol``, evaluations, line-search steps.
MAXCOR = 10
FTOL = 2.2204460492503131e-09
MAXFUN = 15000
MAXLS = 20

Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


@functools.cache
def _setulb() -> Callable[..., None] | None:
    """scipy's ``setulb`` if its calling convention is the one checked here, else None.

    Imported on the first minimization, not with the module: scipy.optimize costs about 0.2 CPU s
    and every ``stackelberg`` command (a refused config too) imports the leaders' registry.
    """
    import scipy

    try:  # the C translation of L-BFGS-B (scipy >= 1.15) and its calling convention; a private
        # function may change again, so a scipy newer than the last checked here (1.17, by
        # tests/test_fast_paths.py) uses minimize until the identity is checked again
        from scipy.optimize import _lbfgsb

        version = tuple(int(p) for p in scipy.__version__.split(".")[:2])
    except (ImportError, ValueError):  # pragma: no cover - an older or unusual scipy
        return None
    return _lbfgsb.setulb if (1, 15) <= version <= (1, 17) else None


def minimize_lbfgs(objective: Objective, x0: np.ndarray, gtol: float, maxiter: int,
                   first: tuple[float, np.ndarray] | None = None) -> np.ndarray:
    """The minimizer ``scipy.optimize.minimize(objective, x0, jac=True, method="L-BFGS-B",
    options={"gtol": gtol, "maxiter": maxiter})`` returns (its ``x``), unbounded.

    Parameters
    ----------
    objective : callable
        ``objective(x) -> (value, gradient)`` for a 1-D float ``x``; it must not keep ``x``.
    x0 : array (n,)
    gtol, maxiter : scipy's options of the same names.
    first : tuple, optional
        ``objective(x0)`` if the caller has it already (it is not evaluated again).
    """
    setulb = _setulb()
    if setulb is None:
        import scipy.optimize

        return scipy.optimize.minimize(objective, x0, jac=True, method="L-BFGS-B",
                                       options={"gtol": gtol, "maxiter": maxiter}).x
    x = np.array(np.asarray(x0, dtype=np.float64).ravel())
    n = x.size
    # scipy evaluates the start when it builds its ScalarFunction, and answers L-BFGS-B's
    # first request (at the same point) from that evaluation
    known_x = x.copy()
    known_f, known_g = objective(x.copy()) if first is None else first
    evaluations = 1
    nbd = np.zeros(n, np.int32)  # no bounds
    low, high = np.zeros(n), np.zeros(n)
    f = np.array(0.0)
    g = np.zeros(n)
    wa = np.zeros(2 * MAXCOR * n + 5 * n + 11 * MAXCOR * MAXCOR + 8 * MAXCOR)
    iwa = np.zeros(3 * n, np.int32)
    task, ln_task = np.zeros(2, np.int32), np.zeros(2, np.int32)
    lsave, isave, dsave = np.zeros(4, np.int32), np.zeros(44, np.int32), np.zeros(29)
    factr = FTOL / np.finfo(float).eps
    iterations = 0
    while True:
        g = np.array(g, dtype=np.float64)  # L-BFGS-B may write into g: never the known one
        setulb(MAXCOR, x, low, high, nbd, f, g, factr, gtol, wa, iwa, task, lsave,
                       isave, dsave, MAXLS, ln_task)
        if task[0] == 3:  # f and g wanted at x
            if not np.array_equal(x, known_x):
                known_x = x.copy()
                known_f, known_g = objective(x.copy())
                evaluations += 1
            f, g = known_f, known_g
        elif task[0] == 1:  # a new iteration
            iterations += 1
            if iterations >= maxiter:
                task[0], task[1] = 5, 504
            elif evaluations > MAXFUN:
                task[0], task[1] = 5, 502
        else:
            return x
