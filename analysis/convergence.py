"""Convergence figures of one or more runs.

The data side (:func:`convergence_panels`) turns run records into named series and is tested on
its own; the drawing side (:func:`plot_convergence`) only draws them, on axes it is given or
creates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analysis.runs import RunRecord, is_sampled

#: Smallest value drawn on a log axis (exact zeros would vanish from the plot).
LOG_FLOOR = 1e-12


@dataclass(frozen=True)
class Series:
    label: str
    x: np.ndarray
    y: np.ndarray
    #: Standard errors of ``y`` (sampled metrics), drawn as a band of +- 2 s.e.
    se: np.ndarray | None = None
    #: A reference line (a closed form), drawn dashed.
    reference: bool = False


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


#: At most this many curves in one panel; more runs are cut, and the panel title says so.
MAX_CURVES = 8


def _tau_note(runs: Sequence[RunRecord]) -> str:
    """How the entropy weight the leader optimized at moved during the runs (if it did)."""
    taus = [run.metrics["tau"] for run in runs if "tau" in run.metrics and
            np.isfinite(run.metrics["tau"]).any()]
    if not taus:
        return ""
    first, last = taus[0][np.isfinite(taus[0])][[0, -1]]
    if all(np.nanmax(t) == np.nanmin(t) for t in taus):
        return f" at tau = {first:g}"
    return f" at the leader's own tau_k ({first:.3g} -> {last:.3g})"


def _capped(title: str, series: list[Series]) -> tuple[str, tuple[Series, ...]]:
    if len(series) <= MAX_CURVES:
        return title, tuple(series)
    return f"{title} (first {MAX_CURVES} of {len(series)})", tuple(series[:MAX_CURVES])


def convergence_panels(runs: Sequence[RunRecord]) -> list[Panel]:
    """The panels of a run's figure: what the leader optimized, and its gap to the truth
    (docs/theory.md §5).

    1. what the leader optimized: its objective ``f(x_k, pi_k)`` at the tau it used, and for a
       single run the hyper-objective ``Phi(x_k)`` at that tau (dashed);
    2. the gap to the truth: in a matrix game ``V_SSE - V_L`` (the distance of the leader's
       value against an exact unregularized best response to the strong Stackelberg value, log
       scale); elsewhere, where no equilibrium value is known, that leader value itself;
    3. the lower-level gap ``V*(x_k) - V(x_k, pi_k)`` (log scale).

    Every panel carries the :func:`restart_iterations` of the runs, drawn as vertical lines,
    and holds at most :data:`MAX_CURVES` curves.
    """
    sampled = [is_sampled(run) for run in runs]
    if any(sampled):
        if not all(sampled):
            raise ValueError("sampled and exact runs cannot share a figure: their values are "
                             "estimates of different things; plot them apart")
        return sampled_panels(runs)
    objective, truth, gap = [], [], []
    exact = all("sse_gap" in run.metrics for run in runs)
    # an economy's truth: the planner's net welfare at the followers' exact equilibrium
    economy = all("equilibrium_net_welfare" in run.metrics for run in runs)
    for run in runs:
        m = run.metrics
        it = m["iteration"]
        objective.append(Series(f"f(x, pi)  {run.label}", it, m["upper_objective"]))
        if len(runs) == 1:
            objective.append(Series(f"Phi(x)  {run.label}", it, m["hyper_objective"]))
        if exact:
            truth.append(Series(run.label, it, np.maximum(np.abs(m["sse_gap"]), LOG_FLOOR)))
        elif economy:
            truth.append(Series(run.label, it, m["equilibrium_net_welfare"]))
            baseline = run.summary.get("baseline_net_welfare")
            if len(runs) == 1 and isinstance(baseline, (int, float)):
                truth.append(Series("without incentives", it, np.full(len(it), baseline)))
        elif "leader_value" in m:
            truth.append(Series(run.label, it, m["leader_value"]))
        gap.append(Series(run.label, it, np.maximum(np.abs(m["lower_level_gap"]), LOG_FLOOR)))
    restarts = restart_iterations(runs)
    title, objective = _capped("What the leader optimized" + _tau_note(runs), objective)
    panels = [Panel(title, "f (lower is better)", False, objective,
                    ylim=tail_limits(objective), restarts=restarts)]
    if exact:
        values = sorted({float(run.summary["sse_leader_value"]) for run in runs
                         if isinstance(run.summary.get("sse_leader_value"), (int, float))})
        known = f" = {values[0]:.6g}" if len(values) == 1 else ""
        title, truth = _capped(f"Gap to the truth: distance to the SSE value{known}", truth)
        panels.append(Panel(title, "V_SSE - V_L (log)", True, truth, restarts=restarts))
    elif economy:
        title, truth = _capped("The truth: net welfare at the followers' equilibrium", truth)
        panels.append(Panel(title, "W - c payments (higher is better)", False, truth,
                            ylim=tail_limits(truth), restarts=restarts))
    elif truth:
        title, truth = _capped("The truth: leader value against an exact best response\n"
                               "(no equilibrium value known for this game)", truth)
        panels.append(Panel(title, "V_L (higher is better)", False, truth,
                            ylim=tail_limits(truth), restarts=restarts))
    title, gap = _capped("Lower-level gap" + (" (Nash gap)" if economy else ""), gap)
    panels.append(Panel(title, "Nash gap (log)" if economy else "V*(x) - V(x, pi) (log)", True,
                        gap, restarts=restarts))
    return panels


#: The suffix of a quantity's closed form in sampled metrics (:mod:`stackelberg.simulated`).
CLOSED_FORM = "_closed_form"
#: The suffix of a sampled quantity's standard error (:class:`stackelberg.metrics.SampledMetrics`).
STANDARD_ERROR = "_se"


def sampled_panels(runs: Sequence[RunRecord]) -> list[Panel]:
    """The panels of runs with sampled metrics (docs/theory.md §9 for the duopoly's):

    1. both players' sampled values (mean discounted returns, or ``-f`` where the leader's
       objective is no return, as happy text's; a band of +- 2 standard errors; the
       follower's for a single run);
    2. if the runs report quantities with closed forms (``q`` and ``q_closed_form`` columns),
       each quantity against its closed form (dashed);
    3. one panel per other sampled quantity with a standard error (``q`` and ``q_se``
       columns, e.g. happy text's mean sentiment and KL), a band of +- 2 standard errors.
    """
    values, quantities = [], []
    for run in runs:
        m, it = run.metrics, run.metrics["iteration"]
        values.append(Series(f"V_L  {run.label}", it, m["leader_value"], m["leader_value_se"]))
        if len(runs) == 1 and "follower_value" in m:
            values.append(Series(f"V_F  {run.label}", it, m["follower_value"],
                                 m.get("follower_value_se")))
        for key in m:
            name = key.removesuffix(CLOSED_FORM)
            if key.endswith(CLOSED_FORM) and name in m:
                prefix = "" if len(runs) == 1 else f"{run.label}: "
                quantities.append(Series(f"{prefix}{name}", it, m[name]))
                quantities.append(Series(f"{prefix}{name}, closed form", it, m[key],
                                         reference=True))
    title, values = _capped("Sampled values (+- 2 s.e.)", values)
    panels = [Panel(title, "value (higher is better)", False, values,
                    ylim=tail_limits(values))]
    if quantities:
        title, quantities = _capped("Quantities against their closed forms", quantities)
        panels.append(Panel(title, "planned quantity", False, quantities,
                            ylim=tail_limits(quantities)))
    drawn = {"leader_value", "follower_value", "upper_objective"}  # f = -V_L: drawn already
    others = dict.fromkeys(key.removesuffix(STANDARD_ERROR) for run in runs for key in run.metrics
                           if key.endswith(STANDARD_ERROR)
                           and key.removesuffix(STANDARD_ERROR) in run.metrics)
    for name in (n for n in others if n not in drawn):
        series = [Series(run.label, run.metrics["iteration"], run.metrics[name],
                         run.metrics[name + STANDARD_ERROR])
                  for run in runs if name in run.metrics and name + STANDARD_ERROR in run.metrics]
        title, series = _capped(f"{name} (sampled, +- 2 s.e.)", series)
        panels.append(Panel(title, name, False, series, ylim=tail_limits(series)))
    return panels


def plot_convergence(runs: Sequence[RunRecord], axes=None):
    """Draw :func:`convergence_panels` side by side; returns the figure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    panels = convergence_panels(runs)
    if axes is None:
        fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.6),
                                 constrained_layout=True)
    else:
        fig = np.atleast_1d(axes)[0].figure
    for ax, panel in zip(np.atleast_1d(axes), panels, strict=False):
        color = None
        for series in panel.series:
            style = "--" if series.reference or series.label.startswith("Phi") else "-"
            # a closed form takes the colour of the quantity drawn just before it
            line, = ax.plot(series.x, series.y, style, label=series.label, linewidth=1.6,
                            color=color if series.reference else None)
            color = line.get_color()
            if series.se is not None:
                ax.fill_between(series.x, series.y - 2 * series.se, series.y + 2 * series.se,
                                color=line.get_color(), alpha=0.2, linewidth=0)
        for iteration in panel.restarts:
            ax.axvline(iteration, color="0.6", linestyle=":", linewidth=1.0)
        ax.set_title(panel.title, fontsize=10, wrap=True)
        ax.set_xlabel("leader iteration")
        ax.set_ylabel(panel.ylabel)
        if panel.log:
            ax.set_yscale("log")
        if panel.ylim is not None:
            ax.set_ylim(*panel.ylim)
        ax.grid(True, alpha=0.3)
        if panel.series:
            ax.legend(fontsize=9)
    fig.suptitle(figure_title(runs))
    return fig


def figure_title(runs: Sequence[RunRecord]) -> str:
    """The game(s), and for a single run its final numbers against the truth."""
    title = ", ".join(sorted({str(run.config["game"]["id"]) for run in runs}))
    if len(runs) != 1:
        return title
    summary = runs[0].summary
    if is_sampled(runs[0]):
        parts = [f"final V_L {summary['leader_value']:.6g} (s.e. "
                 f"{summary.get('leader_value_se', float('nan')):.2g}), sampled"] \
            if isinstance(summary.get("leader_value"), (int, float)) else []
        parts += [f"{key.removesuffix(CLOSED_FORM)} {summary[key.removesuffix(CLOSED_FORM)]:.4g}"
                  f" (closed form {summary[key]:.4g})" for key in summary
                  if key.endswith(CLOSED_FORM) and isinstance(
                      summary.get(key.removesuffix(CLOSED_FORM)), (int, float))]
        return f"{title}: {runs[0].label}" + (f"\n{', '.join(parts)}" if parts else "")
    parts = [f"{name} {summary[key]:.6g}" for key, name in (
        ("leader_value", "final V_L"), ("sse_gap", "distance to SSE value"),
        ("hyper_objective", "Phi"), ("lower_level_gap", "lower-level gap"))
        if isinstance(summary.get(key), (int, float))]
    return f"{title}: {runs[0].label}" + (f"\n{', '.join(parts)}" if parts else "")
