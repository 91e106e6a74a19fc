"""Cost of one exact PBRL iteration, in units of one dense linear solve of the same size.

What is measured
----------------
For each number of states ``S`` (default 10, 100 and 500) we draw a random Stackelberg Markov
game (``games.random_markov.random_markov_game``, 3 leader and 3 follower actions, gamma 0.9)
and build the bilevel problem with follower entropy weight ``tau`` (default 0.01). One *exact
PBRL iteration* is what one iteration of a match does (``stackelberg.coordinator.run_match``
with one follower step):

1. ``BestResponseFollower.step(x)``: the follower's exact soft best response to the leader's
   current logits, by policy iteration warm-started from its previous answer;
2. ``PBRLLeader.step([follower.policy])``: one exact-gradient step of the penalized objective,
   for the ``value`` and the ``bellman`` penalty.

The first ``--warmup`` iterations are run and discarded: what matters is the steady state of a
match, where the warm-started best response needs only a few policy-iteration steps. The state
after the warm-up is snapshotted, and every repeat runs the same ``n`` iterations from that
snapshot (``n`` is chosen so that one repeat takes about ``--seconds``), so repeats time the
identical computation and differ only by machine noise. We report the median over
``--repeats`` repeats, and the share of the follower step and of the leader step within it
(timed around each call).

Why a ratio
-----------
Absolute seconds depend on the CPU, the BLAS and the load of the machine. The reference is the
median time of one ``numpy.linalg.solve(M, b)`` with ``M = I - 0.9 P`` (``P`` a random dense
row-stochastic ``S x S`` matrix, so ``M`` is as well conditioned as the policy-evaluation
systems) and ``b`` a vector, timed the same way in the same process; its repeats take turns
with the iterations' repeats, so both see the same load of the machine. The ratio
"iteration time / solve time" is then roughly hardware independent: it counts how many solves'
worth of work an iteration is. The target is at most 10.

Clock and BLAS threads
----------------------
By default the clock is the CPU time of this process (``time.process_time``): when another
process shares the cores, being descheduled does not count, while wall time would inflate
whichever measurement happened to run under contention (``--clock wall`` is available). The
script pins OpenBLAS/OpenMP/MKL to one thread unless the corresponding environment
variable is already set (e.g. ``OPENBLAS_NUM_THREADS=2 make bench``). On a small, shared
machine a multithreaded BLAS that competes with another process for the cores makes timings
erratic (a 500 x 500 solve took 2 ms on one thread, 8-23 ms with two or more threads on
two busy cores), and single-threaded CPU time makes the ratio a count of work rather than of
scheduling luck.

Usage
-----
    make bench                      # .venv/bin/python benchmarks/bench_pbrl_iteration.py
    .venv/bin/python benchmarks/bench_pbrl_iteration.py --states 10 100 --repeats 3

The markdown table is printed and written to ``BENCHMARKS.md`` (section
``## Exact PBRL iteration cost``, replaced if present; other sections are kept).
"""

from __future__ import annotations

# First: pins the BLAS threads before numpy loads (see the docstring).
import _common  # isort: skip
from _common import CLOCKS, Timing, calls_for, interleaved_repeats, machine_info  # isort: skip

import argparse
import copy
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from agents.followers.exact import BestResponseFollower
from agents.leaders.pbrl import PENALTIES, PBRLConfig, PBRLLeader
from games.random_markov import random_markov_game
from stackelberg.problem import StackelbergProblem
from stackelberg.seeding import run_streams

SECTION_HEADING = "## Exact PBRL iteration cost"
TARGET_SOLVES = 10.0
N_LEADER_ACTIONS = 3
N_FOLLOWER_ACTIONS = 3
GAMMA = 0.9
BASELINE_GAMMA = 0.9


# -- timing --------------------------------------------------------------------------------

class ReferenceSolve:
    """``numpy.linalg.solve(M, b)``, ``M = I - 0.9 P`` with ``P`` a random stochastic matrix."""

    def __init__(self, n_states: int, rng: np.random.Generator, clock: Callable[[], float]):
        P = rng.dirichlet(np.ones(n_states), size=n_states)
        self.M = np.eye(n_states) - BASELINE_GAMMA * P
        self.b = rng.standard_normal(n_states)
        self.clock = clock

    def run(self, n: int) -> float:
        """Seconds taken by ``n`` solves."""
        solve, M, b = np.linalg.solve, self.M, self.b
        start = self.clock()
        for _ in range(n):
            solve(M, b)
        return self.clock() - start


class PBRLIteration:
    """``follower.step(x)`` then ``leader.step([follower.policy])``, from a warmed-up match.

    The follower and the leader are reset as in a match and run for ``warmup`` iterations; that
    state is the snapshot every :meth:`run` starts from (a deep copy sharing the problem), so
    every repeat times the same iterations. Each run also records the follower's share of the
    time spent inside the two calls.
    """

    def __init__(
        self,
        problem: StackelbergProblem,
        penalty: str,
        seed: int,
        warmup: int,
        clock: Callable[[], float],
    ):
        streams = run_streams(seed)
        leader = PBRLLeader(PBRLConfig(penalty=penalty))
        follower = BestResponseFollower()
        leader.reset(problem, streams.leader)
        follower.reset(problem, streams.followers[0])
        for _ in range(warmup):
            follower.step(leader.x)
            leader.step([follower.policy])
        self.problem = problem
        self.snapshot = (follower, leader)
        self.clock = clock
        self.follower_shares: list[float] = []

    def run(self, n: int) -> float:
        """Seconds taken by ``n`` iterations from the snapshot."""
        follower, leader = copy.deepcopy(self.snapshot, memo={id(self.problem): self.problem})
        clock = self.clock
        follower_time = leader_time = 0.0
        start = clock()
        for _ in range(n):
            t0 = clock()
            follower.step(leader.x)
            t1 = clock()
            leader.step([follower.policy])
            t2 = clock()
            follower_time += t1 - t0
            leader_time += t2 - t1
        elapsed = clock() - start
        self.follower_shares.append(follower_time / (follower_time + leader_time))
        return elapsed


# -- measurements --------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One game size and penalty: the iteration, its follower share, and the reference."""

    n_states: int
    penalty: str
    iteration: Timing
    follower_share: float  # median over repeats of follower / (follower + leader) time
    solve: Timing

    @property
    def ratio(self) -> float:
        return self.iteration.seconds / self.solve.seconds

    @property
    def meets_target(self) -> bool:
        return self.ratio <= TARGET_SOLVES

    @property
    def follower_solves(self) -> float:
        return self.follower_share * self.ratio

    @property
    def leader_solves(self) -> float:
        return (1.0 - self.follower_share) * self.ratio


def measure_size(n_states: int, args: argparse.Namespace, rng: np.random.Generator) -> list[Row]:
    """Time the reference solve and one iteration per penalty on a game with ``n_states``."""
    clock = CLOCKS[args.clock]
    model = random_markov_game(
        n_states, N_LEADER_ACTIONS, N_FOLLOWER_ACTIONS, GAMMA, seed=args.seed
    )
    problem = StackelbergProblem(model, tau=args.tau)
    solve = ReferenceSolve(n_states, rng, clock)
    iterations = [
        PBRLIteration(problem, penalty, args.seed, args.warmup, clock)
        for penalty in args.penalties
    ]
    runs = [solve.run, *(it.run for it in iterations)]
    calls = [calls_for(run, args.seconds) for run in runs]
    for it in iterations:
        it.follower_shares.clear()  # keep only the timed repeats
    samples = interleaved_repeats(runs, calls, args.repeats)
    solve_timing = Timing.of(samples[0], calls[0])
    return [
        Row(
            n_states=n_states,
            penalty=penalty,
            iteration=Timing.of(per_call, n),
            follower_share=statistics.median(it.follower_shares),
            solve=solve_timing,
        )
        for penalty, it, per_call, n in zip(
            args.penalties, iterations, samples[1:], calls[1:], strict=True
        )
    ]


def measure(args: argparse.Namespace) -> list[Row]:
    rows = []
    reference_seeds = np.random.SeedSequence(args.seed).spawn(len(args.states))
    for n_states, reference_seed in zip(args.states, reference_seeds, strict=True):
        for row in measure_size(n_states, args, np.random.default_rng(reference_seed)):
            rows.append(row)
            print(
                f"S={n_states:<4} {row.penalty:<8} {row.iteration.seconds:.3e} s/iteration, "
                f"{row.solve.seconds:.3e} s/solve, ratio {row.ratio:.1f}",
                file=sys.stderr,
                flush=True,
            )
    return rows


def _seconds(value: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def markdown_table(rows: Sequence[Row]) -> str:
    header = (
        "| S | penalty | iteration | solve | ratio (solves) | target ≤ 10 "
        "| follower step | leader step | spread (iter / solve) |"
    )
    lines = [header, "|" + "---|" * header.count(" | ") + "---|"]
    for row in rows:
        follower = f"{row.follower_solves:.1f} solves ({row.follower_share:.0%})"
        leader = f"{row.leader_solves:.1f} solves ({1 - row.follower_share:.0%})"
        lines.append(
            f"| {row.n_states} | {row.penalty} | {_seconds(row.iteration.seconds)} "
            f"| {_seconds(row.solve.seconds)} "
            f"| {row.ratio:.1f} | {'yes' if row.meets_target else '**no**'} "
            f"| {follower} | {leader} "
            f"| {row.iteration.spread:.0%} / {row.solve.spread:.0%} |"
        )
    return "\n".join(lines)


def report(rows: Sequence[Row], args: argparse.Namespace, machine: list[str]) -> str:
    failing = [r for r in rows if not r.meets_target]
    verdict = (
        "All configurations meet the target."
        if not failing
        else f"{len(failing)} of {len(rows)} configurations exceed the target."
    )
    leader_config = ", ".join(
        f"{k}={v}" for k, v in asdict(PBRLConfig()).items() if k != "penalty"
    )
    clock = {"cpu": "CPU time of the process (`time.process_time`)",
             "wall": "wall time (`time.perf_counter`)"}[args.clock]
    return "\n".join(
        [
            SECTION_HEADING,
            "",
            "Cost of one exact PBRL iteration (`BestResponseFollower.step(x)`, warm-started as in "
            "a match, then `PBRLLeader.step([follower.policy])`) as a multiple of one "
            "`numpy.linalg.solve` of the same size `S`. Random Markov game "
            f"(`random_markov_game`, {N_LEADER_ACTIONS} leader and {N_FOLLOWER_ACTIONS} "
            f"follower actions, gamma {GAMMA}, seed {args.seed}), tau {args.tau}, "
            f"leader `PBRLConfig` defaults ({leader_config}); "
            f"{args.warmup} warm-up iterations, then the median over {args.repeats} repeats of "
            f"about {args.seconds:g} s each, taking turns with the reference solve; clock: "
            f"{clock}. Target: at most {TARGET_SOLVES:g} solves per "
            f"iteration. {verdict}",
            "",
            markdown_table(rows),
            "",
            "Columns: *iteration* and *solve* are median seconds; *ratio* = iteration / solve; "
            "*follower step* and *leader step* split the iteration between the two calls (in "
            "solves, and as a share of the time inside them); *spread* is (max − min) / median "
            "over the repeats.",
            "",
            *_common.provenance(machine, args.argv, Path(__file__),
                                rerun="Rerun with `make bench`, or exactly this run with:"),
        ]
    )


# -- command line --------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Cost of one exact PBRL iteration as a multiple of one numpy.linalg.solve.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--states", type=int, nargs="+", default=[10, 100, 500],
                        help="numbers of states S of the random games")
    parser.add_argument("--tau", type=float, default=0.01, help="follower entropy weight")
    parser.add_argument("--penalties", nargs="+", choices=PENALTIES, default=list(PENALTIES),
                        help="PBRL penalties to time")
    parser.add_argument("--warmup", type=int, default=20,
                        help="iterations run before timing (reach the warm-started steady state)")
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="approximate duration of one timed repeat")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats; the median is kept")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                        help="cpu: process CPU time (robust to other processes on the cores); "
                        "wall: elapsed time")
    parser.add_argument("--seed", type=int, default=0, help="seed of the games and reference")
    _common.add_output_arguments(parser)
    args = parser.parse_args(argv)
    if any(s < 1 for s in args.states):
        parser.error("--states must be positive")
    if args.tau <= 0:
        parser.error("--tau must be > 0 (exact PBRL gradients need a unique best response)")
    if args.warmup < 0 or args.repeats < 1 or args.seconds <= 0:
        parser.error("--warmup must be >= 0, --repeats >= 1 and --seconds > 0")
    args.argv = list(argv)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    machine = machine_info()  # before measuring: records the load the run started under
    rows = measure(args)
    section = report(rows, args, machine)
    _common.publish(section, args, SECTION_HEADING)
    return 0


if __name__ == "__main__":
    sys.exit(main())
