"""Rankings of a tournament: what a results store holds -> per-game and overall standings.

Pure functions on match records and their metrics (:class:`MatchData`); nothing here draws or
writes a file. The conventions the report states in its headers are decided here:

**Competitor.** A competitor is a (leader, follower learner) pair. The follower learner is part of
what a user chooses, and a better follower learner makes every leader better (DESIGN, "Who owns
which policy"), so ranking pairs compares whole configurations on equal terms; the heatmaps
(:func:`game_heatmap`) then separate what the leader and what the follower contribute.

**Objective.** Every match is scored by its final hyper-objective ``f = -V_L`` (the leader's
objective at the follower's exact best response): **lower is better**.

**Ranking rule.** In each game, competitors are ranked by the mean of their final
hyper-objective over successful seeds (1 = best); equal means share the average of the ranks
they span. A competitor with no successful seed in a game ranks last there (tied with any other
such competitor). The overall ranking orders competitors by their average rank over the games
they played (ties share a rank; the table lists tied competitors by average speed rank, then
by name).

**Tolerance and speed.** In each game the target is ``best + tol``, where ``best`` is the
lowest mean final hyper-objective of any competitor and ``tol`` is :class:`ToleranceRule`:
``relative`` (1e-2) times the range (max - min) of the competitors' mean final values, or
``absolute`` (1e-3) when that range is 0. A seed *reaches* the target at the first recorded
iteration whose hyper-objective is at or below it; its cost is that row's ``samples`` and
``wall_seconds``. A competitor's cost is the median over its successful seeds, a seed that
never reaches counting as infinitely slow: so it "reaches" only when more than half its seeds
do, and otherwise it is reported as not reached. Speed ranks use samples when every successful
match of the game drew samples, and wall seconds otherwise (exact methods draw none).

**Failures.** Failed matches are counted per competitor, listed with their errors
(:func:`failed_matches`), and left out of every mean.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from stackelberg.results import MatchRecord, ResultStore

#: The summary/metrics entry every ranking is based on: f = -V_L, lower is better.
OBJECTIVE = "hyper_objective"


@dataclass(frozen=True, order=True)
class Competitor:
    """A (leader, follower learner) pair, by the labels of the tournament spec."""

    leader: str
    follower: str

    @property
    def label(self) -> str:
        return f"{self.leader} / {self.follower}"


@dataclass(frozen=True)
class MatchData:
    """One stored match and its per-iteration metrics (empty for a failed match)."""

    record: MatchRecord
    metrics: Mapping[str, np.ndarray]

    @property
    def competitor(self) -> Competitor:
        return Competitor(self.record.leader, self.record.follower)

    @property
    def game(self) -> str:
        return self.record.game

    @property
    def ok(self) -> bool:
        return self.record.ok

    def final(self, name: str) -> float:
        """A summary entry as a float (NaN when the summary lacks it)."""
        value = self.record.summary.get(name)
        return float(value) if isinstance(value, (int, float)) else math.nan


def read_matches(store: ResultStore) -> list[MatchData]:
    """Every match of ``store`` with its metrics (failed matches have none)."""
    return [MatchData(record, store.metrics(record.match_id) if record.ok else {})
            for record in store.records()]


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


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks of ``values`` in increasing order, 1 = lowest; ties share the average of the
    ranks they span; NaN ranks last (tied with other NaNs and with +inf)."""
    x = np.asarray(values, dtype=float)
    return stats.rankdata(np.where(np.isnan(x), np.inf, x), method="average")


@dataclass(frozen=True)
class ToleranceRule:
    """How close to a game's best final value counts as having converged.

    ``tol = relative * (max - min)`` of the competitors' mean final hyper-objectives in the
    game, or ``absolute`` when that range is 0 (or undefined).
    """

    relative: float = 1e-2
    absolute: float = 1e-3

    def __post_init__(self) -> None:
        # inf would make every seed "converged" at once and every threshold infinite
        if not all(isinstance(t, (int, float)) and not isinstance(t, bool)
                   and math.isfinite(t) and t > 0 for t in (self.relative, self.absolute)):
            raise ValueError(f"tolerances must be finite numbers > 0, got "
                             f"relative={self.relative!r}, absolute={self.absolute!r}")

    def tolerance(self, means: Iterable[float]) -> float:
        x = np.asarray([m for m in means if np.isfinite(m)], dtype=float)
        spread = float(x.max() - x.min()) if x.size else 0.0
        return self.relative * spread if spread > 0 else self.absolute


DEFAULT_TOLERANCE = ToleranceRule()


@dataclass(frozen=True)
class Reach:
    """Where one match first reached a target: its iteration, samples and wall seconds."""

    iteration: float
    samples: float
    seconds: float


def first_reach(metrics: Mapping[str, np.ndarray], threshold: float,
                objective: str = OBJECTIVE) -> Reach | None:
    """The first recorded row whose ``objective`` column (the hyper-objective by default) is
    ``<= threshold``; None if none is."""
    f = np.asarray(metrics.get(objective, ()), dtype=float)
    hits = np.flatnonzero(f <= threshold)
    if hits.size == 0:
        return None
    k = int(hits[0])

    def at(name: str) -> float:
        column = metrics.get(name)
        return float(column[k]) if column is not None else math.nan

    return Reach(at("iteration"), at("samples"), at("wall_seconds"))


@dataclass(frozen=True)
class Standing:
    """One competitor in one game.

    Attributes
    ----------
    competitor : Competitor
    hyper_objective : Interval
        Final ``f = -V_L`` over successful seeds: mean and 95% t-interval (lower is better).
    leader_value, lower_level_gap, sse_gap : float
        Means of the final values over successful seeds (``sse_gap`` NaN outside matrix games).
    seeds_ok, seeds_failed : int
    reached : int
        Successful seeds that reached the game's target (see the module docstring).
    samples_to_tol, seconds_to_tol : float
        Median cost to reach the target over successful seeds; ``inf`` when not reached, NaN
        when no seed succeeded.
    rank, speed_rank : float
        Rank by mean final hyper-objective and by cost to the target (1 = best, ties averaged).
    """

    competitor: Competitor
    hyper_objective: Interval
    leader_value: float
    lower_level_gap: float
    sse_gap: float
    seeds_ok: int
    seeds_failed: int
    reached: int
    samples_to_tol: float
    seconds_to_tol: float
    rank: float
    speed_rank: float


@dataclass(frozen=True)
class GameRanking:
    """The standings of one game, best first, with the target the speed columns refer to."""

    game: str
    standings: tuple[Standing, ...]
    best: float
    tolerance: float
    speed_basis: str  # "samples" or "seconds"

    @property
    def threshold(self) -> float:
        return self.best + self.tolerance


def _median_cost(costs: Sequence[float]) -> float:
    return float(np.median(costs)) if costs else math.nan


def _nanmean(values: Sequence[float]) -> float:
    x = np.asarray(values, dtype=float)
    return float(np.nanmean(x)) if np.isfinite(x).any() else math.nan


def rank_game(matches: Sequence[MatchData], game: str,
              rule: ToleranceRule = DEFAULT_TOLERANCE) -> GameRanking:
    """Rank the competitors of ``game`` (see the module docstring for every rule)."""
    by_competitor: dict[Competitor, list[MatchData]] = defaultdict(list)
    for match in matches:
        if match.game == game:
            by_competitor[match.competitor].append(match)
    if not by_competitor:
        raise ValueError(f"no match of game {game!r}")
    competitors = sorted(by_competitor)
    ok = {c: [m for m in by_competitor[c] if m.ok] for c in competitors}
    means = {c: t_interval(m.final(OBJECTIVE) for m in ok[c]) for c in competitors}
    finite = [i.mean for i in means.values() if np.isfinite(i.mean)]
    best = min(finite) if finite else math.nan
    tolerance = rule.tolerance(finite)
    all_ok = [m for c in competitors for m in ok[c]]
    basis = "samples" if all_ok and all(m.final("samples") > 0 for m in all_ok) else "seconds"

    rows = []
    for c in competitors:
        reaches = [first_reach(m.metrics, best + tolerance) for m in ok[c]]
        samples = [r.samples if r else math.inf for r in reaches]
        seconds = [r.seconds if r else math.inf for r in reaches]
        rows.append(dict(
            competitor=c, hyper_objective=means[c],
            leader_value=_nanmean([m.final("leader_value") for m in ok[c]]),
            lower_level_gap=_nanmean([m.final("lower_level_gap") for m in ok[c]]),
            sse_gap=_nanmean([m.final("sse_gap") for m in ok[c]]),
            seeds_ok=len(ok[c]), seeds_failed=len(by_competitor[c]) - len(ok[c]),
            reached=sum(r is not None for r in reaches),
            samples_to_tol=_median_cost(samples), seconds_to_tol=_median_cost(seconds)))
    ranks = average_ranks([row["hyper_objective"].mean for row in rows])
    speed_key = "samples_to_tol" if basis == "samples" else "seconds_to_tol"
    speed = average_ranks([row[speed_key] for row in rows])
    standings = [Standing(**row, rank=float(r), speed_rank=float(s))
                 for row, r, s in zip(rows, ranks, speed, strict=True)]
    standings.sort(key=lambda s: (s.rank, s.speed_rank, s.competitor))
    return GameRanking(game, tuple(standings), best, tolerance, basis)


def rank_games(matches: Sequence[MatchData],
               rule: ToleranceRule = DEFAULT_TOLERANCE) -> list[GameRanking]:
    """:func:`rank_game` for every game in ``matches``, in name order."""
    return [rank_game(matches, game, rule) for game in sorted({m.game for m in matches})]


@dataclass(frozen=True)
class OverallStanding:
    """A competitor across games: its average rank (the overall criterion) and the details."""

    competitor: Competitor
    rank: float
    average_rank: float
    average_speed_rank: float
    game_ranks: Mapping[str, float]
    seeds_ok: int
    seeds_failed: int

    @property
    def games(self) -> int:
        return len(self.game_ranks)


def overall_ranking(rankings: Sequence[GameRanking]) -> tuple[OverallStanding, ...]:
    """Competitors ordered by their average rank over the games they played (1 = best).

    A competitor that played more games ranks ahead of one that played fewer (a pair that is
    excluded from the hard games must not win by its absence); among those that played as many
    games, the lower average rank wins. Equal keys share a rank; they are listed by average
    speed rank, then by name.
    """
    ranks: dict[Competitor, dict[str, float]] = defaultdict(dict)
    speed: dict[Competitor, list[float]] = defaultdict(list)
    seeds: dict[Competitor, list[int]] = defaultdict(lambda: [0, 0])
    for ranking in rankings:
        for s in ranking.standings:
            ranks[s.competitor][ranking.game] = s.rank
            speed[s.competitor].append(s.speed_rank)
            seeds[s.competitor][0] += s.seeds_ok
            seeds[s.competitor][1] += s.seeds_failed
    competitors = sorted(ranks)
    averages = [float(np.mean(list(ranks[c].values()))) for c in competitors]
    keys = [(-len(ranks[c]), a) for c, a in zip(competitors, averages, strict=True)]
    overall = stats.rankdata([sorted(set(keys)).index(k) for k in keys], method="average")
    standings = [
        OverallStanding(c, float(r), a, float(np.mean(speed[c])), dict(ranks[c]), *seeds[c])
        for c, a, r in zip(competitors, averages, overall, strict=True)
    ]
    standings.sort(key=lambda s: (s.rank, s.average_speed_rank, s.competitor))
    return tuple(standings)


@dataclass(frozen=True)
class FailedMatch:
    """A match that failed, with its error text."""

    game: str
    competitor: Competitor
    seed: int
    error: str


def failed_matches(matches: Sequence[MatchData]) -> list[FailedMatch]:
    """Every failed match, in (game, competitor, seed) order."""
    failed = [FailedMatch(m.game, m.competitor, m.record.seed, m.record.error or "")
              for m in matches if not m.ok]
    return sorted(failed, key=lambda f: (f.game, f.competitor, f.seed))


@dataclass(frozen=True)
class Heatmap:
    """A leaders x followers matrix (NaN where a pair has no value), best pairs first.

    ``values[i, j]`` belongs to ``leaders[i]`` with ``followers[j]``; lower is better.
    """

    title: str
    leaders: tuple[str, ...]
    followers: tuple[str, ...]
    values: np.ndarray
    value_label: str


def _heatmap(title: str, label: str, ordered: Sequence[tuple[Competitor, float]]) -> Heatmap:
    """Lay out ``(competitor, value)`` pairs, given best first, as a leaders x followers grid;
    leaders and followers appear in the order of their best pair."""
    leaders = tuple(dict.fromkeys(c.leader for c, _ in ordered))
    followers = tuple(dict.fromkeys(c.follower for c, _ in ordered))
    values = np.full((len(leaders), len(followers)), np.nan)
    for c, value in ordered:
        values[leaders.index(c.leader), followers.index(c.follower)] = value
    return Heatmap(title, leaders, followers, values, label)


def game_heatmap(ranking: GameRanking) -> Heatmap:
    """Mean final hyper-objective of every (leader, follower) pair in one game."""
    return _heatmap(f"{ranking.game}: mean final hyper-objective",
                    "mean final f = -V_L (lower is better)",
                    [(s.competitor, s.hyper_objective.mean) for s in ranking.standings])


def overall_heatmap(standings: Sequence[OverallStanding]) -> Heatmap:
    """Average rank over games of every (leader, follower) pair."""
    return _heatmap("All games: average rank", "average rank (1 = best)",
                    [(s.competitor, s.average_rank) for s in standings])
