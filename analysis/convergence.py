"""Convergence figures of one or more runs.

The data side (:func:`convergence_panels`) turns run records into named series and is tested on
its own; the drawing side (:func:`plot_convergence`) only draws them, on axes it is given or
creates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analysis.runs import RunRecord

#: Smallest value drawn on a log axis (exact zeros would vanish from the plot).
LOG_FLOOR = 1e-12


@dataclass(frozen=True)
class Series:
    label: str
    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class Panel:
    """One subplot: a title, a y-label, log or linear scale, and its series."""

    title: str
    ylabel: str
    log: bool
    series: tuple[Series, ...]
    ylim: tuple[float, float] | None = None
    restarts: tuple[float, ...] = ()


def tail_limits(series: Sequence[Series], skip: float = 0.05) -> tuple[float, float] | None:
    """y-limits that fit every series after its first ``skip`` fraction of iterations, so an
    early transient does not flatten the rest of a linear-scale panel."""
    tails = [s.y[int(len(s.y) * skip):] for s in series if len(s.y)]
    values = np.concatenate([t[np.isfinite(t)] for t in tails]) if tails else np.array([])
    if values.size == 0:
        return None
    low, high = float(values.min()), float(values.max())
    margin = 0.05 * (high - low) or 0.05 * max(abs(high), 1e-12)
    return low - margin, high + margin


def restart_iterations(runs: Sequence[RunRecord]) -> tuple[float, ...]:
    """Iterations at which a multi-start leader ended one start (rows with a ``start_score``,
    ``PBRLConfig.starts``), over all runs, sorted."""
    found = set()
    for run in runs:
        scores = run.metrics.get("start_score")
        if scores is not None:
            found.update(run.metrics["iteration"][np.isfinite(scores)].tolist())
    return tuple(sorted(found))


def convergence_panels(runs: Sequence[RunRecord]) -> list[Panel]:
    """The panels of the convergence figure (REFERENCE §5).

    1. the leader's objective ``f(x_k, pi_k)`` and the hyper-objective ``Phi(x_k)``;
    2. the lower-level gap ``V*(x_k) - V(x_k, pi_k)`` (log scale);
    3. for matrix games, ``|leader value - strong Stackelberg value|`` (log scale);
       otherwise the leader's gradient norm (log scale) where the runs report one.

    Every panel carries the :func:`restart_iterations` of the runs, drawn as vertical lines.
    """
    objective, gap, third = [], [], []
    third_is_sse = all("sse_gap" in run.metrics for run in runs)
    for run in runs:
        m = run.metrics
        it = m["iteration"]
        objective.append(Series(f"f(x, pi)  {run.label}", it, m["upper_objective"]))
        objective.append(Series(f"Phi(x)  {run.label}", it, m["hyper_objective"]))
        gap.append(Series(run.label, it, np.maximum(np.abs(m["lower_level_gap"]), LOG_FLOOR)))
        if third_is_sse:
            third.append(Series(run.label, it, np.maximum(np.abs(m["sse_gap"]), LOG_FLOOR)))
        elif "grad_norm" in m:
            third.append(Series(run.label, it, np.maximum(m["grad_norm"], LOG_FLOOR)))
    restarts = restart_iterations(runs)
    panels = [
        Panel("Leader objective (lower is better)", "f = -V_L", False, tuple(objective),
              ylim=tail_limits(objective), restarts=restarts),
        Panel("Lower-level gap", "V*(x) - V(x, pi)", True, tuple(gap), restarts=restarts),
    ]
    if third_is_sse:
        panels.append(Panel("Distance to the strong Stackelberg value",
                            "|V_L - V_SSE|", True, tuple(third), restarts=restarts))
    elif third:
        panels.append(Panel("Stationarity", "gradient norm", True, tuple(third),
                            restarts=restarts))
    return panels


def plot_convergence(runs: Sequence[RunRecord], axes=None):
    """Draw :func:`convergence_panels` side by side; returns the figure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    panels = convergence_panels(runs)
    if axes is None:
        fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.0),
                                 constrained_layout=True)
    else:
        fig = np.atleast_1d(axes)[0].figure
    for ax, panel in zip(np.atleast_1d(axes), panels, strict=False):
        for series in panel.series:
            style = "--" if series.label.startswith("Phi") else "-"
            ax.plot(series.x, series.y, style, label=series.label, linewidth=1.6)
        for iteration in panel.restarts:
            ax.axvline(iteration, color="0.6", linestyle=":", linewidth=1.0)
        ax.set_title(panel.title)
        ax.set_xlabel("leader iteration")
        ax.set_ylabel(panel.ylabel)
        if panel.log:
            ax.set_yscale("log")
        if panel.ylim is not None:
            ax.set_ylim(*panel.ylim)
        ax.grid(True, alpha=0.3)
        if panel.series:
            ax.legend(fontsize=7)
    title = ", ".join(sorted({run.config["game"]["id"] for run in runs}))
    fig.suptitle(title)
    return fig
