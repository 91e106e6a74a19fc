"""Small statistics of the report: t-intervals over seeds and ranks with ties."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` values and its two-sided confidence interval (NaN bounds when n < 2)."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def t_interval(values: Iterable[float], confidence: float = 0.95) -> Interval:
    """Student-t confidence interval of the mean: ``mean +- t_{(1+c)/2, n-1} s / sqrt(n)``.

    ``s`` is the sample standard deviation (``ddof=1``). With one value there is no interval
    (NaN bounds); with none the mean is NaN as well.
    """
    x = np.asarray(list(values), dtype=float)
    n = x.size
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, 1)
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return Interval(mean, mean - half, mean + half, n)


def tied_ranks(keys: Sequence[tuple[float, ...]], tol: float = 0.0) -> np.ndarray:
    """Ranks of tuples in increasing lexicographic order, 1 = lowest; NaN counts as +inf.

    Neighbours in that order whose every component differs by at most ``tol`` are tied (a chain
    of such neighbours is one tie) and share the average of the ranks they span: values that
    agree to rounding error, e.g. two algorithms that reach the same point, are not ordered by
    their last bits.
    """
    clean = [tuple(math.inf if math.isnan(v) else float(v) for v in key) for key in keys]
    order = sorted(range(len(clean)), key=lambda i: clean[i])

    def close(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
        return all(x == y or abs(x - y) <= tol for x, y in zip(a, b, strict=True))

    ranks = np.empty(len(clean))
    start = 0
    for end in range(1, len(order) + 1):
        if end == len(order) or not close(clean[order[end - 1]], clean[order[end]]):
            ranks[order[start:end]] = (start + 1 + end) / 2  # the average of start+1 .. end
            start = end
    return ranks


def average_ranks(values: Sequence[float], tol: float = 0.0) -> np.ndarray:
    """Ranks of ``values`` in increasing order, 1 = lowest; values within ``tol`` of a
    neighbour tie and share the average of the ranks they span; NaN ranks last (tied with
    other NaNs and with +inf)."""
    return tied_ranks([(v,) for v in values], tol)
