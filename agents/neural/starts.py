"""Several starting commitments in one match, and the choice among them by the leader's own
estimate (docs/theory.md §14).

A categorical leader's hyper-objective has local optima (a matrix game's pure commitments, a
Markov game's basins): from the uniform start a gradient method, even the exact one, ends in the
basin it starts in. :class:`StartPlan` splits a match's budget into ``starts`` equal segments; the
leader begins each from a new commitment (the first from her usual start) and, over the last
``tail`` share of each segment, keeps the running mean of her parameters (tail averaging, which
cancels the noise of the last steps) and the mean of her Monte-Carlo return against the
follower's current policy (the learner's own estimate: no model). At the end she reports the
averaged parameters of the segment whose estimate is highest [ours].

The plan is plain bookkeeping on numpy arrays, apart from torch (the leaders in
:mod:`agents.neural.rac` drive it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SegmentResult", "StartPlan"]


@dataclass(frozen=True)
class SegmentResult:
    """One segment's report: its tail-averaged parameters, the mean of the leader's return
    estimates over the same iterations, and how many iterations that tail held."""

    params: np.ndarray
    estimate: float
    iterations: int


class StartPlan:
    """The segments of a match of ``budget`` iterations (module docstring).

    ``starts`` segments of ``budget // starts`` iterations (the last takes the remainder); the
    tail of a segment is its last ``max(1, round(tail * length))`` iterations (``tail = 0``:
    its last iteration alone, i.e. the last iterate).
    """

    def __init__(self, budget: int, starts: int, tail: float):
        if budget < 1 or starts < 1 or not 0.0 <= tail <= 1.0:
            raise ValueError(f"need budget >= 1, starts >= 1 and 0 <= tail <= 1, got "
                             f"{budget}, {starts}, {tail}")
        starts = min(starts, budget)
        length = budget // starts
        self.bounds = [j * length for j in range(starts)] + [budget]
        self.tail = tail
        self.results: list[SegmentResult] = []
        self._sum: np.ndarray | None = None
        self._estimates: list[float] = []

    @property
    def starts(self) -> int:
        return len(self.bounds) - 1

    def segment(self, t: int) -> int:
        """The segment of iteration ``t`` (0-based)."""
        return int(np.searchsorted(self.bounds, t, side="right")) - 1

    def begins(self, t: int) -> bool:
        """Whether iteration ``t`` starts a segment after the first (time for a new start)."""
        return 0 < t < self.bounds[-1] and t in self.bounds

    def _tail_start(self, j: int) -> int:
        length = self.bounds[j + 1] - self.bounds[j]
        return self.bounds[j + 1] - max(1, round(self.tail * length))

    def record(self, t: int, params: np.ndarray, estimate: float) -> None:
        """Iteration ``t`` ended with the leader's ``params``, and the leader's return estimate
        of that iteration's episodes was ``estimate``; closes the segment on its last
        iteration."""
        j = self.segment(t)
        if t >= self._tail_start(j):
            self._sum = params.copy() if self._sum is None else self._sum + params
            self._estimates.append(float(estimate))
        if t == self.bounds[j + 1] - 1:
            n = len(self._estimates)
            self.results.append(SegmentResult(self._sum / n, float(np.mean(self._estimates)), n))
            self._sum, self._estimates = None, []

    def done(self) -> bool:
        return len(self.results) == self.starts

    def best(self) -> SegmentResult:
        """The finished segment with the highest estimate (the first among equals)."""
        if not self.results:
            raise ValueError("no segment has finished")
        return max(self.results, key=lambda r: r.estimate)
