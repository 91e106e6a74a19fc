"""Convergence bands over seeds: each seed's curve on one common x grid, then its median, mean
and a quantile band, per (game, competitor).

Data only; :mod:`analysis.report_figures` draws them.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from analysis.matches import Competitor, MatchData
from analysis.scoring import Reference, score_curve
from analysis.tournament import GameRanking

#: x axes a band can be drawn against: a column of the metrics.
X_AXES = ("iteration", "samples")


@dataclass(frozen=True)
class Band:
    """One competitor's curve over seeds on a common grid ``x``.

    ``median``, ``mean``, ``low`` and ``high`` are taken over the seeds that have a value at
    each grid point; ``low``/``high`` are the band's quantiles (by default min and max).
    """

    competitor: Competitor
    x: np.ndarray
    median: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    seeds: int


@dataclass(frozen=True)
class GameBands:
    """Every competitor's band of its score in one game, against one x axis; ``target`` is
    the score the speed columns count to; ``exact``: scores are distances to a known equilibrium
    value."""

    game: str
    x_name: str
    y_label: str
    bands: tuple[Band, ...]
    target: float
    exact: bool


def common_grid(xs: Sequence[np.ndarray], max_points: int = 400) -> np.ndarray:
    """The union of the seeds' x values, or ``max_points`` evenly spaced points over their
    joint range when the union is larger."""
    union = np.unique(np.concatenate([np.asarray(x, dtype=float) for x in xs]))
    if union.size <= max_points:
        return union
    return np.linspace(union[0], union[-1], max_points)


def on_grid(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``y(x)`` linearly interpolated on ``grid``: NaN before the curve's first x, held at its
    last value after its last x (a match that stopped early keeps its final value)."""
    values = np.interp(grid, x, y)
    values[grid < x[0]] = np.nan
    return values


def band(competitor: Competitor, curves: Sequence[tuple[np.ndarray, np.ndarray]],
         quantiles: tuple[float, float] = (0.0, 1.0), max_points: int = 400) -> Band:
    """The band of one competitor's ``(x, y)`` curves (one per seed, x increasing)."""
    grid = common_grid([x for x, _ in curves], max_points)
    stacked = np.vstack([on_grid(x, y, grid) for x, y in curves])
    low, high = np.nanquantile(stacked, quantiles, axis=0)
    return Band(competitor, grid, np.nanmedian(stacked, axis=0), np.nanmean(stacked, axis=0),
                low, high, len(curves))


def mean_band(competitor: Competitor, curves: Sequence[tuple[np.ndarray, np.ndarray]],
              confidence: float = 0.95, max_points: int = 400) -> Band:
    """The mean over seeds of ``(x, y)`` curves on a common grid with a t confidence interval
    for the mean as the band (``low``/``high``; NaN where fewer than two seeds have a value).

    Same grid and interpolation as :func:`band`.
    """
    grid = common_grid([x for x, _ in curves], max_points)
    stacked = np.vstack([on_grid(x, y, grid) for x, y in curves])
    n = np.sum(np.isfinite(stacked), axis=0)
    with warnings.catch_warnings():  # grid points with fewer than two seeds give NaN, as meant
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(stacked, axis=0)
        sd = np.nanstd(stacked, axis=0, ddof=1)
        half = stats.t.ppf((1 + confidence) / 2, n - 1) * sd / np.sqrt(n)
    half = np.where(n >= 2, half, np.nan)
    return Band(competitor, grid, np.nanmedian(stacked, axis=0), mean, mean - half, mean + half,
                len(curves))


def _curve(match: MatchData, ref: Reference, x_name: str
           ) -> tuple[np.ndarray, np.ndarray] | None:
    """A match's (x, score) rows where both are finite (and x > 0 against samples)."""
    x = np.asarray(match.metrics.get(x_name, ()), dtype=float)
    y = score_curve(match.metrics, ref)
    if x.size == 0 or y.size != x.size:
        return None
    keep = np.isfinite(x) & np.isfinite(y)
    if x_name == "samples":
        keep &= x > 0
    return (x[keep], y[keep]) if keep.any() else None


def game_bands(matches: Sequence[MatchData], ranking: GameRanking, x_name: str = "iteration",
               quantiles: tuple[float, float] = (0.0, 1.0), max_points: int = 400) -> GameBands:
    """Bands of the score (distance to the game's reference, :mod:`analysis.scoring`) of every
    competitor of ``ranking.game`` against ``x_name``, in ranking order (best first).

    Parameters
    ----------
    matches : sequence of MatchData
        Failed matches and other games are skipped.
    ranking : GameRanking
        Gives the game, its reference, the order of the bands and the speed target.
    x_name : {"iteration", "samples"}
        Against samples, only rows with samples > 0 count, and competitors without any are
        left out (exact methods draw no samples).
    quantiles : (float, float)
        The band's edges over seeds; (0, 1) is the range from the best to the worst seed.
    """
    if x_name not in X_AXES:
        raise ValueError(f"x_name must be one of {X_AXES}, got {x_name!r}")
    curves: dict[Competitor, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for match in matches:
        if match.ok and match.game == ranking.game:
            curve = _curve(match, ranking.reference, x_name)
            if curve is not None:
                curves[match.competitor].append(curve)
    bands = tuple(band(s.competitor, curves[s.competitor], quantiles, max_points)
                  for s in ranking.standings if curves.get(s.competitor))
    return GameBands(ranking.game, x_name, ranking.reference.score_label, bands,
                     ranking.threshold, ranking.reference.exact)


@dataclass(frozen=True)
class Facet:
    """One panel of a faceted convergence figure: a leader's bands (at most ``max_curves``,
    best first) and how many more it has that only the table lists."""

    leader: str
    bands: tuple[Band, ...]
    hidden: int


def facets_by_leader(data: GameBands, leaders: Sequence[str], max_curves: int = 8
                     ) -> tuple[Facet, ...]:
    """``data`` split into one panel per leader (in the ``leaders`` order, leaders without a
    band left out), each with its followers' bands; a panel keeps its ``max_curves`` best."""
    out = []
    for leader in leaders:
        mine = [b for b in data.bands if b.competitor.leader == leader]
        if mine:
            out.append(Facet(leader, tuple(mine[:max_curves]), max(0, len(mine) - max_curves)))
    return tuple(out)
