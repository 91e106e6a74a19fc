"""The tournament report's figures: convergence bands and leaders x followers heatmaps.

Drawing only: every function takes the data of :mod:`analysis.bands` or
:mod:`analysis.tournament` and an ``ax`` (or returns a new Figure); nothing here computes a
statistic. Colours name the leader and line styles the follower, the same in every figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402  (the backend is chosen first)
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FixedLocator, NullLocator  # noqa: E402

from analysis.bands import Band, GameBands  # noqa: E402
from analysis.tournament import Competitor, Heatmap  # noqa: E402

LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))
X_LABELS = {"iteration": "leader iteration", "samples": "samples drawn (leader + follower)"}


def competitor_styles(competitors: Sequence[Competitor]) -> dict[Competitor, dict]:
    """Line properties per competitor: one colour per leader, one line style per follower."""
    leaders = list(dict.fromkeys(c.leader for c in competitors))
    followers = list(dict.fromkeys(c.follower for c in competitors))
    colors = plt.get_cmap("tab10").colors
    return {c: {"color": colors[leaders.index(c.leader) % len(colors)],
                "linestyle": LINESTYLES[followers.index(c.follower) % len(LINESTYLES)]}
            for c in competitors}


def plot_bands(ax: Axes, data: GameBands,
               styles: Mapping[Competitor, dict] | None = None) -> Axes:
    """Median over seeds (line) and band (shaded) of every competitor, on a symmetric-log y
    axis that is linear within the tolerance, with the tolerance marked."""
    styles = styles or competitor_styles([b.competitor for b in data.bands])
    for b in data.bands:
        style = styles[b.competitor]
        ax.plot(b.x, b.median, linewidth=1.8, label=f"{b.competitor.label} ({b.seeds})",
                **style)
        ax.fill_between(b.x, b.low, b.high, color=style["color"], alpha=0.15, linewidth=0)
    ax.axhline(data.tolerance, color="0.3", linewidth=1.0, linestyle=(0, (1, 2)),
               label=f"tolerance {data.tolerance:.2g}")
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    _symlog_y(ax, data)
    ax.set_xscale("log")
    ax.set_xlabel(X_LABELS.get(data.x_name, data.x_name))
    ax.set_ylabel(data.y_label)
    ax.grid(True, which="major", alpha=0.3)
    return ax


def plot_mean_bands(ax: Axes, bands: Sequence[Band], reference: float | None = None,
                    tolerance: float | None = None, x_label: str = X_LABELS["samples"],
                    y_label: str = "objective (lower is better)") -> Axes:
    """Mean over seeds (line) and its confidence band (shaded) of each curve on a linear y
    axis and a log x axis, with an optional reference value and its tolerance band."""
    styles = competitor_styles([b.competitor for b in bands])
    for b in bands:
        style = styles[b.competitor]
        ax.plot(b.x, b.mean, linewidth=1.8, label=f"{b.competitor.leader} ({b.seeds} seeds)",
                color=style["color"])
        ax.fill_between(b.x, b.low, b.high, color=style["color"], alpha=0.2, linewidth=0)
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


def _symlog_y(ax: Axes, data: GameBands) -> None:
    """A symmetric-log y axis, linear within +-tolerance, ticked at 0 and at the decades
    beyond the tolerance, reaching below 0 only as far as the data does (one decade)."""
    tol = data.tolerance
    ax.set_yscale("symlog", linthresh=tol)
    lows = [np.nanmin(b.low) for b in data.bands]
    highs = [np.nanmax(b.high) for b in data.bands]
    bottom = -(10.0 ** np.ceil(np.log10(max([tol, *(-v for v in lows)]))))
    top = 10.0 ** np.ceil(np.log10(max([10 * tol, *highs])))
    ax.set_ylim(bottom, top)
    decades = 10.0 ** np.arange(np.ceil(np.log10(tol * 1.0001)), np.log10(top) + 1)
    ticks = [-d for d in decades if -d >= bottom] + [0.0] + list(decades)
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_minor_locator(NullLocator())


def convergence_figure(panels: Sequence[GameBands],
                       styles: Mapping[Competitor, dict] | None = None) -> Figure:
    """One game's bands against each x axis in ``panels``, side by side, one shared legend."""
    competitors = list(dict.fromkeys(b.competitor for p in panels for b in p.bands))
    styles = styles or competitor_styles(competitors)
    fig, axes = plt.subplots(1, len(panels), figsize=(6.0 * len(panels) + 2.6, 4.4),
                             constrained_layout=True, squeeze=False)
    for ax, data in zip(axes[0], panels, strict=True):
        plot_bands(ax, data, styles)
        missing = len(competitors) - len(data.bands)
        note = f" ({missing} pair(s) draw none)" if missing else ""
        ax.set_title(f"against {data.x_name}{note}", fontsize=10)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8,
               title="leader / follower (seeds)", title_fontsize=8)
    fig.suptitle(f"{panels[0].game}: hyper-objective minus the best mean final value "
                 "(line: median over seeds, shaded: range)", fontsize=11)
    return fig


def _text_color(rgba: tuple[float, ...]) -> str:
    luminance = 0.2126 * rgba[0] + 0.7152 * rgba[1] + 0.0722 * rgba[2]
    return "black" if luminance > 0.5 else "white"


def plot_heatmap(ax: Axes, heatmap: Heatmap, digits: int = 4) -> Axes:
    """Leaders (rows) x followers (columns), each cell annotated with its value, a colorbar
    beside (best at the top), missing pairs grey; the best (lowest) cell is outlined."""
    values = np.ma.masked_invalid(heatmap.values)
    cmap = plt.get_cmap("viridis_r").with_extremes(bad="0.85")
    image = ax.imshow(values, cmap=cmap, aspect="auto")
    for (i, j), value in np.ndenumerate(heatmap.values):
        if np.isnan(value):
            ax.text(j, i, "–", ha="center", va="center", color="0.4")
            continue
        ax.text(j, i, f"{value:.{digits}g}", ha="center", va="center", fontsize=9,
                color=_text_color(cmap(image.norm(value))))
    if np.isfinite(heatmap.values).any():
        i, j = np.unravel_index(np.nanargmin(heatmap.values), heatmap.values.shape)
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red",
                                   linewidth=2.0))
    ax.set_xticks(range(len(heatmap.followers)), heatmap.followers, rotation=20, ha="right")
    ax.set_yticks(range(len(heatmap.leaders)), heatmap.leaders)
    ax.set_xlabel("follower learner")
    ax.set_ylabel("leader")
    ax.set_title(f"{heatmap.title} (outlined: best)", fontsize=10)
    colorbar = ax.figure.colorbar(image, ax=ax, label=heatmap.value_label, shrink=0.9)
    colorbar.ax.invert_yaxis()
    return ax


def heatmap_figure(heatmap: Heatmap) -> Figure:
    """:func:`plot_heatmap` on a new figure sized to the grid."""
    rows, cols = heatmap.values.shape
    # the minimum height keeps the colorbar's label whole on a grid of one or two rows
    fig, ax = plt.subplots(figsize=(max(5.5, 3.2 + 1.3 * cols), max(3.6, 1.6 + 0.5 * rows)),
                           constrained_layout=True)
    plot_heatmap(ax, heatmap)
    return fig


def save(fig: Figure, path: str | Path, dpi: int = 100) -> None:
    """Write ``fig`` and release it."""
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
