"""Run one experiment into a run directory: ``config.json``, ``metrics.csv``,
``summary.json``, ``convergence.png`` (unless ``--no-figure``), the files a problem adds of its
own (:class:`WritesRunFiles`: happy text's ``samples.txt``), and the marker file
``.stackelberg-run``.

The directory is checked before the game is built and written through a staging sibling
(:mod:`stackelberg.app.output`): a failed run leaves nothing that looks complete, and only an
empty directory or an earlier run (with ``--overwrite``) is ever replaced.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from analysis.convergence import plot_convergence
from analysis.runs import RunRecord, check_plottable, load_run
from stackelberg.app.config import Experiment, ExperimentConfig, build_experiment
from stackelberg.app.output import OutputKind, prepare
from stackelberg.coordinator import MatchResult, run_match

#: The files a run directory holds, besides the marker.
RUN_FILES = ("config.json", "metrics.csv", "summary.json", "convergence.png")
RUN = OutputKind(
    what="run", option="--out", marker=".stackelberg-run", overwrite_flag="--overwrite",
    # a run directory written before the marker existed: only a run's files
    legacy=lambda names, _path: "summary.json" in names and names <= set(RUN_FILES),
)


@runtime_checkable
class WritesRunFiles(Protocol):
    """A problem that writes files of its own into a run directory: ``run_files(result)``
    maps file names to their text (happy text's generations before and after)."""

    def run_files(self, result: MatchResult) -> dict[str, str]: ...


def _write_metrics(path: Path, rows: list[dict[str, float]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def save_figure(runs: Sequence[RunRecord], out: Path) -> Path:
    """Draw the convergence figure of ``runs`` (:func:`analysis.runs.load_run`) into ``out``.

    The figure is drawn into a hidden sibling file renamed to ``out`` once complete, so a
    failure never leaves half a figure (nor removes an earlier one).

    Raises
    ------
    ValueError
        A run directory that is incomplete or unreadable (the message names the file), or an
        ``out`` that cannot be written: a directory, in a missing directory, a format
        matplotlib does not know.
    """
    import matplotlib.pyplot as plt

    for run in runs:
        check_plottable(run)
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a directory; name the figure file, e.g. {out}/fig.png")
    if not out.parent.is_dir():
        raise ValueError(f"--out {out}: the directory {out.parent} does not exist")
    fig = plot_convergence(runs)
    try:
        handle, partial = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=out.suffix,
                                           dir=out.parent)
    except OSError as err:
        plt.close(fig)
        raise ValueError(f"--out {out}: cannot write in {out.parent} ({err.strerror})") from None
    os.close(handle)
    try:
        fig.savefig(partial, dpi=120, format=out.suffix[1:] or "png")
        os.replace(partial, out)
    except ValueError as err:  # matplotlib: an unknown format
        raise ValueError(f"--out {out}: {err}") from None
    finally:
        plt.close(fig)
        Path(partial).unlink(missing_ok=True)
    return out


#: Run directories named in the default file name of a comparison figure (then "and N more").
NAMED_IN_FILE = 3


def comparison_file(names: list[str]) -> Path:
    """Where ``plot`` writes a figure of several runs without ``--out``: a file in the
    current directory named after the runs, never inside one of them."""
    stems = [re.sub(r"[^A-Za-z0-9._-]+", "_", n).strip("_.") or "run" for n in names]
    more = len(stems) - NAMED_IN_FILE
    tail = f"_and_{more}_more" if more > 0 else ""
    return Path(f"convergence_{'_vs_'.join(stems[:NAMED_IN_FILE])}{tail}.png")


def is_run_figure(out: Path) -> bool:
    """Whether ``out`` is the figure a run wrote into its own run directory."""
    return out.name == "convergence.png" and any(
        (out.parent / name).is_file() for name in (RUN.marker, "summary.json"))


def run_experiment(
    config: ExperimentConfig, out: str | Path, progress: bool = True, overwrite: bool = False,
    figure: bool = True,
) -> tuple[MatchResult, Path]:
    """Build and run ``config``, then write its run directory at ``out``.

    ``out`` is checked (:func:`stackelberg.app.output.prepare`) before the game is built; an
    earlier run there is replaced only with ``overwrite``. Without ``figure`` the directory
    has no ``convergence.png`` (drawing it costs about as much CPU as a short match);
    ``stackelberg plot DIR`` draws the same figure later, from the files written.

    Raises
    ------
    OutputError
        ``out`` cannot take a run (then nothing was built or run).
    ConfigError
        The game or the agents cannot be built.
    """
    def play(staging: Path) -> MatchResult:
        experiment: Experiment = build_experiment(config)
        match_config = dataclasses.replace(config.run, progress=progress)
        result = run_match(experiment.problem, experiment.leader, experiment.followers,
                           match_config, experiment.streams)
        (staging / "config.json").write_text(json.dumps(config.resolved(), indent=2))
        _write_metrics(staging / "metrics.csv", result.metrics)
        summary = {**result.summary, "seed": config.seed, "game": config.game_id,
                   "leader": config.leader, "follower": config.follower, "tau": config.tau}
        if config.kind == "economy":
            summary["n_followers"] = experiment.problem.n_followers
            summary["incentive_levels"] = experiment.problem.levels(result.x)
        (staging / "summary.json").write_text(json.dumps(summary, indent=2))
        if isinstance(experiment.problem, WritesRunFiles):
            for name, text in experiment.problem.run_files(result).items():
                (staging / name).write_text(text)
        if figure:
            save_figure([load_run(staging)], staging / "convergence.png")
        return result

    return prepare(RUN, out, overwrite).write(play)
