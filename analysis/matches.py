"""What a results store holds, as the report reads it: matches, their competitors, failures."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from stackelberg.results import MatchRecord, ResultStore


@dataclass(frozen=True, order=True)
class Competitor:
    """A (leader, follower learner) pair, by the labels of the tournament spec."""

    leader: str
    follower: str

    @property
    def label(self) -> str:
        return f"{self.leader} / {self.follower}"


@dataclass(frozen=True)
class MatchData:
    """One stored match and its per-iteration metrics (empty for a failed match)."""

    record: MatchRecord
    metrics: Mapping[str, np.ndarray]

    @property
    def competitor(self) -> Competitor:
        return Competitor(self.record.leader, self.record.follower)

    @property
    def game(self) -> str:
        return self.record.game

    @property
    def ok(self) -> bool:
        return self.record.ok

    def final(self, name: str) -> float:
        """A summary entry as a float (NaN when the summary lacks it)."""
        value = self.record.summary.get(name)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(value) if ok else math.nan


def read_matches(store: ResultStore) -> list[MatchData]:
    """Every match of ``store`` with its metrics (failed matches have none)."""
    return [MatchData(record, store.metrics(record.match_id) if record.ok else {})
            for record in store.records()]


@dataclass(frozen=True)
class FailedMatch:
    """A match that failed, with its error text."""

    game: str
    competitor: Competitor
    seed: int
    error: str


def failed_matches(matches: Sequence[MatchData]) -> list[FailedMatch]:
    """Every failed match, in (game, competitor, seed) order."""
    failed = [FailedMatch(m.game, m.competitor, m.record.seed, m.record.error or "")
              for m in matches if not m.ok]
    return sorted(failed, key=lambda f: (f.game, f.competitor, f.seed))
