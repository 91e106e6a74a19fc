"""Step-size control for the exact leaders: a backtracking (Armijo) line search.

A fixed step on a nonconvex objective whose curvature changes by orders of magnitude (the
hyper-objective near the boundary of a follower-response region grows like ``1 / tau``) either
crawls or overshoots and chatters. The Armijo rule (Nocedal & Wright, *Numerical Optimization*,
2nd ed., Algorithm 3.1) accepts a step ``t`` along ``-d`` only if the objective decreases by at
least ``c t <g, d>``, where ``g`` is the gradient and ``d`` the (preconditioned) direction. So
the objective decreases monotonically and, being bounded below, converges; a step that cannot
be accepted leaves ``x`` where it is. After a step accepted at the first trial the next trial
starts from twice the step, so the step size adapts upward as well as downward.

A search whose required decrease is below the rounding error of the objective has *settled*:
the leader's inputs (``x``, ``tau``, the follower's policy) then determine the next step
completely, and :class:`SettledStep` replays it instead of recomputing it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np

#: Sufficient-decrease constant ``c`` of the Armijo rule (the textbook value).
SUFFICIENT_DECREASE = 1e-4
#: Growth of the trial step after a first-trial acceptance, and shrink factor after a rejection.
GROW, SHRINK = 2.0, 0.5
#: Relative rounding level of an objective value below which no decrease is asked for.
RESOLUTION = 1e-12


@dataclass(frozen=True)
class LineSearchResult:
    """The outcome of one line search.

    Attributes
    ----------
    x : numpy.ndarray
        The accepted point, or the starting point if no step was accepted.
    value : float
        The objective at ``x``.
    step : float
        The step to try first next time.
    accepted : bool
        Whether a step was taken.
    trials : int
        Objective evaluations made.
    settled : bool
        No step because the decrease asked for is below the objective's rounding level.
    """

    x: np.ndarray
    value: float
    step: float
    accepted: bool
    trials: int
    settled: bool = False


def armijo(objective: Callable[[np.ndarray], float], x: np.ndarray, value: float,
           gradient: np.ndarray, direction: np.ndarray, step: float, *,
           max_move: float = 1.0, max_trials: int = 30) -> LineSearchResult:
    """Backtracking line search from ``x`` along ``-direction``.

    Parameters
    ----------
    objective : callable
        The function being minimized (the leader evaluates it exactly).
    x, value : the current point and ``objective(x)``.
    gradient : the gradient of ``objective`` at ``x`` (in the same coordinates as ``x``).
    direction : the step direction (the gradient, or a positive-definite preconditioning of
        it); ``-direction`` must be a descent direction, ``<gradient, direction> > 0``.
    step : the first step to try.
    max_move : float
        No coordinate moves by more than this in one step (a trust cap: in logits, a move of 1
        changes a probability ratio by ``e``), so that one step cannot jump over a basin.
    max_trials : int
        Trials before giving up (each halves the step).

    Returns
    -------
    LineSearchResult
        Not ``accepted`` when ``-direction`` is not a descent direction, or when the decrease
        the rule asks for is below the rounding error of ``value`` (converged), or after
        ``max_trials`` rejected trials.
    """
    slope = float(np.sum(gradient * direction))
    largest = float(np.max(np.abs(direction))) if direction.size else 0.0
    if not (np.isfinite(slope) and slope > 0 and largest > 0):
        return LineSearchResult(x, value, step, False, 0)
    t = min(step, max_move / largest)
    # below this the decrease cannot be told from rounding in the objective
    resolution = RESOLUTION * (1.0 + abs(value))
    for trial in range(1, max_trials + 1):
        if SUFFICIENT_DECREASE * t * slope < resolution:
            return LineSearchResult(x, value, t, False, trial - 1, settled=True)
        candidate = x - t * direction
        candidate_value = objective(candidate)
        if candidate_value <= value - SUFFICIENT_DECREASE * t * slope:
            grown = GROW * t if trial == 1 else t
            return LineSearchResult(candidate, candidate_value, grown, True, trial)
        t *= SHRINK
    return LineSearchResult(x, value, t, False, max_trials)


class SettledStep:
    """Replays the diagnostics of a settled step while its inputs stay the same.

    A settled step leaves the leader's state unchanged, so the same inputs (the iterate's
    bytes, ``tau``, the follower's policy's bytes, ...) give the same step again: nothing
    needs computing, and the result is the same bit for bit.
    """

    def __init__(self) -> None:
        self._key: Hashable | None = None
        self._diagnostics: dict[str, float] = {}

    def replay(self, key: Hashable) -> dict[str, float] | None:
        """The remembered diagnostics if ``key`` matches the settled step's inputs."""
        return dict(self._diagnostics) if key == self._key else None

    def record(self, key: Hashable, result: LineSearchResult,
               diagnostics: dict[str, float]) -> None:
        """Remember a step's inputs if it settled (forget them otherwise)."""
        self._key = key if result.settled else None
        self._diagnostics = dict(diagnostics)
