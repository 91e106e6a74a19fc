"""The dynamic duopoly from its config: ``stackelberg run configs/duopoly_dynamic.toml`` on
held-out seeds, and the README's convergence figure (issue 14, done-means 3).

What is measured
----------------
Each seed is one run of the config exactly as the command line runs it
(:func:`stackelberg.app.rundir.run_experiment` into a scratch run directory, only ``run.seed``
changed): ``rac-neural`` against ``actor-critic`` on ``stackelberg/duopoly-dynamic-v0``
(8 periods, ``gamma = 0.9``, demand ``a_t`` drifting around ``a``). The final row's sampled
metrics give the firms' planned quantities in a period at the mean demand ``a_t = a``, against
the closed forms there (docs/theory.md §9: the quantities do not move the state, so each
period's answer is the static one at ``a_t``): the leader's against Stackelberg (4 at the
defaults), the follower's against his best response to her planned quantity. CPU: seconds of
one run (``time.process_time`` of its worker, one thread), sampled metrics and figure included.
The settings were tuned on seeds 0 and 1; the table reports seeds 100-104. The run directory of
``--figure-seed`` gives ``docs/duopoly_dynamic.png``.

Usage
-----
    .venv/bin/python benchmarks/bench_duopoly_dynamic.py --workers 2
"""

from __future__ import annotations

import _common as shared  # isort: skip

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

SECTION_HEADING = "## The dynamic duopoly from its config"
CONFIG = shared.REPO_ROOT / "configs" / "duopoly_dynamic.toml"
FIGURE = shared.REPO_ROOT / "docs" / "duopoly_dynamic.png"
#: The brief's target: both quantities within 5% of their closed forms.
TOLERANCE = 0.05


def one_run(seed: int, scratch: str, overrides: Sequence[str]) -> dict:
    """Run the config with ``run.seed = seed`` into ``scratch/seed<seed>``; its summary and CPU."""
    import torch

    from stackelberg.app.config import load_config
    from stackelberg.app.rundir import run_experiment

    torch.set_num_threads(1)
    start = time.process_time()
    config = load_config(CONFIG, [f"run.seed={seed}", *overrides])
    out = Path(scratch) / f"seed{seed}"
    run_experiment(config, out, progress=False)
    summary = json.loads((out / "summary.json").read_text())
    return {"seed": seed, "cpu": time.process_time() - start, "dir": str(out), **summary}


def table(rows: list[dict], argv: Sequence[str]) -> str:
    lines = [
        SECTION_HEADING, "",
        "`stackelberg run configs/duopoly_dynamic.toml run.seed=S` (`rac-neural` vs "
        "`actor-critic`, 8 periods, gamma 0.9, drifting demand; tuned on seeds 0-1). The final "
        "row's planned quantities at the mean demand against their closed forms (Stackelberg "
        "for the leader, the best response to her planned quantity for the follower), sampled "
        "values (2000 episodes, standard error in brackets), CPU seconds of the whole run "
        "(`time.process_time`, one thread).", "",
        "| seed | q_L (Stackelberg) | q_F (best response) | errors L / F | V_L | V_F | CPU s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['seed']} | {r['leader_quantity']:.3f} ({r['leader_quantity_closed_form']:.3g})"
            f" | {r['follower_quantity']:.3f} ({r['follower_quantity_closed_form']:.3f}) "
            f"| {r['leader_quantity_error']:.1%} / {r['follower_quantity_error']:.1%} "
            f"| {r['leader_value']:.2f} ({r['leader_value_se']:.2f}) "
            f"| {r['follower_value']:.2f} ({r['follower_value_se']:.2f}) | {r['cpu']:.0f} |")
    hits = sum(r["leader_quantity_error"] <= TOLERANCE
               and r["follower_quantity_error"] <= TOLERANCE for r in rows)
    worst = max(max(r["leader_quantity_error"], r["follower_quantity_error"]) for r in rows)
    lines += ["", f"{hits} of {len(rows)} seeds with both quantities within {TOLERANCE:.0%}; "
              f"worst error {worst:.1%}; max CPU {max(r['cpu'] for r in rows):.0f} s.", ""]
    lines += shared.provenance(shared.machine_info(), argv, Path(__file__))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102, 103, 104])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--figure-seed", type=int, default=100,
                        help="the seed whose run's convergence.png becomes the README figure")
    parser.add_argument("--figure", type=Path, default=FIGURE)
    parser.add_argument("overrides", nargs="*", metavar="section.key=value",
                        help="config overrides (tuning; the published table uses none)")
    shared.add_output_arguments(parser)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_duopoly_dynamic_") as scratch, \
            ProcessPoolExecutor(args.workers) as pool:
        futures = [pool.submit(one_run, seed, scratch, args.overrides) for seed in args.seeds]
        rows = []
        for future in futures:
            r = future.result()
            rows.append(r)
            print(f"seed {r['seed']}: q_L {r['leader_quantity']:.3f} q_F "
                  f"{r['follower_quantity']:.3f} errors {r['leader_quantity_error']:.3f} "
                  f"{r['follower_quantity_error']:.3f} cpu {r['cpu']:.0f}", file=sys.stderr,
                  flush=True)
            if r["seed"] == args.figure_seed and not args.no_write:
                shutil.copyfile(Path(r["dir"]) / "convergence.png", args.figure)
                print(f"wrote {args.figure}", file=sys.stderr)
    shared.publish(table(rows, argv), args, SECTION_HEADING)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
