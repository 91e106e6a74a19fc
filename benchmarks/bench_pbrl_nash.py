"""pbrl-nash on seeded commons economies: net welfare at the followers' equilibrium, against the
equilibrium without incentives.

Not a speed measurement: the claim of issue 12 (done-means 3). For each instance
``games.commons.commons_instance(seed)`` (seeds 100-104 by default; the leader's settings were
tuned on the default commons and seeds 0-4), one match of ``pbrl-nash`` (its defaults, started at
the neutral point of the budget) against damped best-response followers, ``tau = 0.1``.
Recorded every ``--every`` iterations: the planner's net welfare ``W - c payments`` at the
followers' exact equilibrium for the current incentive (damped best responses from uniform
policies), and the same without incentives (the baseline). Writes the figure (welfare against
iterations, one panel per instance) to ``docs/commons_welfare.png`` and the table to the
``## pbrl-nash on the commons`` section of ``BENCHMARKS.md``.

    .venv/bin/python benchmarks/bench_pbrl_nash.py               # about 2 CPU minutes
    .venv/bin/python benchmarks/bench_pbrl_nash.py --seeds 100 --iterations 50 --no-write
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# ruff: noqa: E402
import _common  # noqa: F401  (pins BLAS threads first)
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from agents.followers.game import DampedBestResponse
from agents.leaders.pbrl_nash import PBRLNashLeader
from games.commons import commons_instance
from stackelberg.coordinator import MatchConfig, MatchResult, run_match
from stackelberg.seeding import run_streams

HEADING = "## pbrl-nash on the commons"
TAU = 0.1


def run(seed: int, iterations: int, every: int) -> tuple[str, MatchResult, float]:
    economy = commons_instance(seed)
    leader = PBRLNashLeader()
    learners = [DampedBestResponse(i) for i in range(economy.n_followers)]
    start = time.process_time()
    match = MatchConfig(iterations=iterations, metrics_every=every, progress=False)
    result = run_match(economy.problem(TAU), leader, learners, match,
                       run_streams(seed, economy.n_followers))
    return economy.name, result, time.process_time() - start


def draw(runs: list[tuple[int, str, MatchResult]], path: Path) -> None:
    fig, axes = plt.subplots(1, len(runs), figsize=(3.2 * len(runs), 3.0), sharey=False,
                             squeeze=False)
    for ax, (seed, name, result) in zip(axes[0], runs, strict=True):
        its = [row["iteration"] for row in result.metrics]
        ax.plot(its, [row["equilibrium_net_welfare"] for row in result.metrics],
                label="net welfare (W - payments)")
        ax.plot(its, [row["equilibrium_welfare"] for row in result.metrics], ls=":",
                label="welfare W")
        ax.axhline(result.summary['baseline_net_welfare'], color="grey", ls="--",
                   label="no incentives")
        ax.set_title(f"seed {seed}: {name}", fontsize=9)
        ax.set_xlabel("pbrl-nash iteration")
    axes[0][0].set_ylabel("at the followers' equilibrium")
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102, 103, 104])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--figure", type=Path,
                        default=_common.REPO_ROOT / "docs" / "commons_welfare.png")
    _common.add_output_arguments(parser)
    args = parser.parse_args(argv)
    rows, runs = [], []
    for seed in args.seeds:
        name, result, cpu = run(seed, args.iterations, args.every)
        first, last = result.metrics[0], result.metrics[-1]
        runs.append((seed, name, result))
        rows.append(f"| {seed} | {name} | {result.summary['baseline_net_welfare']:.3f} | "
                    f"{first['equilibrium_net_welfare']:.3f} | "
                    f"{last['equilibrium_net_welfare']:.3f} | {last['equilibrium_welfare']:.3f} | "
                    f"{last['equilibrium_payments']:.3f} | {last['nash_gap']:.1e} | {cpu:.1f} |")
        print(rows[-1], flush=True)
    if not args.no_write:
        draw(runs, args.figure)
    raised = sum(r.metrics[-1]["equilibrium_net_welfare"] > r.summary['baseline_net_welfare']
                 for _, _, r in runs)
    section = "\n".join([
        HEADING, "",
        f"`benchmarks/bench_pbrl_nash.py`; `pbrl-nash` (defaults) against "
        f"damped best-response followers, tau = {TAU}, {args.iterations} iterations, on "
        f"`commons_instance(seed)`. Values at the followers' exact equilibrium for the "
        f"planner's incentive (net welfare = W - c payments, c = 1; payments are the "
        f"subsidies: taxes are rebated lump-sum). Raised above the no-incentive "
        f"equilibrium on {raised} of {len(runs)}.",
        "",
        "| seed | economy | no incentives | net welfare, iteration 1 | net welfare, last | "
        "welfare W, last | payments, last | followers' Nash gap, last | CPU s |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows, "",
        f"Figure: `{args.figure.relative_to(_common.REPO_ROOT)}`.", "",
        *_common.provenance(_common.machine_info(), sys.argv[1:] if argv is None else argv,
                              Path(__file__)),
    ])
    _common.publish(section, args, HEADING)


if __name__ == "__main__":
    main()
