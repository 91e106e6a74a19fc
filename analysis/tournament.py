"""Rankings of a tournament: stored matches -> per-game and overall standings, and heatmaps.

Pure functions on match records and their metrics (:class:`MatchData`); nothing here draws or
writes a file. The conventions the report states in its headers are decided here:

**Competitor.** A competitor is a (leader, follower learner) pair. The follower learner is part
of what a user chooses, and a better follower learner makes every leader better (DESIGN, "Who
owns which policy"), so ranking pairs compares whole configurations on equal terms; the heatmaps
then separate what the leader and what the follower contribute.

**Score.** Every match is scored by its final distance to the game's reference
(:mod:`analysis.scoring`): the strong Stackelberg value where it is known, else the best leader
value any match found; **lower is better**, the same objective for every leader.

**Ranking rule.** In each game, competitors are ranked by their mean score over successful seeds
(1 = best); means equal to within ``TIE_RTOL`` of the game's scale (rounding error) share the
average of the ranks they span. A competitor with no
successful seed ranks last there. The overall ranking (:func:`overall_ranking`) is the one
ranking of pairs across games: the table lists it and the overall heatmap draws it.

**Tolerance and speed.** In each game the target is a score of ``best + tol``, ``best`` being
the lowest mean score and ``tol`` given by :class:`ToleranceRule`. A seed *reaches* the target at
the first recorded row from which its score stays at or below it to the end
(:func:`settled_reach`: passing through the target and leaving it is not converging); its costs
are that row's samples, iteration and wall seconds. A competitor's cost is the median over its
successful seeds, a seed that never reaches counting as infinitely costly. The speed rank orders
by samples, then by iterations: both are deterministic for a given seed, whereas wall time
depends on the machine and its load, so it is shown but never ranked on. Exact leaders draw no
samples and so are ordered by iterations.

**Failures.** Failed matches are counted per competitor, listed with their errors, and left out
of every mean.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from analysis.matches import (
    Competitor,
    FailedMatch,
    MatchData,
    failed_matches,
    read_matches,
)
from analysis.scoring import (
    HYPER,
    Reference,
    final_score,
    game_reference,
    hyper_objective_at_tau,
    score_curve,
)
from analysis.stats import Interval, average_ranks, t_interval, tied_ranks

#: Name of the score column added to a match's metrics for :func:`first_reach`.
SCORE = "score"
#: The column the old reports ranked on (kept for callers that rank on it themselves).
OBJECTIVE = HYPER


@dataclass(frozen=True)
class ToleranceRule:
    """How close to a game's best mean score counts as having converged.

    ``tol = relative * (max - min)`` of the competitors' mean scores in the game, or
    ``absolute`` when that range is 0 (or undefined).
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


def _reach_at(metrics: Mapping[str, np.ndarray], k: int) -> Reach:
    def at(name: str) -> float:
        column = metrics.get(name)
        return float(column[k]) if column is not None else math.nan

    return Reach(at("iteration"), at("samples"), at("wall_seconds"))


def first_reach(metrics: Mapping[str, np.ndarray], threshold: float,
                objective: str = OBJECTIVE) -> Reach | None:
    """The first recorded row whose ``objective`` column is ``<= threshold``; None if none is."""
    f = np.asarray(metrics.get(objective, ()), dtype=float)
    hits = np.flatnonzero(f <= threshold)
    return _reach_at(metrics, int(hits[0])) if hits.size else None


def settled_reach(metrics: Mapping[str, np.ndarray], threshold: float,
                  objective: str = SCORE) -> Reach | None:
    """The first recorded row from which the ``objective`` column stays ``<= threshold`` to the
    end; None if the last row is above it. A match that passes through the target and leaves
    it has not converged there, so it does not count as fast."""
    f = np.asarray(metrics.get(objective, ()), dtype=float)
    outside = np.flatnonzero(~(f <= threshold))  # NaN counts as outside
    if f.size == 0 or (outside.size and outside[-1] == f.size - 1):
        return None
    return _reach_at(metrics, int(outside[-1]) + 1 if outside.size else 0)


#: Scores (and average ranks) closer than this, relative to the game's scale, tie.
TIE_RTOL = 1e-9


@dataclass(frozen=True)
class Standing:
    """One competitor in one game.

    Attributes
    ----------
    competitor : Competitor
    score : Interval
        Final distance to the game's reference over successful seeds: mean and 95% t-interval.
    deterministic : bool
        At least two successful seeds, all with the same final score: the seed changed nothing.
    leader_value, lower_level_gap : float
        Means of the final values over successful seeds.
    hyper_objective : float
        Mean final hyper-objective at the follower's configured tau; NaN when some seed's was
        recorded at the leader's own tau (shown, never ranked on).
    seeds_ok, seeds_failed : int
    reached : int
        Successful seeds that reached the game's target.
    samples_to_tol, iterations_to_tol, seconds_to_tol : float
        Median cost to reach the target over successful seeds; ``inf`` when not reached, NaN
        when no seed succeeded.
    rank, speed_rank : float
        Rank by mean score and by (samples, iterations) to the target (1 = best, ties averaged).
    """

    competitor: Competitor
    score: Interval
    deterministic: bool
    leader_value: float
    hyper_objective: float
    lower_level_gap: float
    seeds_ok: int
    seeds_failed: int
    reached: int
    samples_to_tol: float
    iterations_to_tol: float
    seconds_to_tol: float
    rank: float
    speed_rank: float


@dataclass(frozen=True)
class GameRanking:
    """The standings of one game, best first, with its reference and the speed target."""

    game: str
    standings: tuple[Standing, ...]
    reference: Reference
    best: float
    tolerance: float

    @property
    def threshold(self) -> float:
        return self.best + self.tolerance


def _median(costs: Sequence[float]) -> float:
    return float(np.median(costs)) if costs else math.nan


def _nanmean(values: Sequence[float]) -> float:
    x = np.asarray(values, dtype=float)
    return float(np.nanmean(x)) if np.isfinite(x).any() else math.nan


def scored_metrics(match: MatchData, ref: Reference) -> dict[str, np.ndarray]:
    """A match's metrics with its :data:`SCORE` column (distance to ``ref`` per row)."""
    return {**match.metrics, SCORE: score_curve(match.metrics, ref)}


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
    all_ok = [m for c in competitors for m in ok[c]]
    ref = game_reference([m.record.summary for m in all_ok], [m.metrics for m in all_ok])
    finals = {c: [final_score(m.record.summary, ref) for m in ok[c]] for c in competitors}
    means = {c: t_interval(finals[c]) for c in competitors}
    finite = [i.mean for i in means.values() if np.isfinite(i.mean)]
    best = min(finite) if finite else math.nan
    tolerance = rule.tolerance(finite)

    rows = []
    for c in competitors:
        reaches = [settled_reach(scored_metrics(m, ref), best + tolerance) for m in ok[c]]
        rows.append(dict(
            competitor=c, score=means[c],
            deterministic=len(finals[c]) >= 2 and len(set(finals[c])) == 1,
            leader_value=_nanmean([m.final("leader_value") for m in ok[c]]),
            hyper_objective=float(np.mean([hyper_objective_at_tau(
                m.record.summary, m.metrics, m.record.config) for m in ok[c]]))
            if ok[c] else math.nan,
            lower_level_gap=_nanmean([m.final("lower_level_gap") for m in ok[c]]),
            seeds_ok=len(ok[c]), seeds_failed=len(by_competitor[c]) - len(ok[c]),
            reached=sum(r is not None for r in reaches),
            samples_to_tol=_median([r.samples if r else math.inf for r in reaches]),
            iterations_to_tol=_median([r.iteration if r else math.inf for r in reaches]),
            seconds_to_tol=_median([r.seconds if r else math.inf for r in reaches])))
    scale = abs(ref.value) if math.isfinite(ref.value) else 0.0
    ranks = average_ranks([row["score"].mean for row in rows], TIE_RTOL * max(1.0, scale))
    speed = tied_ranks([(row["samples_to_tol"], row["iterations_to_tol"]) for row in rows])
    standings = [Standing(**row, rank=float(r), speed_rank=float(s))
                 for row, r, s in zip(rows, ranks, speed, strict=True)]
    standings.sort(key=lambda s: (s.rank, s.speed_rank, s.competitor))
    return GameRanking(game, tuple(standings), ref, best, tolerance)


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
    overall = tied_ranks([(-len(ranks[c]), a) for c, a in zip(competitors, averages, strict=True)],
                         TIE_RTOL)
    standings = [
        OverallStanding(c, float(r), a, float(np.mean(speed[c])), dict(ranks[c]), *seeds[c])
        for c, a, r in zip(competitors, averages, overall, strict=True)
    ]
    standings.sort(key=lambda s: (s.rank, s.average_speed_rank, s.competitor))
    return tuple(standings)


@dataclass(frozen=True)
class Heatmap:
    """A leaders x followers matrix (NaN where a pair has no value); lower is better.

    ``values[i, j]`` belongs to ``leaders[i]`` with ``followers[j]``; ``best`` lists the cells of
    the pairs ranked first by the ranking the heatmap draws (so the table and the heatmap agree
    by construction); ``log``: the values span decades and are best coloured on a log scale.
    """

    title: str
    leaders: tuple[str, ...]
    followers: tuple[str, ...]
    values: np.ndarray
    value_label: str
    best: tuple[tuple[int, int], ...]
    log: bool = False


def _order(names: Iterable[str], preferred: Sequence[str] | None) -> tuple[str, ...]:
    """``names`` in the ``preferred`` order, any others after them in name order."""
    names = set(names)
    first = [n for n in (preferred or ()) if n in names]
    return tuple(first + sorted(names - set(first)))


def _heatmap(title: str, label: str, cells: Sequence[tuple[Competitor, float, float]],
             leaders: Sequence[str] | None, followers: Sequence[str] | None,
             log: bool) -> Heatmap:
    """Lay out ``(competitor, value, rank)`` as a leaders x followers grid in a fixed order."""
    rows = _order((c.leader for c, _, _ in cells), leaders)
    cols = _order((c.follower for c, _, _ in cells), followers)
    values = np.full((len(rows), len(cols)), np.nan)
    top = min((rank for _, _, rank in cells), default=math.nan)
    best = []
    for c, value, rank in cells:
        i, j = rows.index(c.leader), cols.index(c.follower)
        values[i, j] = value
        if rank == top and math.isfinite(value):
            best.append((i, j))
    return Heatmap(title, rows, cols, values, label, tuple(sorted(best)), log)


def game_heatmap(ranking: GameRanking, leaders: Sequence[str] | None = None,
                 followers: Sequence[str] | None = None) -> Heatmap:
    """Mean final score of every (leader, follower) pair in one game; the outlined cells are
    the game table's first."""
    return _heatmap(f"{ranking.game}: mean final score",
                    f"{ranking.reference.score_label} (lower is better)",
                    [(s.competitor, s.score.mean, s.rank) for s in ranking.standings],
                    leaders, followers, log=True)


def overall_heatmap(standings: Sequence[OverallStanding], leaders: Sequence[str] | None = None,
                    followers: Sequence[str] | None = None) -> Heatmap:
    """The overall rank of every (leader, follower) pair (the overall table's ``rank``)."""
    return _heatmap("All games: overall rank", "overall rank (1 = best)",
                    [(s.competitor, s.rank, s.rank) for s in standings],
                    leaders, followers, log=False)


__all__ = ["DEFAULT_TOLERANCE", "OBJECTIVE", "SCORE", "Competitor", "FailedMatch",
           "GameRanking", "Heatmap", "Interval", "MatchData", "OverallStanding", "Reach",
           "Standing", "ToleranceRule", "average_ranks", "failed_matches", "first_reach",
           "settled_reach",
           "game_heatmap", "overall_heatmap", "overall_ranking", "rank_game", "rank_games",
           "read_matches", "scored_metrics", "t_interval"]
