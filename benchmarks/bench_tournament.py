"""What running a tournament costs beyond its matches, and what a second worker buys.

What is measured
----------------
1. **Speed-up.** ``--matches`` (default 8) matches of about ``--match-seconds`` (default 1.5 s)
   each: PBRL (value penalty) against the exact best response on one random Markov game
   (``--states`` states, 3 x 3 actions), one match per seed, the number of iterations
   calibrated so that one match takes about ``--match-seconds`` in this process. The
   tournament is played with ``workers=1`` (in this process) and ``workers=2`` (a pool of
   worker processes), each into a fresh results store; the speed-up is the ratio of the two
   wall times. Two workers include the start of the worker processes.
2. **Overhead per match.** ``--tiny`` (default 40) matches of 5 iterations of the matrix game.
   The overhead of an executor is the time its workers did not spend in matches, per match:
   ``(workers x wall time - sum of the match times) / matches``, where a match's time is the
   ``wall_seconds`` its worker measured around building and playing it. It covers checking the
   store, handing the match to a worker and its outcome back, and the transaction that stores
   it (SQLite with ``synchronous=FULL``: one fsync per match), and the start of the workers
   (the fork server they start from starts once per Python process, in the first repeat).
   ``--ray`` adds a local Ray instance (two CPUs), whose start (about 10 s) is included.

Every measurement is repeated ``--repeats`` times, taking turns, and the median is reported.
The clock is wall time: a speed-up from parallel workers exists only on the wall clock, so on a
machine that other processes share the numbers are noisy (the load average is recorded).

Usage
-----
    .venv/bin/python benchmarks/bench_tournament.py            # about a minute
    .venv/bin/python benchmarks/bench_tournament.py --ray --repeats 1 --no-write

The markdown table is printed and written to ``BENCHMARKS.md`` (section ``## Tournaments``,
replaced if present; other sections are kept).
"""

from __future__ import annotations

# First: it pins the BLAS threads before numpy loads (the worker processes inherit them).
import _common as shared  # isort: skip

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackelberg.app.tournament import TournamentSpec, parse_spec, run_tournament
from stackelberg.app.tournament.play import play_match
from stackelberg.results import ResultStore

SECTION_HEADING = "## Tournaments"
REPEATS_DEFAULT = 3


def spec_data(game: dict[str, Any], iterations: int, n_matches: int) -> dict[str, Any]:
    """One game, ``pbrl-value`` against ``best-response``, one match per seed."""
    return {
        "seeds": list(range(n_matches)),
        "budget": {"iterations": iterations, "metrics_every": 10},
        "games": [{"label": "game", **game}],
        "leaders": [{"algorithm": "pbrl-value"}],
        "followers": [{"learner": "best-response", "tau": 0.05}],
    }


def calibrated_spec(args: argparse.Namespace) -> TournamentSpec:
    """The speed-up spec, with iterations such that a match takes about ``match_seconds``."""
    game = {"id": "stackelberg/random-markov-v0", "n_states": args.states, "seed": 0}
    probe_iterations = 100
    probe = parse_spec(spec_data(game, probe_iterations, 1)).matches[0]
    seconds = play_match(probe).record.wall_seconds
    iterations = max(probe_iterations, round(probe_iterations * args.match_seconds / seconds))
    return parse_spec(spec_data(game, iterations, args.matches))


@dataclass(frozen=True)
class Run:
    """One tournament played into a fresh store: its wall time and its matches' times."""

    wall: float
    match_seconds: float  # sum over matches
    matches: int


def play(spec: TournamentSpec, workers: int, ray_address: str | None = None) -> Run:
    with tempfile.TemporaryDirectory(prefix="bench-tournament-") as out:
        start = time.perf_counter()
        result = run_tournament(spec, out, workers=workers, ray_address=ray_address,
                                progress=False)
        wall = time.perf_counter() - start
        if result.failed:
            raise RuntimeError(f"{result.failed} matches failed: {result.failures[0].error}")
        with ResultStore(out) as store:
            total = sum(r.wall_seconds for r in store.records())
    return Run(wall, total, result.ran)


@dataclass(frozen=True)
class Configuration:
    """One executor on one spec."""

    measurement: str  # "speed-up" or "overhead"
    executor: str
    workers: int
    run: Callable[[], Run]


@dataclass(frozen=True)
class Row:
    """A configuration's runs, summarized by medians over the repeats."""

    configuration: Configuration
    runs: tuple[Run, ...]

    @property
    def wall(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def match_seconds(self) -> float:
        return statistics.median(r.match_seconds for r in self.runs)

    @property
    def matches(self) -> int:
        return self.runs[0].matches

    @property
    def overhead(self) -> float:
        """Worker time not spent in matches, per match."""
        workers = self.configuration.workers
        return statistics.median((workers * r.wall - r.match_seconds) / r.matches
                                 for r in self.runs)

    @property
    def spread(self) -> float:
        walls = [r.wall for r in self.runs]
        return (max(walls) - min(walls)) / self.wall


def repeated(configurations: Sequence[Configuration], repeats: int) -> list[Row]:
    """Run every configuration ``repeats`` times, taking turns."""
    runs: list[list[Run]] = [[] for _ in configurations]
    for _ in range(repeats):
        for configuration, out in zip(configurations, runs, strict=True):
            out.append(configuration.run())
            print(f"{configuration.measurement:<9} {configuration.executor:<18} "
                  f"{out[-1].wall:7.2f} s wall, {out[-1].match_seconds:7.2f} s in matches",
                  file=sys.stderr, flush=True)
    return [Row(c, tuple(out)) for c, out in zip(configurations, runs, strict=True)]


def measure(args: argparse.Namespace) -> tuple[list[Row], int]:
    spec = calibrated_spec(args)
    iterations = spec.matches[0].config.run.iterations
    tiny = parse_spec(spec_data({"id": "stackelberg/matrix-v0"}, 5, args.tiny))
    configurations = [
        Configuration("speed-up", "in-process", 1, lambda: play(spec, 1)),
        Configuration("speed-up", "2 worker processes", 2, lambda: play(spec, 2)),
        Configuration("overhead", "in-process", 1, lambda: play(tiny, 1)),
        Configuration("overhead", "2 worker processes", 2, lambda: play(tiny, 2)),
    ]
    if args.ray:
        configurations.append(Configuration("overhead", "Ray, local, 2 CPUs", 2,
                                            lambda: play(tiny, 2, ray_address="local")))
    return repeated(configurations, args.repeats), iterations


# -- report --------------------------------------------------------------------------------


def markdown_tables(rows: Sequence[Row]) -> str:
    speed = [r for r in rows if r.configuration.measurement == "speed-up"]
    base = next(r for r in speed if r.configuration.workers == 1)
    lines = ["| executor | matches | wall | in matches | speed-up | spread |",
             "|---|---|---|---|---|---|"]
    for r in speed:
        lines.append(f"| {r.configuration.executor} | {r.matches} | {r.wall:.2f} s "
                     f"| {r.match_seconds:.2f} s "
                     f"| {base.wall / r.wall:.2f}x | {r.spread:.0%} |")
    lines += ["", "| executor | matches | wall | in matches | overhead per match | spread |",
              "|---|---|---|---|---|---|"]
    for r in rows:
        if r.configuration.measurement == "overhead":
            lines.append(f"| {r.configuration.executor} | {r.matches} | {r.wall:.2f} s "
                         f"| {r.match_seconds:.2f} s | {r.overhead * 1e3:.1f} ms "
                         f"| {r.spread:.0%} |")
    return "\n".join(lines)


def report(rows: Sequence[Row], iterations: int, args: argparse.Namespace,
           machine: list[str]) -> str:
    speed = {r.configuration.workers: r for r in rows
             if r.configuration.measurement == "speed-up"}
    return "\n".join([
        SECTION_HEADING,
        "",
        f"`run_tournament` on {args.matches} matches of about {args.match_seconds:g} s each "
        f"(PBRL value penalty against the exact best response on a random Markov game with "
        f"{args.states} states, {iterations} iterations, one match per seed) with one worker "
        f"(in-process) and two worker processes: speed-up "
        f"{speed[1].wall / speed[2].wall:.2f}x. Then {args.tiny} tiny matches (matrix game, 5 "
        "iterations) for the overhead per match: (workers x wall time - time in matches) / "
        "matches, the matches' own times as their workers measured them. Median over "
        f"{args.repeats} repeats, taking turns; clock: wall time (`time.perf_counter`), noisy "
        "on a shared machine.",
        "",
        markdown_tables(rows),
        "",
        "Columns: *wall* is the tournament's wall time, from the call of `run_tournament` to "
        "its return: it includes starting the worker processes (forked from a fork server "
        "that starts once per Python process, in the first repeat) or the Ray instance; *in "
        "matches* sums the matches' times; *spread* is (max − min) / median of the wall times "
        "over the repeats.",
        "",
        *shared.provenance(machine, args.argv, Path(__file__)),
    ])


# -- command line --------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Tournament speed-up from one to two workers, and overhead per match.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--matches", type=int, default=8, help="matches of the speed-up run")
    parser.add_argument("--match-seconds", type=float, default=1.5,
                        help="approximate duration of one speed-up match")
    parser.add_argument("--states", type=int, default=20,
                        help="states of the random Markov game of the speed-up run")
    parser.add_argument("--tiny", type=int, default=40, help="matches of the overhead run")
    parser.add_argument("--ray", action="store_true",
                        help="also measure the overhead on a local Ray instance")
    parser.add_argument("--repeats", type=int, default=REPEATS_DEFAULT,
                        help="repeats; the median is kept")
    shared.add_output_arguments(parser)
    args = parser.parse_args(argv)
    if min(args.matches, args.states, args.tiny, args.repeats) < 1 or args.match_seconds <= 0:
        parser.error("--matches, --states, --tiny and --repeats must be >= 1, "
                     "--match-seconds > 0")
    args.argv = list(argv)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    machine = shared.machine_info()  # before measuring: records the load the run started under
    rows, iterations = measure(args)
    section = report(rows, iterations, args, machine)
    shared.publish(section, args, SECTION_HEADING)
    return 0


if __name__ == "__main__":
    sys.exit(main())
