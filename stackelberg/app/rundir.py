"""Run one experiment into a run directory: ``config.json``, ``metrics.csv``,
``summary.json``, ``convergence.png``.

Everything is written into a temporary sibling directory that is renamed into place only when
the run has finished, so a failed or interrupted run never leaves a directory that looks
complete.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import tempfile
from pathlib import Path

from analysis.convergence import plot_convergence
from analysis.runs import load_run
from stackelberg.app.config import Experiment, ExperimentConfig, build_experiment
from stackelberg.coordinator import MatchResult, run_match


def _write_metrics(path: Path, rows: list[dict[str, float]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def save_figure(run_dirs: list[Path], out: Path) -> Path:
    """Draw the convergence figure of ``run_dirs`` into ``out``."""
    import matplotlib.pyplot as plt

    fig = plot_convergence([load_run(d) for d in run_dirs])
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def run_experiment(
    config: ExperimentConfig, out: str | Path, progress: bool = True
) -> tuple[MatchResult, Path]:
    """Build and run ``config``, then write its run directory at ``out`` (replacing it)."""
    experiment: Experiment = build_experiment(config)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        match_config = dataclasses.replace(config.run, progress=progress)
        result = run_match(experiment.problem, experiment.leader, experiment.followers,
                           match_config, experiment.streams)
        (staging / "config.json").write_text(json.dumps(config.resolved(), indent=2))
        _write_metrics(staging / "metrics.csv", result.metrics)
        summary = {**result.summary, "seed": config.seed, "game": config.game_id,
                   "leader": config.leader, "follower": config.follower, "tau": config.tau}
        (staging / "summary.json").write_text(json.dumps(summary, indent=2))
        save_figure([staging], staging / "convergence.png")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result, out
