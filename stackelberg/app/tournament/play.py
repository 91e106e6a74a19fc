"""Playing one match of a tournament, wherever it runs: in-process, in a worker process or as a
Ray task. What comes back is plain data for the parent process, the results store's only writer.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stackelberg.app.config import build_experiment
from stackelberg.app.tournament.spec import Match
from stackelberg.coordinator import run_match
from stackelberg.results import MatchRecord


@dataclass(frozen=True)
class MatchOutcome:
    """A played match: its record for the store and its per-iteration metrics rows (empty for a
    failed match)."""

    record: MatchRecord
    metrics: Sequence[Mapping[str, float]] = ()


def _record(match: Match, wall_seconds: float, **fields) -> MatchRecord:
    return MatchRecord(match_id=match.match_id, game=match.game, leader=match.leader,
                       follower=match.follower, seed=match.seed, config=dict(match.resolved),
                       wall_seconds=wall_seconds, **fields)


def failed_outcome(match: Match, error: str, wall_seconds: float = 0.0) -> MatchOutcome:
    """The outcome of a match that could not be played, with the error text to store."""
    return MatchOutcome(_record(match, wall_seconds, status="failed", error=error))


def play_match(match: Match) -> MatchOutcome:
    """Build and run one match; an exception it raises becomes a failed outcome.

    The match draws every random number from the streams of its own seed (``run_streams``),
    so where and next to what it runs does not change its numbers.
    """
    start = time.perf_counter()
    config = match.config
    try:
        experiment = build_experiment(config)
        result = run_match(experiment.problem, experiment.leader, experiment.followers,
                           config.run, experiment.streams)
    except Exception as err:  # the match fails, the tournament goes on
        text = "".join(traceback.format_exception_only(err)).strip()
        detail = "".join(traceback.format_exception(err)).strip()
        return failed_outcome(match, f"{text}\n\n{detail}", time.perf_counter() - start)
    return MatchOutcome(_record(match, time.perf_counter() - start, summary=dict(result.summary)),
                        result.metrics)


__all__ = ["MatchOutcome", "failed_outcome", "play_match"]
