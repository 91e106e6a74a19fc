"""The tournament report's figures: faceted convergence bands and leaders x followers heatmaps.

Drawing only: every function takes the data of :mod:`analysis.bands`, :mod:`analysis.tournament`
and :mod:`analysis.palette` and an ``ax`` (or returns a new Figure); nothing here computes a
statistic. Colours and orders come from one :class:`~analysis.palette.Palette` for the whole
report; every panel has at most :data:`MAX_CURVES` curves; every figure is written as PNG and SVG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402  (the backend is chosen first)
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.colors import LogNorm, Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from analysis.bands import Band, Facet, GameBands, facets_by_leader  # noqa: E402
from analysis.matches import Competitor  # noqa: E402
from analysis.palette import Palette, color_limits, make_palette  # noqa: E402
from analysis.tournament import Heatmap  # noqa: E402

#: At most this many curves in one panel (the rest are in the tables).
MAX_CURVES = 8
#: Percentiles the heatmaps' colour scales are clipped at.
CLIP_PERCENTILES = (5.0, 95.0)
X_LABELS = {"iteration": "leader iteration", "samples": "samples drawn (leader + follower)"}
STYLE = {"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 10,
         "xtick.labelsize": 10, "ytick.labelsize": 10, "figure.titlesize": 13,
         "svg.fonttype": "none"}


def log_floor(data: GameBands) -> float:
    """The smallest distance a log axis shows: a decade below the smallest positive value drawn,
    but not below 1e-4 x the speed target (or 1e-10); smaller values are drawn at it."""
    drawn = np.concatenate([np.r_[b.low, b.median] for b in data.bands] or [np.ones(1)])
    positive = drawn[np.isfinite(drawn) & (drawn > 0)]
    smallest = float(positive.min()) if positive.size else 1.0
    bound = max(1e-10, 1e-4 * data.target) if data.target > 0 else 1e-10
    return max(bound, 10.0 ** math.floor(math.log10(smallest)))


def plot_facet(ax: Axes, facet: Facet, data: GameBands, palette: Palette,
               floor: float) -> Axes:
    """One leader's bands: per follower the median over seeds (line) and the range over seeds
    (shaded), on log axes, with the speed target dotted."""
    for b in facet.bands:
        style = palette.follower_style(b.competitor.follower)
        ax.plot(b.x, np.maximum(b.median, floor), linewidth=2.0, markevery=0.15,
                markersize=5, label=b.competitor.follower, **style)
        ax.fill_between(b.x, np.maximum(b.low, floor), np.maximum(b.high, floor),
                        color=style["color"], alpha=0.15, linewidth=0)
    if data.target > 0:
        ax.axhline(data.target, color="0.25", linewidth=1.2, linestyle=(0, (1, 2)))
    ax.set_xscale("log")
    ax.set_yscale("log")
    more = f" (+{facet.hidden} in the table)" if facet.hidden else ""
    ax.set_title(f"{facet.leader}{more}")
    ax.grid(True, which="major", alpha=0.3)
    return ax


def convergence_figure(data: GameBands, palette: Palette | None = None,
                       max_curves: int = MAX_CURVES, columns: int = 3) -> Figure:
    """One game's score against ``data.x_name``: a panel per leader (the palette's order),
    followers coloured alike in every panel and figure, one legend."""
    palette = palette or make_palette((b.competitor.leader for b in data.bands),
                                      (b.competitor.follower for b in data.bands))
    facets = facets_by_leader(data, palette.leaders, max_curves)
    floor = log_floor(data)
    cols = max(1, min(columns, len(facets)))
    rows = math.ceil(len(facets) / cols)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols + 0.4, 3.5 * rows + 1.4),
                                 sharex=True, sharey=True, squeeze=False,
                                 constrained_layout=True)
        for ax, facet in zip(axes.flat, facets, strict=False):
            plot_facet(ax, facet, data, palette, floor)
        for ax in axes.flat[len(facets):]:
            ax.set_visible(False)
        for ax in axes[:, 0]:
            ax.set_ylabel("distance (log)")
        for ax in axes[-1, :]:
            ax.set_xlabel(X_LABELS.get(data.x_name, data.x_name))
        shown = [f for f in palette.followers
                 if any(b.competitor.follower == f for p in facets for b in p.bands)]
        handles = [Line2D([], [], linewidth=2.0, **palette.follower_style(f)) for f in shown]
        handles.append(Line2D([], [], color="0.25", linewidth=1.2, linestyle=(0, (1, 2))))
        fig.legend(handles, [*shown, "speed target"], loc="outside lower center",
                   ncols=min(len(handles), 5), title="follower learner")
        fig.suptitle(f"{data.game}: {data.y_label}, against "
                     f"{X_LABELS.get(data.x_name, data.x_name)}\nline: median over seeds, "
                     f"shaded: range over seeds; below {floor:.0e} drawn at {floor:.0e}")
    return fig


def _text_color(rgba: tuple[float, ...]) -> str:
    luminance = 0.2126 * rgba[0] + 0.7152 * rgba[1] + 0.0722 * rgba[2]
    return "black" if luminance > 0.5 else "white"


def heatmap_caption(heatmap: Heatmap) -> str:
    """What a heatmap's colours mean, for the figure and the report."""
    scale = "log scale, " if heatmap.log else ""
    low, high = CLIP_PERCENTILES
    clip = (f"colours clipped at the {low:g}th and {high:g}th percentiles of the values"
            if heatmap.log else "colours span the values")
    return (f"{heatmap.value_label}; {scale}{clip}; cells show the values (3 digits; the CSV "
            "has them all); "
            "outlined: ranked first (the table's first row); grey: pair not played")


def plot_heatmap(ax: Axes, heatmap: Heatmap, digits: int = 3) -> Axes:
    """Leaders (rows) x followers (columns) in the palette's order, each cell annotated with its
    value, a robust colour scale (:func:`~analysis.palette.color_limits`), the pairs ranked
    first outlined, missing pairs grey."""
    values = np.ma.masked_invalid(heatmap.values)
    cmap = plt.get_cmap("viridis_r").with_extremes(bad="0.88")
    limits = color_limits(heatmap.values, heatmap.log, CLIP_PERCENTILES)
    if limits is None:
        norm = Normalize()
    elif heatmap.log:
        norm = LogNorm(*limits, clip=True)
        shown = np.where(heatmap.values > 0, heatmap.values, limits[0])  # 0 = the reference
        values = np.ma.masked_invalid(np.where(np.isnan(heatmap.values), np.nan, shown))
    else:
        norm = Normalize(*limits, clip=True)
    image = ax.imshow(values, cmap=cmap, norm=norm, aspect="auto")
    for (i, j), value in np.ndenumerate(heatmap.values):
        if np.isnan(value):
            ax.text(j, i, "–", ha="center", va="center", color="0.4")
            continue
        shade = cmap(norm(max(value, limits[0]) if heatmap.log and limits else value))
        ax.text(j, i, f"{value:.{digits}g}", ha="center", va="center", fontsize=11,
                color=_text_color(shade))
    for i, j in heatmap.best:
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red",
                                   linewidth=3.0))
    ax.set_xticks(range(len(heatmap.followers)), heatmap.followers, rotation=15, ha="right")
    ax.set_yticks(range(len(heatmap.leaders)), heatmap.leaders)
    ax.set_xlabel("follower learner")
    ax.set_ylabel("leader")
    ax.set_title(f"{heatmap.title} (outlined: ranked first)")
    ax.figure.colorbar(image, ax=ax, label=heatmap.value_label, shrink=0.9)
    return ax


def heatmap_figure(heatmap: Heatmap) -> Figure:
    """:func:`plot_heatmap` on a new figure sized to the grid, its caption below."""
    rows, cols = heatmap.values.shape
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(max(7.0, 4.2 + 1.7 * cols), max(4.2, 1.9 + 0.6 * rows)),
                               constrained_layout=True)
        plot_heatmap(ax, heatmap)
        fig.text(0.01, 0.0, heatmap_caption(heatmap), fontsize=9, color="0.3", wrap=True,
                 va="bottom")
        fig.get_layout_engine().set(h_pad=0.3)
    return fig


def plot_mean_bands(ax: Axes, bands: Sequence[Band], reference: float | None = None,
                    tolerance: float | None = None, x_label: str = X_LABELS["samples"],
                    y_label: str = "objective (lower is better)") -> Axes:
    """Mean over seeds (line) and its confidence band (shaded) of each curve on a linear y
    axis and a log x axis, with an optional reference value and its tolerance band."""
    palette = make_palette((b.competitor.leader for b in bands), ())
    for b in bands[:MAX_CURVES]:
        color = palette.leader_color(b.competitor.leader)
        ax.plot(b.x, b.mean, linewidth=1.8, label=f"{b.competitor.leader} ({b.seeds} seeds)",
                color=color)
        ax.fill_between(b.x, b.low, b.high, color=color, alpha=0.2, linewidth=0)
    if reference is not None:
        ax.axhline(reference, color="0.2", linewidth=1.0, linestyle="--", label="reference")
        if tolerance:
            ax.axhspan(reference - tolerance, reference + tolerance, color="0.5", alpha=0.15,
                       linewidth=0, label=f"reference +- {tolerance:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def competitor_styles(competitors: Sequence[Competitor]) -> dict[Competitor, dict]:
    """Line properties per competitor: the palette's follower style, the leader's colour."""
    palette = make_palette((c.leader for c in competitors), (c.follower for c in competitors))
    return {c: {**palette.follower_style(c.follower), "color": palette.leader_color(c.leader)}
            for c in competitors}


def save(fig: Figure, path: str | Path, dpi: int = 100) -> None:
    """Write ``fig`` to ``path`` (its format from the suffix) and release it."""
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def save_png_svg(fig: Figure, stem: str | Path, dpi: int = 150) -> tuple[Path, Path]:
    """Write ``fig`` as ``stem.png`` and ``stem.svg`` and release it."""
    stem = Path(stem)
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    fig.savefig(png, dpi=dpi)
    fig.set_layout_engine("none")  # keep the layout just computed: half the drawing time
    fig.savefig(svg)
    plt.close(fig)
    return png, svg
