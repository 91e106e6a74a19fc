"""Ranking tables: standings -> rows of raw values, written as CSV (numbers) or Markdown (text).

A :class:`Table` keeps the raw values; each :class:`Column` knows its CSV name, its Markdown
header and how to format a value for a reader ("–" for a missing value, "not reached" for an
infinite cost).
"""

from __future__ import annotations

import csv
import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.matches import FailedMatch
from analysis.tournament import GameRanking, OverallStanding, Standing

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
    (``markdown=False``: in the CSV only; ``csv=False``: for readers only)."""

    key: str
    header: str
    fmt: Callable[[Any], str] = fmt_text
    numeric: bool = False
    markdown: bool = True
    csv: bool = True


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

    def to_html(self, table_id: str | None = None) -> str:
        """The Markdown table's cells as an HTML ``<table>`` (numbers right-aligned)."""
        shown = [c for c in self.columns if c.markdown]

        def cell(tag: str, column: Column, text: str) -> str:
            align = ' class="num"' if column.numeric else ""
            return f"<{tag}{align}>{html.escape(text)}</{tag}>"

        head = "".join(cell("th", c, c.header) for c in shown)
        # rows that share the first row's rank (the winners, ties included) are marked
        top = self.rows[0].get("rank") if self.rows else None

        def opening(row: Mapping[str, Any]) -> str:
            return '<tr class="top">' if top is not None and row.get("rank") == top else "<tr>"

        body = "".join(opening(row) + "".join(cell("td", c, c.fmt(row[c.key])) for c in shown)
                       + "</tr>\n" for row in self.rows)
        ident = f' id="{html.escape(table_id)}"' if table_id else ""
        return (f"<table{ident}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n"
                "</table>\n")

    def write_csv(self, path: str | Path) -> Path:
        """Write the raw values under the columns' keys (NaN as an empty cell)."""
        path = Path(path)
        stored = [c for c in self.columns if c.csv]
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([c.key for c in stored])
            for row in self.rows:
                writer.writerow(["" if isinstance(v, float) and math.isnan(v) else v
                                 for v in (row[c.key] for c in stored)])
        return path


def _competitor_columns() -> tuple[Column, ...]:
    return (Column("rank", "rank", fmt_rank, numeric=True), Column("leader", "leader"),
            Column("follower", "follower"))


def overall_table(standings: Sequence[OverallStanding], games: Sequence[str]) -> Table:
    """The overall ranking: pairs that played more games first, then by average rank over
    games (each game ranked by mean final score); best first."""
    columns = (
        *_competitor_columns(),
        Column("average_rank", "average rank over games (lower is better)", fmt_number(3),
               True),
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


def spread_text(standing: Standing) -> str | float:
    """The ± column of a game table: the 95% CI half-width, or why there is none."""
    if standing.deterministic:
        return "identical over seeds"
    if standing.score.n == 1:
        return "1 seed"
    return standing.score.half_width


def fmt_spread(value: Any) -> str:
    return value if isinstance(value, str) else fmt_number(2)(value)


def game_table(ranking: GameRanking) -> Table:
    """One game's standings: the mean final score (distance to the game's reference) with its
    95% CI, the values it comes from, then the cost to the speed target."""
    ref = ranking.reference
    kind = "exact SSE" if ref.exact else "best found"
    columns = (
        *_competitor_columns(),
        Column("score_mean", f"{ref.score_label}, mean (lower is better)", fmt_number(4),
               True),
        Column("score_spread", "± 95% CI", fmt_spread, True, csv=False),
        Column("deterministic", "identical over seeds", markdown=False),
        Column("score_ci_low", "95% CI low", numeric=True, markdown=False),
        Column("score_ci_high", "95% CI high", numeric=True, markdown=False),
        Column("leader_value", "V_L (sampled, vs the learned follower)" if ref.sampled
               else "V_L vs exact best response", fmt_number(6), True),
        Column("hyper_objective", "hyper-objective f at follower's tau (not ranked)",
               fmt_number(6), True),
        Column("lower_level_gap", "lower-level gap", fmt_number(3), True),
        Column("seeds_ok", "seeds ok", fmt_number(), True),
        Column("seeds_failed", "seeds failed", fmt_number(), True),
        Column("reached", "seeds reaching target", fmt_number(), True),
        Column("samples_to_tol", "samples to target (median)", fmt_number(4), True),
        Column("iterations_to_tol", "iterations to target (median)", fmt_number(4), True),
        Column("seconds_to_tol", "wall s to target (not ranked)", fmt_number(2), True),
        Column("speed_rank", "speed rank (samples, then iterations)", fmt_rank, True),
        Column("reference", "reference", markdown=False),
    )
    rows = tuple({
        "rank": s.rank, "leader": s.competitor.leader, "follower": s.competitor.follower,
        "score_mean": s.score.mean, "score_spread": spread_text(s),
        "deterministic": s.deterministic, "score_ci_low": s.score.low,
        "score_ci_high": s.score.high, "leader_value": s.leader_value,
        "hyper_objective": s.hyper_objective, "lower_level_gap": s.lower_level_gap,
        "seeds_ok": s.seeds_ok, "seeds_failed": s.seeds_failed, "reached": s.reached,
        "samples_to_tol": s.samples_to_tol, "iterations_to_tol": s.iterations_to_tol,
        "seconds_to_tol": s.seconds_to_tol, "speed_rank": s.speed_rank,
        "reference": f"{kind} {ref.value:.12g}",
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
