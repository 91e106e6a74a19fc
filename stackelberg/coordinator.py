"""The coordinator: runs one match between a leader and its follower learner(s).

Each iteration (DESIGN, "One match, as data"):

1. every follower learner takes ``follower_steps`` steps against the leader's current ``x`` (with
   n >= 2 followers, each round starts by showing every learner the profile they all move from:
   they move simultaneously, :class:`stackelberg.protocols.GameFollowerLearner`);
2. the leader takes one step, reading the followers' current policies;
3. the exact metrics of the new state are recorded (docs/theory.md §5), every ``metrics_every``
   iterations and at the last one.

The coordinator knows no algorithm or game by name: it receives objects that implement
:mod:`stackelberg.protocols`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from stackelberg.metrics import metrics_for
from stackelberg.problem import BilevelProblem
from stackelberg.protocols import (
    FollowerLearner,
    GameFollowerLearner,
    Leader,
    announce_budget,
    entropy_schedule,
)
from stackelberg.validation import check_fields


@dataclass(frozen=True)
class MatchConfig:
    """How long a match runs and what it records.

    Attributes
    ----------
    iterations : int
        Maximum number of leader steps.
    follower_steps : int
        Follower learner steps per leader step (``k`` in DESIGN).
    tolerance : float
        Stop early once the leader's reported ``grad_norm`` stays below this for
        ``patience`` consecutive iterations (0 disables the rule).
    patience : int
        See ``tolerance``.
    max_seconds : float
        Stop after this much wall time (``inf`` disables the rule).
    metrics_every : int
        Record the exact metrics every this many iterations (and always at the first and the
        last one). Recording changes no number of the match (:mod:`stackelberg.metrics`), only the
        rows written and the time taken.
    progress : bool
        Show a tqdm progress bar (changes no number either).
    """

    iterations: int = 1000
    follower_steps: int = 1
    tolerance: float = 0.0
    patience: int = 10
    max_seconds: float = math.inf
    metrics_every: int = 1
    progress: bool = True

    section = "run"

    def __post_init__(self) -> None:
        check_fields(
            self,
            positive_int=("iterations", "follower_steps", "patience", "metrics_every"),
            non_negative=("tolerance",),
        )
        if not (isinstance(self.max_seconds, (int, float)) and self.max_seconds > 0):
            raise ValueError(f"run.max_seconds must be a number > 0, got {self.max_seconds!r}")


@dataclass(frozen=True)
class MatchResult:
    """Everything a match produced: per-iteration metrics, a summary, the final variables."""

    metrics: list[dict[str, float]]
    summary: dict[str, float | int | str]
    x: np.ndarray
    leader_policy: np.ndarray | None
    follower_policies: tuple[np.ndarray, ...] = field(default=())


def run_match(
    problem: BilevelProblem,
    leader: Leader,
    followers: Sequence[FollowerLearner],
    config: MatchConfig,
    streams,
    on_iteration: Callable[[dict[str, float]], None] | None = None,
) -> MatchResult:
    """Run one match and return its metrics and summary.

    Parameters
    ----------
    problem : BilevelProblem
        Its ``tau`` is the match's starting entropy weight; a leader's schedule may change it
        during the match, and it is restored at the end.
    leader : Leader
    followers : sequence of FollowerLearner
        One learner per follower role (``problem.n_followers``).
    config : MatchConfig
    streams : stackelberg.seeding.RunStreams
        The run's random streams; the leader and each follower get their own.
    on_iteration : callable, optional
        Called with each recorded metrics row (e.g. to stream it to a file).
    """
    initial_tau = problem.tau
    try:
        return _run_match(problem, leader, followers, config, streams, on_iteration)
    finally:
        problem.set_tau(initial_tau)


def _run_match(
    problem: BilevelProblem,
    leader: Leader,
    followers: Sequence[FollowerLearner],
    config: MatchConfig,
    streams,
    on_iteration: Callable[[dict[str, float]], None] | None = None,
) -> MatchResult:
    if len(followers) != problem.n_followers:
        raise ValueError(
            f"the problem has {problem.n_followers} follower role(s), got {len(followers)} learners"
        )
    problem.forget()  # what ran on this problem before must not change this match
    leader.reset(problem, streams.leader)
    announce_budget(leader, config.iterations)
    for follower, rng in zip(followers, streams.followers, strict=True):
        follower.reset(problem, rng)
    game = len(followers) > 1
    # checked after the resets: a learner's policy exists only once it has a problem
    unfit = [type(f).__name__ for f in followers
             if game and not isinstance(f, GameFollowerLearner)]
    if unfit:
        raise ValueError(f"a lower level of {len(followers)} followers needs learners that "
                         f"play a game; {unfit[0]} does not")
    from tqdm.auto import tqdm  # here: a refused config's process never draws a bar

    schedule = entropy_schedule(leader)
    exact = metrics_for(problem)
    rows: list[dict[str, float]] = []
    below_tolerance = 0
    stopped_by = "iterations"
    start = time.perf_counter()
    bar = tqdm(range(1, config.iterations + 1), disable=not config.progress, unit="it",
               desc="match", leave=False)
    iteration = 0
    for iteration in bar:
        if schedule is not None:
            problem.set_tau(schedule(iteration - 1))
        for _ in range(config.follower_steps):
            if game:
                profile = tuple(f.policy for f in followers)
                for follower in followers:
                    follower.see_others(profile)
            for follower in followers:
                follower.step(leader.x)
        diagnostics = leader.step([f.policy for f in followers])
        grad_norm = diagnostics.get("grad_norm", math.inf)
        below_tolerance = below_tolerance + 1 if grad_norm < config.tolerance else 0
        elapsed = time.perf_counter() - start
        if below_tolerance >= config.patience:
            stopped_by = "tolerance"
        elif elapsed > config.max_seconds:
            stopped_by = "time"
        last = stopped_by != "iterations" or iteration == config.iterations
        if iteration % config.metrics_every == 0 or last or iteration == 1:
            profile = tuple(f.policy for f in followers)
            row = {"iteration": iteration, "tau": problem.tau,
                   **exact(leader.x, leader.penalized_policy, profile)}
            row.update({k: float(v) for k, v in diagnostics.items()})
            row["samples"] = leader.samples + sum(f.samples for f in followers)
            row["wall_seconds"] = time.perf_counter() - start
            rows.append(row)
            if on_iteration is not None:
                on_iteration(row)
            if config.progress:
                postfix = {"f": f"{row['upper_objective']:.4f}"}
                gap = row.get("lower_level_gap", math.nan)
                if math.isfinite(gap):  # a sampled problem has no exact lower-level gap
                    postfix["gap"] = f"{gap:.1e}"
                bar.set_postfix(postfix, refresh=False)
        if stopped_by != "iterations":
            break
    bar.close()
    final = rows[-1]
    summary: dict[str, float | int | str] = {
        **exact.summarize(final),
        "iterations": iteration,
        "samples": int(final["samples"]),
        "wall_seconds": time.perf_counter() - start,
        "stopped_by": stopped_by,
    }
    return MatchResult(
        metrics=rows,
        summary=summary,
        x=leader.x.copy(),
        leader_policy=(None if exact.game is None else problem.leader_policy(leader.x).copy()),
        follower_policies=tuple(f.policy.copy() for f in followers),
    )
