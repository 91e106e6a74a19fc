"""HPGD's Four-Rooms table (Thoma et al., NeurIPS 2024, Table 1), rerun with our leaders
(issue 13; docs/theory.md §10).

What is measured
----------------
For each of the 9 rows (follower entropy weight ``lam`` x incentive cost ``beta``) and each
leader of :data:`SETUPS`, one match per seed (``stackelberg.coordinator.run_match``) on
:func:`games.four_rooms.four_rooms_problem` (HPGD's defaults otherwise). The objective is HPGD's:
the planner's exact discounted value from the start, averaged over the two goal contexts,
against the follower's exact soft best response at ``tau = lam``, at the match's final
incentive (HPGD average their exact value over the last 1000 of 10 000 iterations). We report
its mean and standard error over the seeds (the standard deviation over ``sqrt(n)``, as HPGD),
HPGD's published mean +- s.e. beside it, the margin of our best exact leader, and the samples
(environment transitions) the sample-based leaders drew.

The exact leaders (``hypergradient``, ``pbrl-value``, ``pbrl-bellman``) play against the exact
``best-response`` follower, keep ``tau = lam`` (``tau_ratio = 1``: the follower's
regularization is part of HPGD's problem) and use the default multi-start search of
:mod:`agents.leaders.search`; the sample-based ones play against the follower learners the
registry pairs them with (``soft-q``; ``zeroth-order`` probes with its own soft-Q oracle) on
:mod:`games.four_rooms_sampled`. The iterations and settings of each are in :data:`SETUPS`
(chosen on seed 0; reported on seeds 100-109, every leader).

Matches run in ``--workers`` processes with BLAS pinned to one thread each, the longest first
(:attr:`Setup.cpu_estimate`) and one at a time per worker, so that the workers finish together.
The section reports the CPU seconds per leader and per row (each match's ``process_time``), the
CPU of all the run's processes, its wall time and the load average during the run: on a
shared machine the wall time says little, CPU / workers is the wall time on free cores.

Usage
-----
    .venv/bin/python benchmarks/bench_four_rooms.py   # the whole table: 450 matches, ~26 CPU min
    .venv/bin/python benchmarks/bench_four_rooms.py --seeds 0 1 2 3 4 5 6 7 8 9 --no-write

It prints the table, writes the ``## HPGD's Four-Rooms table`` section of ``BENCHMARKS.md``,
the figure ``docs/four_rooms.png`` (one panel per ``lam``: the objective of the best exact and
the best sample-based leader against iterations, mean over seeds, HPGD's published value as a
horizontal line) and the raw results as JSON (``--json``).
"""

from __future__ import annotations

import _common as shared  # isort: skip

import argparse
import datetime
import json
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from games.four_rooms_entry import FourRoomsMatch, play_four_rooms

HEADING = "## HPGD's Four-Rooms table"

#: HPGD's Table 1: (lam, beta) -> (HPGD mean, s.e., AMD mean, zero-order mean).
HPGD_TABLE: dict[tuple[float, float], tuple[float, float, float, float]] = {
    (0.001, 1.0): (0.91, 0.088, 0.58, 0.59),
    (0.001, 3.0): (0.51, 0.006, 0.51, 0.50),
    (0.001, 5.0): (0.46, 0.006, 0.46, 0.46),
    (0.003, 1.0): (0.95, 0.002, 1.00, 0.91),
    (0.003, 3.0): (0.73, 0.001, 0.39, 0.40),
    (0.003, 5.0): (0.29, 0.003, 0.32, 0.32),
    (0.005, 1.0): (1.17, 0.011, 1.28, 1.15),
    (0.005, 3.0): (1.01, 0.002, 1.13, 1.02),
    (0.005, 5.0): (0.87, 0.003, 0.97, 0.79),
}


@dataclass(frozen=True)
class Setup:
    """How one leader plays: its follower learner, config overrides and iterations."""

    follower: str
    iterations: int
    exact: bool
    params: dict = field(default_factory=dict)
    #: CPU seconds of one match, about (measured, mean over the 9 rows): only orders the work,
    #: the longest matches first, so that the workers finish together.
    cpu_estimate: float = 1.0


#: The leaders of the table and their budgets (chosen on seed 0: ``tau_ratio = 1`` keeps the
#: follower's lam; RAC with a fixed entropy weight and ``xi0 = 20`` was the best of four
#: settings on three rows; zeroth-order's step and radius the better of two).
SETUPS: dict[str, Setup] = {
    "hypergradient": Setup("best-response", 200, True, {"tau_ratio": 1.0}, 3.0),
    "pbrl-value": Setup("best-response", 200, True, {"tau_ratio": 1.0}, 5.0),
    "pbrl-bellman": Setup("best-response", 15, True, {"tau_ratio": 1.0}, 3.0),
    "rac": Setup("soft-q", 400, False, {"xi0": 20.0, "tau_decay": 0.0}, 2.8),
    "pbrl-value-sampled": Setup("soft-q", 10, False, cpu_estimate=3.1),
    "zeroth-order": Setup("best-response", 20, False,
                          {"alpha": 0.2, "radius": 0.5, "response": "follower"}, 2.8),
}


#: The table's leaders (``pbrl-bellman`` runs, but its inner L-BFGS over the 836 policy logits
#: costs about 0.2 CPU s per iteration: ``--leaders`` adds it).
DEFAULT_LEADERS = ("hypergradient", "pbrl-value", "rac", "pbrl-value-sampled", "zeroth-order")


def play(task: tuple[str, float, float, int]) -> FourRoomsMatch:
    """One match of ``leader`` on row ``(lam, beta)`` with ``seed``."""
    name, lam, beta, seed = task
    setup = SETUPS[name]
    return play_four_rooms(name, setup.follower, seed, setup.iterations, setup.params,
                           lam=lam, beta=beta)


def cell(outcome: FourRoomsMatch) -> tuple[str, float, float]:
    """``(leader, lam, beta)`` of a match."""
    return outcome.leader, outcome.params["lam"], outcome.params["beta"]


def summary(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error (standard deviation over ``sqrt(n)``, as HPGD)."""
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std() / math.sqrt(len(a)))


def table(outcomes: list[FourRoomsMatch], leaders: Sequence[str]) -> tuple[list[str], int]:
    """The markdown rows, and on how many rows our best exact leader reaches HPGD's mean."""
    exact = [n for n in leaders if SETUPS[n].exact]
    sampled = [n for n in leaders if not SETUPS[n].exact]
    lines = ["| lam | beta | HPGD | AMD | zero-order (HPGD's) | "
             + " | ".join(leaders) + " | best exact - HPGD | best sample-based (samples) |",
             "|---|---|---|---|---|" + "---|" * len(leaders) + "---|---|"]
    beaten = 0
    for (lam, beta), (mean, se, amd, zo) in HPGD_TABLE.items():
        stats = {n: summary([o.value for o in outcomes
                             if cell(o) == (n, lam, beta)])
                 for n in leaders}
        cells = [f"{stats[n][0]:.3f} ± {stats[n][1]:.3f}" for n in leaders]
        best = max(exact, key=lambda n: stats[n][0]) if exact else None
        margin = stats[best][0] - mean if best else float("nan")
        beaten += margin >= 0
        if sampled:
            top = max(sampled, key=lambda n: stats[n][0])
            samples = np.mean([o.samples for o in outcomes
                               if cell(o) == (top, lam, beta)])
            sample_cell = f"{top} {stats[top][0]:.3f} ({samples:.2g})"
        else:
            sample_cell = "-"
        lines.append(f"| {lam} | {beta:g} | {mean:.2f} ± {se:.3f} | {amd:.2f} | {zo:.2f} | "
                     + " | ".join(cells)
                     + f" | {best} {margin:+.3f} | {sample_cell} |")
    return lines, beaten


#: The README's 9-row summary sits between these lines; a run rewrites what is between them.
README_MARKERS = ("<!-- four-rooms-summary: written by benchmarks/bench_four_rooms.py -->",
                  "<!-- /four-rooms-summary -->")


def readme_summary(outcomes: list[FourRoomsMatch], leaders: Sequence[str]) -> list[str]:
    """The README's table: per row, HPGD's published mean ± s.e. beside our best exact and our
    best sample-based leader (mean ± s.e. over the seeds, and its samples per match)."""
    def best(names: list[str], lam: float, beta: float) -> tuple[str, float, float, float]:
        stats = {n: summary([o.value for o in outcomes if cell(o) == (n, lam, beta)])
                 for n in names}
        top = max(names, key=lambda n: stats[n][0])
        samples = float(np.mean([o.samples for o in outcomes if cell(o) == (top, lam, beta)]))
        return top, *stats[top], samples

    exact = [n for n in leaders if SETUPS[n].exact]
    sampled = [n for n in leaders if not SETUPS[n].exact]

    def seeds(names: list[str]) -> str:
        chosen = sorted({o.seed for o in outcomes if o.leader in names})
        return f"{chosen[0]}-{chosen[-1]} ({len(chosen)})" if chosen else "none"

    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"Measured {date}: {len(outcomes)} matches, seeds {seeds(exact)} for the exact "
             f"leaders and {seeds(sampled)} for the sample-based ones.", "",
             "| lambda | beta | HPGD | best exact (ours) | margin | best sample-based (ours) "
             "| its samples per match |", "|---|---|---|---|---|---|---|"]
    for (lam, beta), (mean, se, _, _) in HPGD_TABLE.items():
        row = f"| {lam} | {beta:g} | {mean:.2f} ± {se:.3f} |"
        if exact:
            name, value, error, _ = best(exact, lam, beta)
            row += f" {value:.3f} ± {error:.3f} ({name}) | {value - mean:+.3f} |"
        else:
            row += " - | - |"
        if sampled:
            name, value, error, samples = best(sampled, lam, beta)
            row += f" {value:.3f} ± {error:.3f} ({name}) | {samples:.2g} |"
        else:
            row += " - | - |"
        lines.append(row)
    return lines


def replace_marked(document: str, lines: list[str]) -> str:
    """``document`` with what lies between :data:`README_MARKERS` replaced by ``lines``."""
    start, end = (document.index(marker) for marker in README_MARKERS)
    head = document[:start + len(README_MARKERS[0])]
    return "\n".join([head, *lines, document[end:]])


def draw(outcomes: list[FourRoomsMatch], leaders: Sequence[str], path: Path) -> None:
    """One panel per ``lam``: mean objective against iterations for every leader and ``beta``,
    HPGD's published means as dotted lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lams = sorted({lam for lam, _ in HPGD_TABLE})
    betas = sorted({beta for _, beta in HPGD_TABLE})
    fig, axes = plt.subplots(1, len(lams), figsize=(5 * len(lams), 4.2), sharey=True)
    colours = dict(zip(betas, ("tab:blue", "tab:orange", "tab:green"), strict=False))
    styles = dict(zip(leaders, ("-", "--", "-.", ":", (0, (5, 1)), (0, (1, 3))),
                      strict=False))
    for ax, lam in zip(axes, lams, strict=True):
        for beta in betas:
            for name in leaders:
                runs = [o.curve for o in outcomes if cell(o) == (name, lam, beta) and o.curve]
                if not runs:
                    continue
                length = min(len(c) for c in runs)
                its = [c[0] for c in runs[0][:length]]
                mean = np.mean([[v for _, v in c[:length]] for c in runs], axis=0)
                ax.plot(its, mean, ls=styles[name], color=colours[beta], lw=1.2,
                        label=f"{name}" if beta == betas[0] else None)
            ax.axhline(HPGD_TABLE[(lam, beta)][0], color=colours[beta], ls=":", lw=2)
            ax.text(1, HPGD_TABLE[(lam, beta)][0], f"HPGD beta={beta:g}", fontsize=7,
                    color=colours[beta], va="bottom")
        ax.set_xscale("log")
        ax.set_title(f"lam = {lam} (colour: beta 1 / 3 / 5)", fontsize=10)
        ax.set_xlabel("leader iteration")
    axes[0].set_ylabel("planner's exact objective (HPGD's measure)")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}", file=sys.stderr)


@dataclass(frozen=True)
class RunCost:
    """What a run cost: wall seconds, the CPU seconds of every process (workers included, their
    start-up too) and the 1-minute load average seen at each finished match."""

    wall: float
    cpu: float
    loads: tuple[float, ...]


def cost_lines(outcomes: list[FourRoomsMatch], leaders: Sequence[str]) -> list[str]:
    """CPU seconds of the matches, per leader and per row (from each match's own clock)."""
    def cpu(keep) -> str:
        chosen = [o.cpu_seconds for o in outcomes if keep(o)]
        return f"{sum(chosen) / 60:.1f} min ({np.mean(chosen):.1f} s/match)" if chosen else "-"

    per_leader = "; ".join(f"`{n}` {cpu(lambda o, n=n: o.leader == n)}" for n in leaders)
    per_row = "; ".join(f"({lam}, {beta:g}) {cpu(lambda o, r=(lam, beta): cell(o)[1:] == r)}"
                        for lam, beta in HPGD_TABLE)
    return [f"CPU per leader: {per_leader}.", "",
            f"CPU per row (lam, beta): {per_row}."]


def run(tasks: list[tuple[str, float, float, int]], workers: int, reused: list[FourRoomsMatch],
        json_path: Path | None) -> tuple[list[FourRoomsMatch], RunCost]:
    """Play ``tasks`` in ``workers`` processes, the longest first (their order in ``tasks``)."""
    import resource

    def used() -> float:
        return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
                   for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))

    wall, cpu, loads = time.perf_counter(), used(), []
    outcomes = list(reused)
    pool = multiprocessing.get_context("spawn").Pool(workers)
    try:
        # chunksize 1: a worker takes the next longest match when it is free
        for outcome in pool.imap_unordered(play, tasks, chunksize=1):
            outcomes.append(outcome)
            loads.append(os.getloadavg()[0])
            if json_path:  # after every match: an interrupted run keeps what it played
                json_path.write_text(json.dumps([asdict(o) for o in outcomes]))
            print(f"{len(outcomes) - len(reused):>4}/{len(tasks)} {outcome.leader:>20} "
                  f"{outcome.params} seed={outcome.seed}: {outcome.value:.4f} "
                  f"({outcome.cpu_seconds:.1f} CPU s, load {loads[-1]:.1f})",
                  file=sys.stderr, flush=True)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()  # the workers are reaped: RUSAGE_CHILDREN counts them
    return outcomes, RunCost(time.perf_counter() - wall, used() - cpu, tuple(loads))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(100, 110)))
    parser.add_argument("--sampled-seeds", type=int, nargs="+", default=None,
                        help="seeds of the sample-based leaders (default: --seeds)")
    parser.add_argument("--leaders", nargs="+", default=list(DEFAULT_LEADERS),
                        choices=list(SETUPS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--figure", type=Path, default=shared.REPO_ROOT / "docs" /
                        "four_rooms.png")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write every match's outcome to this file")
    parser.add_argument("--reuse", type=Path, nargs="+", default=[],
                        help="outcomes written by --json earlier: their matches are not "
                        "played again")
    parser.add_argument("--readme", type=Path, default=shared.REPO_ROOT / "README.md",
                        help="file whose marked Four-Rooms summary is replaced")
    shared.add_output_arguments(parser)
    args = parser.parse_args(argv)
    sampled_seeds = args.seeds if args.sampled_seeds is None else args.sampled_seeds
    machine = shared.machine_info()  # now: its load average is the one at the start
    reused = [FourRoomsMatch(**{**d, "curve": tuple(map(tuple, d["curve"]))})
              for path in args.reuse for d in json.loads(path.read_text())]
    known = {(*cell(o), o.seed) for o in reused}
    seeds = {name: args.seeds if SETUPS[name].exact else sampled_seeds
             for name in args.leaders}
    reused = [o for o in reused if o.leader in args.leaders and o.seed in seeds[o.leader]]
    tasks = [(name, lam, beta, seed) for (lam, beta) in HPGD_TABLE for name in args.leaders
             for seed in seeds[name] if (name, lam, beta, seed) not in known]
    # the longest matches first, so that the workers finish together (a stable sort: within a
    # leader the rows and seeds keep their order)
    tasks.sort(key=lambda t: -SETUPS[t[0]].cpu_estimate)
    outcomes, cost = run(tasks, args.workers, reused, args.json)
    cpu_matches = sum(o.cpu_seconds for o in outcomes)  # every match, the reused ones included
    lines, beaten = table(outcomes, args.leaders)
    margins = [line.split(" | ")[-2].split()[-1] for line in lines[2:]]
    budgets = ", ".join(f"`{n}` {SETUPS[n].iterations} its vs `{SETUPS[n].follower}`"
                        + (f" ({', '.join(f'{k}={v}' for k, v in SETUPS[n].params.items())})"
                           if SETUPS[n].params else "")
                        for n in args.leaders)
    loads = cost.loads or (os.getloadavg()[0],)  # no match played: the load now
    section = "\n".join([
        HEADING, "",
        "`benchmarks/bench_four_rooms.py` (issue 13): HPGD's Four-Rooms incentive design "
        "(Thoma et al., NeurIPS 2024, Table 1), their objective (the planner's exact value "
        "from the start, both contexts, against the follower's exact soft best response at "
        "tau = lam) at our final incentive, mean ± s.e. over seeds "
        f"{args.seeds[0]}-{args.seeds[-1]} ({len(args.seeds)} seeds; the sample-based "
        f"leaders {sampled_seeds[0]}-{sampled_seeds[-1]}, {len(sampled_seeds)} seeds; tuned "
        "on seed 0). HPGD, AMD and zero-order are their published means; the samples are "
        "the environment transitions the sample-based leader and its follower drew per "
        "match. Budgets: " + budgets + ".", "",
        *lines, "",
        f"Our best exact leader is at or above HPGD's mean on {beaten} of {len(HPGD_TABLE)} "
        f"rows (margins {', '.join(margins)}). The value over HPGD's 200-step episodes "
        "differs from the infinite-horizon one by at most "
        f"{np.nanmax([abs(o.horizon_gap) for o in outcomes]):.3f} at the final incentives. "
        "Figure: `docs/four_rooms.png`.", "",
        f"Cost: {len(outcomes)} matches, {cpu_matches / 60:.1f} CPU min on the matches' own "
        f"clocks; this run played {len(tasks)} of them in {cost.wall / 60:.1f} min wall with "
        f"{args.workers} worker processes and {cost.cpu / 60:.1f} CPU min over all its processes "
        "(start-up included); 1-minute load average during the run "
        f"{min(loads):.1f}-{max(loads):.1f} (mean {np.mean(loads):.1f}) on "
        f"{os.cpu_count()} cores. On {args.workers} free cores the whole table's wall time "
        f"is about its CPU / {args.workers} = {cpu_matches / 60 / args.workers:.1f} min "
        "(plus the workers' start-up).", "",
        *cost_lines(outcomes, args.leaders), "",
        *shared.provenance(machine, argv, Path(__file__)),
    ])
    if not args.no_write:
        draw(outcomes, args.leaders, args.figure)
        args.readme.write_text(replace_marked(args.readme.read_text(),
                                              readme_summary(outcomes, args.leaders)))
        print(f"wrote the Four-Rooms summary of {args.readme}", file=sys.stderr)
    shared.publish(section, args, HEADING)
    return 0


if __name__ == "__main__":
    sys.exit(main())
