"""Reading what runs wrote: a run directory -> a :class:`RunRecord` (analysis reads files only)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RUN_FILES = ("config.json", "metrics.csv", "summary.json")


@dataclass(frozen=True)
class RunRecord:
    """A finished run: its resolved config, per-iteration metrics as columns, its summary."""

    path: Path
    config: dict
    metrics: dict[str, np.ndarray]
    summary: dict

    @property
    def label(self) -> str:
        """A short legend label: leader / follower learner."""
        return f"{self.config['leader']['algorithm']} / {self.config['follower']['learner']}"


def read_metrics_csv(path: str | Path) -> dict[str, np.ndarray]:
    """Columns of a ``metrics.csv`` as float arrays (empty cells become NaN)."""
    with Path(path).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return {}
    return {
        key: np.array([float(row[key]) if row[key] not in ("", None) else np.nan for row in rows])
        for key in rows[0]
    }


def load_run(run_dir: str | Path) -> RunRecord:
    """Load a complete run directory; raise ``ValueError`` naming what is missing."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ValueError(f"{path} is not a directory")
    missing = [name for name in RUN_FILES if not (path / name).is_file()]
    if missing:
        raise ValueError(f"{path} is not a complete run directory: missing {', '.join(missing)}")
    return RunRecord(
        path=path,
        config=json.loads((path / "config.json").read_text()),
        metrics=read_metrics_csv(path / "metrics.csv"),
        summary=json.loads((path / "summary.json").read_text()),
    )
