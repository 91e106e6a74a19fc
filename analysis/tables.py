"""Ranking tables: standings -> rows of raw values, written as CSV (numbers) or Markdown (text).

A :class:`Table` keeps the raw values; each :class:`Column` knows its CSV name, its Markdown
header and how to format a value for a reader ("–" for a missing value, "not reached" for an
infinite cost).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.tournament import FailedMatch, GameRanking, OverallStanding

MISSING = "–"


def fmt_number(digits: int = 6) -> Callable[[Any], str]:
    """Format with ``digits`` significant digits; NaN as "–", inf as "not reached"."""

    def fmt(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return MISSING
        if isinstance(value, float) and math.isinf(value):
            return "not reached"
        return f"{value:.{digits}g}"

    return fmt


def fmt_text(value: Any) -> str:
    """Text in a Markdown cell: one line, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def fmt_rank(value: float) -> str:
    return MISSING if math.isnan(value) else f"{value:g}"


@dataclass(frozen=True)
class Column:
    """A table column: its CSV name, its Markdown header and its Markdown formatter
    (``markdown=False``: in the CSV only)."""

    key: str
    header: str
    fmt: Callable[[Any], str] = fmt_text
    numeric: bool = False
    markdown: bool = True


@dataclass(frozen=True)
class Table:
    """Rows of raw values (``row[column.key]``) under ``columns``."""

    columns: tuple[Column, ...]
    rows: tuple[Mapping[str, Any], ...]

    def to_markdown(self) -> str:
        """A GitHub-flavoured Markdown table (numbers right-aligned)."""
        shown = [c for c in self.columns if c.markdown]
        lines = ["| " + " | ".join(fmt_text(c.header) for c in shown) + " |",
                 "|" + "|".join("---:" if c.numeric else "---" for c in shown) + "|"]
        lines += ["| " + " | ".join(c.fmt(row[c.key]) for c in shown) + " |"
                  for row in self.rows]
        return "\n".join(lines) + "\n"

    def write_csv(self, path: str | Path) -> Path:
        """Write the raw values under the columns' keys (NaN as an empty cell)."""
        path = Path(path)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([c.key for c in self.columns])
            for row in self.rows:
                writer.writerow(["" if isinstance(v, float) and math.isnan(v) else v
                                 for v in (row[c.key] for c in self.columns)])
        return path


def _competitor_columns() -> tuple[Column, ...]:
    return (Column("rank", "rank", fmt_rank, numeric=True), Column("leader", "leader"),
            Column("follower", "follower"))


def overall_table(standings: Sequence[OverallStanding], games: Sequence[str]) -> Table:
    """The overall ranking: average rank over games (by final hyper-objective), best first."""
    columns = (
        *_competitor_columns(),
        Column("average_rank", "average rank (final f, lower is better)", fmt_number(3), True),
        Column("games", "games", fmt_number(), True),
        *(Column(f"rank_{game}", f"rank in {game}", fmt_rank, True) for game in games),
        Column("average_speed_rank", "average speed rank", fmt_number(3), True),
        Column("seeds_ok", "seeds ok", fmt_number(), True),
        Column("seeds_failed", "seeds failed", fmt_number(), True),
    )
    rows = tuple({
        "rank": s.rank, "leader": s.competitor.leader, "follower": s.competitor.follower,
        "average_rank": s.average_rank, "games": s.games,
        **{f"rank_{game}": s.game_ranks.get(game, math.nan) for game in games},
        "average_speed_rank": s.average_speed_rank, "seeds_ok": s.seeds_ok,
        "seeds_failed": s.seeds_failed,
    } for s in standings)
    return Table(columns, rows)


def game_table(ranking: GameRanking) -> Table:
    """One game's standings: final hyper-objective with its 95% CI, then speed to the target
    (in Markdown, only the cost the speed rank is based on; the CSV has both)."""
    speed = ranking.speed_basis
    has_sse = any(math.isfinite(s.sse_gap) for s in ranking.standings)
    columns = (
        *_competitor_columns(),
        Column("f_mean", "final f = -V_L, mean (lower is better)", fmt_number(), True),
        Column("f_ci_halfwidth", "± 95% CI", fmt_number(2), True),
        Column("f_ci_low", "95% CI low", numeric=True, markdown=False),
        Column("f_ci_high", "95% CI high", numeric=True, markdown=False),
        Column("leader_value", "leader value V_L", fmt_number(), True),
        Column("lower_level_gap", "lower-level gap", fmt_number(3), True),
        *((Column("sse_gap", "gap to SSE value", fmt_number(3), True),) if has_sse else ()),
        Column("seeds_ok", "seeds ok", fmt_number(), True),
        Column("seeds_failed", "seeds failed", fmt_number(), True),
        Column("reached", "seeds reaching best + tol", fmt_number(), True),
        Column("samples_to_tol", "samples to tol (median)", fmt_number(4), True,
               markdown=speed == "samples"),
        Column("seconds_to_tol", "seconds to tol (median)", fmt_number(3), True,
               markdown=speed == "seconds"),
        Column("speed_rank", f"speed rank (by {speed})", fmt_rank, True),
    )
    rows = tuple({
        "rank": s.rank, "leader": s.competitor.leader, "follower": s.competitor.follower,
        "f_mean": s.hyper_objective.mean, "f_ci_low": s.hyper_objective.low,
        "f_ci_high": s.hyper_objective.high, "f_ci_halfwidth": s.hyper_objective.half_width,
        "leader_value": s.leader_value, "lower_level_gap": s.lower_level_gap,
        "sse_gap": s.sse_gap, "seeds_ok": s.seeds_ok, "seeds_failed": s.seeds_failed,
        "reached": s.reached, "samples_to_tol": s.samples_to_tol,
        "seconds_to_tol": s.seconds_to_tol, "speed_rank": s.speed_rank,
    } for s in ranking.standings)
    return Table(columns, rows)


def failures_table(failed: Sequence[FailedMatch], max_error: int = 160) -> Table:
    """Failed matches; in Markdown each error shows its last line, cut to ``max_error``
    characters (the CSV keeps the full text)."""

    def last_line(error: str) -> str:
        lines = [line for line in error.strip().splitlines() if line.strip()]
        text = fmt_text(lines[-1] if lines else "")
        return text if len(text) <= max_error else text[:max_error - 1] + "…"

    columns = (Column("game", "game"), Column("leader", "leader"),
               Column("follower", "follower"), Column("seed", "seed", fmt_number(), True),
               Column("error", "error", last_line))
    rows = tuple({"game": f.game, "leader": f.competitor.leader,
                  "follower": f.competitor.follower, "seed": f.seed, "error": f.error}
                 for f in failed)
    return Table(columns, rows)
