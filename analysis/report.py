"""The tournament report: a results store -> ranking tables (CSV), figures (PNG) and ``index.md``.

``index.md`` opens with the overall ranking, so a reader sees at once which leader (and follower
learner) to use; then, per game, its table, its convergence bands and its heatmap; then the
failed matches. The rules behind every number are those of :mod:`analysis.tournament`.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis import report_figures as figures
from analysis.bands import X_AXES, game_bands
from analysis.tables import failures_table, fmt_text, game_table, overall_table
from analysis.tournament import (
    DEFAULT_TOLERANCE,
    GameRanking,
    MatchData,
    OverallStanding,
    ToleranceRule,
    failed_matches,
    game_heatmap,
    overall_heatmap,
    overall_ranking,
    rank_games,
    read_matches,
)
from stackelberg.results import FILENAME, ResultStore, StoreError

RANKING_RULE = (
    "Competitors are (leader, follower learner) pairs. In each game they are ranked by their "
    "mean final hyper-objective f = -V_L over successful seeds (**lower is better**; equal "
    "means share the average rank; a pair with no successful seed ranks last); the overall "
    "rank orders pairs by the number of games they played (more first), then by their average "
    "rank over those games. The speed rank orders "
    "pairs by the median samples (or wall seconds, when some match drew none) at which a seed "
    "first came within the tolerance of the game's best mean final value; a seed that never "
    "did counts as infinitely slow. The tolerance is {relative:g} x the range of the pairs' "
    "mean final values in the game ({absolute:g} when that range is 0). Failed matches are "
    "left out of every mean."
)


class ReportError(ValueError):
    """The directory holds nothing to report on (a user error, not a bug)."""


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote, every path inside ``out_dir``."""

    out_dir: Path
    index: Path
    tables: tuple[Path, ...]
    figures: tuple[Path, ...]


def read_store(store_dir: str | Path) -> list[MatchData]:
    """The matches of the results store in ``store_dir``.

    Raises
    ------
    ReportError
        If ``store_dir`` is not a directory, holds no results store, or the store is empty.
    """
    store_dir = Path(store_dir)
    if not store_dir.is_dir():
        raise ReportError(f"{store_dir} is not a directory")
    if not (store_dir / FILENAME).is_file():
        raise ReportError(f"{store_dir} holds no {FILENAME}: it is not a tournament output "
                          "directory (run `stackelberg tournament` into it first)")
    try:
        with ResultStore(store_dir, readonly=True) as store:
            matches = read_matches(store)
    except StoreError as err:  # not a store, damaged, another database: left as it is
        raise ReportError(str(err)) from None
    except sqlite3.DatabaseError as err:
        raise ReportError(f"{store_dir / FILENAME} cannot be read as a results store: {err}"
                          ) from None
    if not matches:
        raise ReportError(f"{store_dir / FILENAME} holds no match yet")
    return matches


def slugs(names: Sequence[str]) -> dict[str, str]:
    """A distinct file-name-safe slug per name (``stackelberg/matrix-v0`` ->
    ``stackelberg_matrix-v0``)."""
    out: dict[str, str] = {}
    for name in names:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_.") or "game"
        slug, k = base, 2
        while slug in out.values():
            slug, k = f"{base}_{k}", k + 1
        out[name] = slug
    return out


def _headline(overall: Sequence[OverallStanding]) -> str:
    if overall[0].seeds_ok == 0:
        return "No match succeeded: there is nothing to rank (the failures are listed below)."
    top = [s for s in overall if s.rank == overall[0].rank]
    names = ", ".join(f"**{fmt_text(s.competitor.leader)}** with follower "
                      f"**{fmt_text(s.competitor.follower)}**" for s in top)
    tie = " (tied)" if len(top) > 1 else ""
    return (f"Best overall{tie}: {names}, average rank {top[0].average_rank:.3g} over "
            f"{top[0].games} game(s), by final hyper-objective f = -V_L (lower is better).")


def _game_section(ranking: GameRanking, table_file: str,
                  figure_files: Sequence[str]) -> list[str]:
    if math.isfinite(ranking.best):
        target = (f"Best mean final f: {ranking.best:.6g}; tolerance {ranking.tolerance:.2g} "
                  f"(target f <= {ranking.threshold:.6g}); speed measured in "
                  f"{ranking.speed_basis}.")
    else:
        target = "No match of this game succeeded."
    lines = [f"## Game `{ranking.game}`", "", game_table(ranking).to_markdown(),
             f"{target} CSV: [{table_file}]({table_file}).", ""]
    lines += [f"![{ranking.game}: {name.split('_', 1)[0]}]({name})\n" for name in figure_files]
    return lines


def write_report(store_dir: str | Path, out_dir: str | Path | None = None,
                 rule: ToleranceRule = DEFAULT_TOLERANCE, dpi: int = 100) -> ReportFiles:
    """Write the report of the results store in ``store_dir``.

    Parameters
    ----------
    store_dir : str or Path
        A tournament output directory (it holds ``results.sqlite``).
    out_dir : str or Path, optional
        Where to write; default ``store_dir / "report"``. Existing files are overwritten.
    rule : ToleranceRule
        The tolerance of the speed columns.
    dpi : int
        Resolution of the PNG figures.

    Returns
    -------
    ReportFiles

    Raises
    ------
    ReportError
        See :func:`read_store`.
    """
    matches = read_store(store_dir)
    out = Path(out_dir) if out_dir is not None else Path(store_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    rankings = rank_games(matches, rule)
    overall = overall_ranking(rankings)
    failures = failed_matches(matches)
    games = [r.game for r in rankings]
    slug = slugs(games)
    styles = figures.competitor_styles([s.competitor for s in overall])
    tables: list[Path] = []
    pngs: list[Path] = []

    def table(name: str, data) -> str:
        tables.append(data.write_csv(out / name))
        return name

    def figure(name: str, fig) -> str:
        figures.save(fig, out / name, dpi)
        pngs.append(out / name)
        return name

    overall_csv = table("rankings_overall.csv", overall_table(overall, games))
    index = ["# Tournament report", "", _headline(overall), "",
             overall_table(overall, games).to_markdown(),
             RANKING_RULE.format(relative=rule.relative, absolute=rule.absolute),
             f"CSV: [{overall_csv}]({overall_csv}). {len(matches)} match(es), "
             f"{len(failures)} failed" + (" (listed at the end)." if failures else "."), ""]
    if len(overall) > 1:
        name = figure("heatmap_overall.png", figures.heatmap_figure(overall_heatmap(overall)))
        index += [f"![average rank of every pair]({name})", ""]
    for ranking in rankings:
        csv_name = table(f"rankings_{slug[ranking.game]}.csv", game_table(ranking))
        panels = [game_bands(matches, ranking, x) for x in X_AXES]
        panels = [p for p in panels if p.bands]
        names = []
        if panels:
            names.append(figure(f"convergence_{slug[ranking.game]}.png",
                                figures.convergence_figure(panels, styles)))
        heat = game_heatmap(ranking)
        if heat.values.size > 1 and np.isfinite(heat.values).any():
            names.append(figure(f"heatmap_{slug[ranking.game]}.png",
                                figures.heatmap_figure(heat)))
        index += _game_section(ranking, csv_name, names)
    index += [f"## Failed matches ({len(failures)})", ""]
    if failures:
        name = table("failed_matches.csv", failures_table(failures))
        index += [failures_table(failures).to_markdown(),
                  f"Full error texts: [{name}]({name}).", ""]
    else:
        index += ["None.", ""]
    index_path = out / "index.md"
    index_path.write_text("\n".join(index))
    return ReportFiles(out, index_path, tuple(tables), tuple(pngs))
