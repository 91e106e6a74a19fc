"""The tournament report: a results store -> ranking tables (CSV), figures (PNG and SVG),
``index.md`` (for GitHub) and ``index.html`` (one self-contained page).

Both indexes open with the overall ranking, so a reader sees at once which leader (and follower
learner) to use; then, per game, what it is scored against, its table, its convergence figures
and its heatmap; then the failed matches and the settings the tournament ran with. The rules
behind every number are those of :mod:`analysis.tournament` and :mod:`analysis.scoring`.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis import report_figures as figures
from analysis.bands import X_AXES, game_bands
from analysis.document import (
    Document,
    FigureBlock,
    Section,
    TableBlock,
    Text,
    to_html,
    to_markdown,
)
from analysis.palette import make_palette
from analysis.tables import Column, Table, failures_table, fmt_text, game_table, overall_table
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
    "Competitors are (leader, follower learner) pairs, all scored on one objective: the "
    "leader's value V_L against an exact unregularized best response (in a game known only "
    "through sampling: a Monte-Carlo estimate against the follower as learned), as a distance "
    "to the "
    "game's reference (the strong Stackelberg value where it is known, else the best V_L any "
    "match found; **lower is better**; a leader's own entropy schedule never changes its "
    "score). In each game pairs are ranked by their mean final score over successful seeds "
    "(means equal up to rounding, 1e-9 relative, share the average rank; a pair with no "
    "successful seed ranks last). The overall rank puts pairs that played more games first, "
    "then orders them by average rank{heatmap}. The speed "
    "rank orders pairs by the median samples, then iterations, from which a seed stays within "
    "the tolerance of the game's best mean score to the end (a seed that never settles there "
    "counts as infinitely slow; exact leaders draw no samples); both are deterministic, wall "
    "time is shown but never ranked on. The tolerance is {relative:g} x the range of the "
    "pairs' mean scores in the game ({absolute:g} when that range is 0). \"identical over "
    "seeds\": every seed gave the same final score, so there is no interval to show. Failed "
    "matches are left out of every mean."
)


class ReportError(ValueError):
    """The directory holds nothing to report on (a user error, not a bug)."""


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote, every path inside ``out_dir``."""

    out_dir: Path
    index: Path
    html: Path
    tables: tuple[Path, ...]
    figures: tuple[Path, ...]


def read_store(store_dir: str | Path) -> list[MatchData]:
    """The matches of the results store in ``store_dir``.

    Raises
    ------
    ReportError
        If ``store_dir`` is not a directory, holds no results store, or the store is empty.
    """
    return _read(store_dir)[0]


def _read(store_dir: str | Path) -> tuple[list[MatchData], dict[str, Any] | None]:
    store_dir = Path(store_dir)
    if not store_dir.is_dir():
        raise ReportError(f"{store_dir} is not a directory")
    if not (store_dir / FILENAME).is_file():
        raise ReportError(f"{store_dir} holds no {FILENAME}: it is not a tournament output "
                          "directory (run `stackelberg tournament` into it first)")
    try:
        with ResultStore(store_dir, readonly=True) as store:
            matches, spec = read_matches(store), store.spec()
    except StoreError as err:  # not a store, damaged, another database: left as it is
        raise ReportError(str(err)) from None
    except sqlite3.DatabaseError as err:
        raise ReportError(f"{store_dir / FILENAME} cannot be read as a results store: {err}"
                          ) from None
    if not matches:
        raise ReportError(f"{store_dir / FILENAME} holds no match yet")
    return matches, spec


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
            f"{top[0].games} game(s), by distance to each game's reference (lower is better).")


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))


def settings_table(spec: Mapping[str, Any]) -> Table:
    """The spec the tournament ran with, one row per entry (games, leaders, followers, budget,
    seeds, exclusions)."""
    rows: list[dict[str, str]] = []

    def add(kind: str, name: str, entry: Mapping[str, Any], skip: tuple[str, ...] = ()) -> None:
        text = ", ".join(f"{k} = {_value(v)}" for k, v in sorted(entry.items()) if k not in skip)
        rows.append({"kind": kind, "name": name, "settings": text or "defaults"})

    rows.append({"kind": "seeds", "name": "", "settings": _value(spec.get("seeds", []))})
    if isinstance(spec.get("budget"), Mapping):
        add("budget", "every match", spec["budget"])
    for kind, key in (("game", "games"), ("leader", "leaders"), ("follower", "followers")):
        for entry in spec.get(key, []):
            if isinstance(entry, Mapping):
                add(kind, str(entry.get("label", "")), entry, skip=("label",))
    for entry in spec.get("exclude", []):
        if isinstance(entry, Mapping):
            add("exclude", "", entry)
    columns = (Column("kind", "entry"), Column("name", "label"), Column("settings", "settings"))
    return Table(columns, tuple(rows))


def _budget_line(spec: Mapping[str, Any] | None) -> str:
    if not spec:
        return "The store holds no spec: settings unknown."
    budget = spec.get("budget", {})
    budget = ", ".join(f"{k} = {_value(v)}" for k, v in sorted(budget.items())) or "defaults"
    overrides = [f"{e.get('label')}: {_value(e['budget'])}" for e in spec.get("leaders", [])
                 if isinstance(e, Mapping) and "budget" in e]
    extra = f"; per-leader budgets: {'; '.join(overrides)}" if overrides else ""
    taus = sorted({f"{e.get('label')} tau = {e.get('tau', 'default')}"
                   for e in spec.get("followers", []) if isinstance(e, Mapping)})
    return (f"Settings: seeds {_value(spec.get('seeds', []))}; budget {budget}{extra}; "
            f"followers {', '.join(taus)} (all settings at the end).")


def _game_blocks(ranking: GameRanking, slug: str, figure_blocks: Sequence[FigureBlock],
                 game_entry: Mapping[str, Any] | None) -> tuple:
    ref = ranking.reference
    if np.isfinite(ranking.best):
        target = (f"Best mean score {ranking.best:.4g}; speed target: score <= "
                  f"{ranking.threshold:.4g} (tolerance {ranking.tolerance:.2g}).")
    else:
        target = "No match of this game succeeded."
    blocks: list = [Text(ref.describe() + " " + target)]
    if game_entry:
        settings = ", ".join(f"{k} = {_value(v)}" for k, v in sorted(game_entry.items())
                             if k != "label")
        blocks.append(Text(f"Game settings: {settings}."))
    blocks.append(TableBlock(game_table(ranking), f"rankings_{slug}.csv", f"ranking-{slug}"))
    return (*blocks, *figure_blocks)


def write_report(store_dir: str | Path, out_dir: str | Path | None = None,
                 rule: ToleranceRule = DEFAULT_TOLERANCE, dpi: int = 130,
                 matches: Sequence[MatchData] | None = None, draw: bool = True) -> ReportFiles:
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
        Resolution of the PNG figures (the SVGs are vector graphics).
    matches : sequence of MatchData, optional
        ``read_store(store_dir)``, when the caller has read it already.
    draw : bool
        False: no figures (``stackelberg report --no-figures``), only the tables, the same as
        with them, and the index. Drawing is most of a report's CPU time (about 0.3 s per
        figure in PNG and SVG).

    Raises
    ------
    ReportError
        See :func:`read_store`.
    """
    stored, spec = _read(store_dir)
    matches = stored if matches is None else matches
    out = Path(out_dir) if out_dir is not None else Path(store_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    rankings = rank_games(matches, rule)
    overall = overall_ranking(rankings)
    failures = failed_matches(matches)
    games = [r.game for r in rankings]
    slug = slugs(games)
    palette = make_palette((s.competitor.leader for s in overall),
                           (s.competitor.follower for s in overall), spec)
    game_entries = {e.get("label"): e for e in (spec or {}).get("games", [])
                    if isinstance(e, Mapping)}
    tables: list[Path] = []
    written: list[Path] = []

    def figure(stem: str, fig, alt: str, caption: str = "") -> FigureBlock:
        written.extend(figures.save_png_svg(fig, out / stem, dpi))
        return FigureBlock(stem, alt, caption)

    def table(block: TableBlock) -> TableBlock:
        if block.csv:
            tables.append(block.table.write_csv(out / block.csv))
        return block

    overall_blocks: list = [
        table(TableBlock(overall_table(overall, games), "rankings_overall.csv",
                         "ranking-overall")),
        Text(RANKING_RULE.format(relative=rule.relative, absolute=rule.absolute,
                                 heatmap="; the overall heatmap draws the same ranks"
                                 if draw and len(overall) > 1 else ""))]
    if draw and len(overall) > 1:
        heat = overall_heatmap(overall, palette.leaders, palette.followers)
        overall_blocks.append(figure("heatmap_overall", figures.heatmap_figure(heat),
                                     "overall rank of every pair",
                                     figures.heatmap_caption(heat) + "."))
    sections = [Section("Overall ranking", tuple(overall_blocks), "overall")]
    for ranking in rankings:
        name = slug[ranking.game]
        blocks = []
        for x_name in X_AXES if draw else ():
            data = game_bands(matches, ranking, x_name)
            if data.bands:
                stem = f"convergence_{name}" if x_name == "iteration" else \
                    f"convergence_{x_name}_{name}"
                blocks.append(figure(stem, figures.convergence_figure(data, palette),
                                     f"{ranking.game}: score against {x_name}",
                                     f"One panel per leader; at most {figures.MAX_CURVES} "
                                     "curves per panel, the rest are in the table."))
        heat = game_heatmap(ranking, palette.leaders, palette.followers)
        if draw and heat.values.size > 1 and np.isfinite(heat.values).any():
            blocks.append(figure(f"heatmap_{name}", figures.heatmap_figure(heat),
                                 f"{ranking.game}: mean final score of every pair",
                                 figures.heatmap_caption(heat) + "."))
        game_blocks = _game_blocks(ranking, name, blocks, game_entries.get(ranking.game))
        for block in game_blocks:
            if isinstance(block, TableBlock):
                table(block)
        sections.append(Section(f"Game {ranking.game}", game_blocks, f"game-{name}"))
    failure_blocks: tuple = (Text("None."),)
    if failures:
        failure_blocks = (table(TableBlock(failures_table(failures), "failed_matches.csv",
                                           caption="Full error texts in the CSV.")),)
    sections.append(Section(f"Failed matches ({len(failures)})", failure_blocks, "failures"))
    if spec:
        sections.append(Section("Settings", (TableBlock(settings_table(spec)),), "settings"))
    lead = (Text(_headline(overall)),
            Text(f"{len(matches)} match(es), {len(failures)} failed. " + _budget_line(spec)))
    doc = Document("Tournament report", lead, tuple(sections))
    index = out / "index.md"
    index.write_text(to_markdown(doc))
    page = out / "index.html"
    page.write_text(to_html(doc, out))
    return ReportFiles(out, index, page, tuple(tables), tuple(written))
