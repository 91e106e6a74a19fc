"""Neural leaders on the Stackelberg duopoly through the simulator alone (issue 14, done-means 1).

What is measured
----------------
On ``stackelberg/duopoly-v0`` with its defaults (``a = 10, b = 1, c_L = c_F = 2``: Stackelberg
``(4, 2)``, Cournot ``8/3`` each) and on the asymmetric instance ``a = 100, b = 1, c_L = 10,
c_F = 20`` (Stackelberg ``(50, 15)``; Cournot ``(36.7, 26.7)``), ``rac-neural`` and
``partial-gradient-neural`` each play the ``actor-critic`` follower with their defaults, one
match per seed through :func:`stackelberg.coordinator.run_match` (Parallel duopoly: the
follower observes the leader's commitment; the learners see no closed form). Reported per
instance, leader and seed: the leader's planned (mean) quantity against Stackelberg, the
follower's against his best response to it (relative errors; target: both within 3% on at
least 4 of 5 seeds for ``rac-neural``), the sampled values, and the CPU seconds of the match
(``time.process_time`` of the worker process, one thread; target <= 300 s per seed). The
defaults were tuned on seeds 0 and 1 (a run over seeds 0-4 was cut short for time); the
benchmark reports seeds 100-104.

Usage
-----
    .venv/bin/python benchmarks/bench_duopoly.py --workers 3     # 2 x 2 x 5 matches
    .venv/bin/python benchmarks/bench_duopoly.py --seeds 0 1 2 3 4 --no-write

The markdown table is printed and written to ``BENCHMARKS.md`` (section
``## Neural leaders on the Stackelberg duopoly``, replaced if present).
"""

from __future__ import annotations

import _common as shared  # isort: skip

import argparse
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch

from agents.registry import FOLLOWERS, LEADERS
from games.duopoly import DuopolyMarket
from games.duopoly_problems import duopoly_problem
from stackelberg.coordinator import MatchConfig, run_match
from stackelberg.seeding import run_streams

SECTION_HEADING = "## Neural leaders on the Stackelberg duopoly"
INSTANCES = {"default": {}, "asymmetric": {"a": 100.0, "b": 1.0, "cost_leader": 10.0,
                                           "cost_follower": 20.0}}
TOLERANCE = 0.03


def one_match(instance: str, leader: str, seed: int, iterations: int) -> dict:
    torch.set_num_threads(1)
    problem = duopoly_problem(**INSTANCES[instance])
    spec, follower = LEADERS[leader], FOLLOWERS["actor-critic"]
    start = time.process_time()
    result = run_match(problem, spec.factory(spec.make_config()),
                       [follower.factory(follower.make_config())],
                       MatchConfig(iterations=iterations, metrics_every=iterations,
                                   progress=False), run_streams(seed))
    return {"instance": instance, "leader": leader, "seed": seed,
            "cpu": time.process_time() - start, **result.summary}


def table(rows: list[dict], iterations: int, baseline_iterations: int,
          argv: Sequence[str]) -> str:
    lines = [
        SECTION_HEADING, "",
        f"Each match: {iterations} iterations ({baseline_iterations} for "
        f"`partial-gradient-neural`), the `actor-critic` follower, defaults only; "
        f"the final row's planned quantities (policy means) and sampled values (2000 episodes, "
        f"standard error in brackets). Error: relative distance of the leader's quantity to "
        f"Stackelberg and of the follower's to his best response to it. CPU: seconds of one "
        f"match (`time.process_time`, one thread).", "",
        "| instance | leader | seed | q_L (Stackelberg) | q_F (best response) | errors L / F "
        "| V_L | V_F | CPU s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['instance']} | `{r['leader']}` | {r['seed']} "
            f"| {r['leader_quantity']:.3f} ({r['leader_quantity_closed_form']:.3g}) "
            f"| {r['follower_quantity']:.3f} ({r['follower_quantity_closed_form']:.3f}) "
            f"| {r['leader_quantity_error']:.1%} / {r['follower_quantity_error']:.1%} "
            f"| {r['leader_value']:.2f} ({r['leader_value_se']:.2f}) "
            f"| {r['follower_value']:.2f} ({r['follower_value_se']:.2f}) | {r['cpu']:.0f} |")
    lines.append("")
    for instance, market in INSTANCES.items():
        m = DuopolyMarket(**market)
        cournot = m.cournot()
        for leader in sorted({r["leader"] for r in rows}):
            mine = [r for r in rows if r["instance"] == instance and r["leader"] == leader]
            if not mine:
                continue
            hits = sum(r["leader_quantity_error"] <= TOLERANCE
                       and r["follower_quantity_error"] <= TOLERANCE for r in mine)
            lines.append(f"- {instance}, `{leader}`: {hits} of {len(mine)} seeds with both "
                         f"quantities within {TOLERANCE:.0%} (Cournot: "
                         f"({cournot.q_leader:.2f}, {cournot.q_follower:.2f})); max CPU "
                         f"{max(r['cpu'] for r in mine):.0f} s")
    lines.append("")
    lines += shared.provenance(shared.machine_info(), argv, Path(__file__))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102, 103, 104])
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--baseline-iterations", type=int, default=1000,
                        help="iterations of partial-gradient-neural (it settles sooner)")
    parser.add_argument("--leaders", nargs="+", default=["rac-neural", "partial-gradient-neural"])
    parser.add_argument("--instances", nargs="+", default=list(INSTANCES))
    parser.add_argument("--workers", type=int, default=2)
    shared.add_output_arguments(parser)
    args = parser.parse_args(argv)
    def budget(leader: str) -> int:
        return args.baseline_iterations if leader == "partial-gradient-neural" else \
            args.iterations

    jobs = [(i, leader, s, budget(leader)) for leader in args.leaders for i in args.instances
            for s in args.seeds]
    with ProcessPoolExecutor(args.workers) as pool:
        futures = [pool.submit(one_match, *job) for job in jobs]
        for future in as_completed(futures):
            r = future.result()
            print(f"{r['instance']} {r['leader']} seed {r['seed']}: q_L "
                  f"{r['leader_quantity']:.3f} q_F {r['follower_quantity']:.3f} errors "
                  f"{r['leader_quantity_error']:.3f} {r['follower_quantity_error']:.3f} cpu "
                  f"{r['cpu']:.0f}", file=sys.stderr, flush=True)
        rows = [f.result() for f in futures]
    shared.publish(table(rows, args.iterations, args.baseline_iterations, argv), args,
                   SECTION_HEADING)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
