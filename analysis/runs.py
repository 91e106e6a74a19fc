"""Reading what runs wrote: a run directory -> a :class:`RunRecord` (analysis reads files only)."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RUN_FILES = ("config.json", "metrics.csv", "summary.json")
#: What a figure of a run needs: metrics columns, and config entries (section, key).
METRIC_COLUMNS = ("iteration", "upper_objective", "hyper_objective", "lower_level_gap")
#: What the figure of a run with sampled metrics (a game with no exact model) needs.
SAMPLED_COLUMNS = ("iteration", "upper_objective", "leader_value", "leader_value_se")
CONFIG_ENTRIES = (("game", "id"), ("leader", "algorithm"), ("follower", "learner"))


@dataclass(frozen=True)
class RunRecord:
    """A finished run: its resolved config, per-iteration metrics as columns, its summary."""

    path: Path
    config: dict
    metrics: dict[str, np.ndarray]
    summary: dict
    #: How figures name the run besides its agents (``plot`` gives its directory's name).
    name: str = ""

    @property
    def label(self) -> str:
        """A short legend label: ``leader / follower learner``, after the run's name if any."""
        agents = f"{self.config['leader']['algorithm']} / {self.config['follower']['learner']}"
        return f"{self.name} ({agents})" if self.name else agents


def _cell(path: Path, line: int, key: str, text: str | None) -> float:
    if text in ("", None):
        return np.nan
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{path}, line {line}, column {key!r}: {text!r} is not a number"
                         ) from None


def read_metrics_csv(path: str | Path) -> dict[str, np.ndarray]:
    """Columns of a ``metrics.csv`` as float arrays (empty cells become NaN).

    Raises ``ValueError`` naming the file, line and column of a cell that is not a number.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return {}
    return {
        key: np.array([_cell(path, line, key, row[key]) for line, row in enumerate(rows, 2)])
        for key in rows[0]
    }


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
        raise ValueError(f"{path} is not a JSON file a run wrote: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a JSON object")
    return data


def load_run(run_dir: str | Path) -> RunRecord:
    """Load a complete run directory.

    Raises
    ------
    ValueError
        Naming the file (and the line, column or key) that is missing or unreadable: a run
        directory has every file of :data:`RUN_FILES`, at least one metrics row, and the config
        entries of :data:`CONFIG_ENTRIES`.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise ValueError(f"{path} is not a directory")
    missing = [name for name in RUN_FILES if not (path / name).is_file()]
    if missing:
        raise ValueError(f"{path} is not a complete run directory: missing {', '.join(missing)}")
    config = _read_json(path / "config.json")
    for section, key in CONFIG_ENTRIES:
        if not isinstance(config.get(section), dict) or key not in config[section]:
            raise ValueError(f"{path / 'config.json'} has no {section}.{key}: it is not the "
                             "config of a run")
    try:
        metrics = read_metrics_csv(path / "metrics.csv")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path / 'metrics.csv'} is not UTF-8 text: {err}") from None
    if not metrics:
        raise ValueError(f"{path / 'metrics.csv'} holds no rows (only a header, or nothing): "
                         "the run recorded no iteration")
    return RunRecord(path=path, config=config, metrics=metrics,
                     summary=_read_json(path / "summary.json"))


def is_sampled(run: RunRecord) -> bool:
    """Whether the run's metrics are Monte-Carlo estimates (``*_se`` columns: a game with no
    exact model) rather than exact."""
    return "leader_value_se" in run.metrics


def check_plottable(run: RunRecord) -> None:
    """Raise ``ValueError`` naming the first column of :data:`METRIC_COLUMNS` (of
    :data:`SAMPLED_COLUMNS` for sampled metrics) that the run's ``metrics.csv`` lacks (the
    convergence figure draws them)."""
    needed = SAMPLED_COLUMNS if is_sampled(run) else METRIC_COLUMNS
    absent = [column for column in needed if column not in run.metrics]
    if absent:
        raise ValueError(f"{run.path / 'metrics.csv'} has no column {absent[0]!r}")


def directory_names(paths: Sequence[Path]) -> list[str]:
    """A distinct short name per run directory: its name, with as many parent directories as
    it takes to tell equal names apart (``a/run`` and ``b/run``)."""
    parts = [Path(os.path.abspath(p)).parts[1:] for p in paths]  # symlinks kept as named
    for depth in range(1, max(map(len, parts)) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [p[-1] if p else "/" for p in parts]  # the same directory twice: no better name


def game_differences(runs: Sequence[RunRecord]) -> tuple[str, ...]:
    """The ``game`` entries (``id`` and the game's parameters, from each run's resolved
    ``config.json``) on which the runs differ; empty if they all played the same game."""
    games = [run.config.get("game", {}) for run in runs]
    keys = dict.fromkeys(k for game in games for k in game)
    return tuple(k for k in keys if len({json.dumps(g.get(k), sort_keys=True) for g in games}) > 1)
