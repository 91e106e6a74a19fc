"""How close the exact leaders get to the strong Stackelberg value with their defaults, and how
long a match takes (issue 9, done-means 1).

What is measured
----------------
``--games`` (default 100) random bimatrix games, each with 2 to 6 leader and 2 to 6 follower
actions and payoffs uniform in [0, 1] (``numpy.random.default_rng(seed)`` for seeds
``--first-seed``, ``--first-seed + 1``, ...; the defaults were chosen on seeds 5000-5019 and
the search's screening and halving on seeds 30000-30099, the benchmark's default seeds start at
10000). Each leader (``pbrl-value``, ``pbrl-bellman``,
``hypergradient`` by default) plays each game with the defaults only: a config that names just
the algorithm and the ``best-response`` follower (``tau = 0.01``, ``run.iterations = 1000``),
except that the exact metrics are recorded at the last iteration only (``run.metrics_every =
1000``): they are observation, not the leader's work. Reported per leader: the share of games
whose ``leader_value`` (the leader's value against an exact unregularized best response, ties
broken for the leader) is within 0.01 of the LP's strong Stackelberg value, the median and
worst gap, the largest amount by which a leader value exceeds the SSE (must be at most 1e-9),
and the median CPU time per match (``time.process_time``, one core, BLAS pinned to one thread).
Targets: ``pbrl-value`` and ``pbrl-bellman`` >= 95%, ``hypergradient`` >= 90%, median time
<= 0.5 s.

Usage
-----
    .venv/bin/python benchmarks/bench_defaults.py             # 100 games x 3 leaders, ~3 min
    .venv/bin/python benchmarks/bench_defaults.py --games 10 --no-write

The markdown table is printed and written to ``BENCHMARKS.md`` (section
``## Exact leaders with their defaults``, replaced if present; other sections are kept).
"""

from __future__ import annotations

import _common as shared  # isort: skip

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import games
from agents.registry import FOLLOWERS, LEADERS
from stackelberg.app.config import DEFAULT_TAU
from stackelberg.coordinator import MatchConfig, run_match
from stackelberg.problem import StackelbergProblem
from stackelberg.seeding import run_streams

SECTION_HEADING = "## Exact leaders with their defaults"
TOLERANCE = 0.01
TARGETS = {"pbrl-value": 0.95, "pbrl-bellman": 0.95, "hypergradient": 0.90}
TARGET_SECONDS = 0.5


@dataclass(frozen=True)
class LeaderResult:
    """One leader's gaps to the SSE value and CPU seconds, one entry per game."""

    leader: str
    gaps: np.ndarray
    seconds: np.ndarray

    @property
    def within(self) -> float:
        return float(np.mean(self.gaps <= TOLERANCE))


def random_matrix_game(seed: int):
    """Payoffs uniform in [0, 1], 2 to 6 actions per player."""
    rng = np.random.default_rng(seed)
    B, A = (int(n) for n in rng.integers(2, 7, size=2))
    return games.matrix_game(rng.uniform(size=(B, A)).tolist(),
                             rng.uniform(size=(B, A)).tolist())


def measure(leader: str, seeds: Sequence[int]) -> LeaderResult:
    """Play ``leader`` with its defaults against the exact follower on every game."""
    spec, follower = LEADERS[leader], FOLLOWERS["best-response"]
    iterations = MatchConfig().iterations
    match = MatchConfig(iterations=iterations, metrics_every=iterations, progress=False)
    gaps, seconds = [], []
    for index, seed in enumerate(seeds):
        problem = StackelbergProblem(random_matrix_game(seed), DEFAULT_TAU)
        start = time.process_time()
        result = run_match(problem, spec.factory(spec.make_config()),
                           [follower.factory(follower.make_config())], match,
                           run_streams(index))
        seconds.append(time.process_time() - start)
        gaps.append(result.summary["sse_gap"])
    return LeaderResult(leader, np.array(gaps), np.array(seconds))


def table(results: Sequence[LeaderResult], games_count: int, first_seed: int,
          argv: Sequence[str]) -> str:
    lines = [
        SECTION_HEADING, "",
        f"{games_count} random bimatrix games (2-6 x 2-6 actions, payoffs uniform in [0, 1], "
        f"seeds {first_seed}-{first_seed + games_count - 1}); every leader with its defaults "
        f"against the `best-response` follower (tau {DEFAULT_TAU}, {MatchConfig().iterations} "
        "iterations, metrics at the last one only). Gap: the LP's strong Stackelberg value "
        "minus the leader's value against an exact unregularized best response (ties to the "
        "leader). Time: CPU seconds of one match on one core (`time.process_time`).", "",
        "| leader | within 0.01 (target) | median gap | worst gap | most above the SSE "
        "| median time (target 0.5 s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| `{r.leader}` | {r.within:.0%} ({TARGETS.get(r.leader, 0):.0%}) "
            f"| {np.median(r.gaps):.1e} | {r.gaps.max():.4f} | {max(0.0, -r.gaps.min()):.1e} "
            f"| {np.median(r.seconds):.2f} s |")
    lines.append("")
    lines += shared.provenance(shared.machine_info(), argv, Path(__file__))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--games", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=10_000)
    parser.add_argument("--leaders", nargs="+", default=list(TARGETS))
    shared.add_output_arguments(parser)
    args = parser.parse_args(argv)
    seeds = range(args.first_seed, args.first_seed + args.games)
    results = []
    for leader in args.leaders:
        results.append(measure(leader, seeds))
        print(f"{leader}: {results[-1].within:.0%} within {TOLERANCE}", file=sys.stderr)
    shared.publish(table(results, args.games, args.first_seed, argv), args, SECTION_HEADING)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
