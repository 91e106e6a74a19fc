"""CPU time of one GridWorld match of each sample-based leader, and proof that its numbers did
not change (issue 9, "Learners' overhead").

What is measured
----------------
For every leader of the tournament spec (default ``configs/tournament_gridworld.toml``, the
spec ``make gridworld`` plays), the match of one seed (``--seed``, default 0) with the follower
and budget the spec gives it, played in this process with ``run_match``. The clock is the CPU
time of the process (``time.process_time``; BLAS pinned to one thread by ``_common``), so a
busy machine slows the wall clock but not the figure.

Same numbers, before and after. ``--save FILE`` writes each match's fingerprint: the summary
and every metrics row without their wall-clock fields, and the final ``x``, as JSON (floats
round-trip exactly). ``--baseline FILE`` compares the matches played now with such a file,
field by field with ``==`` (bit for bit), and puts the baseline's CPU times next to today's.
The workflow:

    # on a checkout of the old code (this script needs nothing of the new one)
    PYTHONPATH=/path/to/old/checkout python benchmarks/bench_learner_overhead.py \\
        --save before.json --no-write
    # on the new code
    python benchmarks/bench_learner_overhead.py --baseline before.json

``--profile N`` prints the N most expensive functions of each match (cProfile, cumulative
time), which is how the overhead was found. The table is printed and written to
``BENCHMARKS.md`` (section ``## Learners' overhead``) unless ``--no-write``.
"""

from __future__ import annotations

# First: it pins the BLAS threads before numpy loads.
import _common as shared  # isort: skip

import argparse
import cProfile
import json
import math
import pstats
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stackelberg.app.config import build_experiment
from stackelberg.app.tournament import load_spec
from stackelberg.coordinator import run_match

SECTION_HEADING = "## Learners' overhead"
CLOCK_FIELDS = ("wall_seconds",)


@dataclass(frozen=True)
class Played:
    """One match: its label, CPU seconds and fingerprint (plain data, JSON-ready)."""

    leader: str
    follower: str
    iterations: int
    cpu_seconds: float
    fingerprint: dict


def fingerprint(result) -> dict:
    """Everything a match computed, without the wall-clock fields."""
    def clean(row):
        return {k: v for k, v in row.items() if k not in CLOCK_FIELDS}

    return {"summary": clean(result.summary),
            "metrics": [clean(row) for row in result.metrics],
            "x": np.asarray(result.x).tolist()}


def play(match, profile: int) -> Played:
    experiment = build_experiment(match.config)
    profiler = cProfile.Profile() if profile else None
    start = time.process_time()
    if profiler is not None:
        profiler.enable()
    result = run_match(experiment.problem, experiment.leader, experiment.followers,
                       match.config.run, experiment.streams)
    if profiler is not None:
        profiler.disable()
    cpu = time.process_time() - start
    if profiler is not None:
        print(f"--- {match.leader} x {match.follower}, seed {match.seed}: {cpu:.2f} s CPU",
              file=sys.stderr)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(profile)
    return Played(match.leader, match.follower, int(result.summary["iterations"]), cpu,
                  fingerprint(result))


def _leaves(data: object, path: str = "") -> list[tuple[str, object]]:
    """``(path, value)`` of every number in a fingerprint (``.metrics[3].hyper_objective``)."""
    if isinstance(data, dict):
        return [leaf for key, value in data.items() for leaf in _leaves(value, f"{path}.{key}")]
    if isinstance(data, list):
        return [leaf for i, item in enumerate(data) for leaf in _leaves(item, f"{path}[{i}]")]
    return [(path, data)]


def differences(old: dict, new: dict) -> dict[str, float] | str:
    """Per field (list indices dropped), the largest relative difference between two
    fingerprints where they differ; ``{}`` when they are bit for bit the same, a message when
    their structure differs (other rows or fields)."""
    a, b = _leaves(old), _leaves(new)
    if [p for p, _ in a] != [p for p, _ in b]:
        return "other rows or fields"
    out: dict[str, float] = {}
    for (path, x), (_, y) in zip(a, b, strict=True):
        same = x == y or (isinstance(x, float) and isinstance(y, float)
                          and math.isnan(x) and math.isnan(y))
        if not same:
            field = re.sub(r"\[\d+\]", "[]", path).lstrip(".")
            try:
                rel = abs(x - y) / max(abs(x), abs(y), 1e-300)
            except TypeError:
                rel = math.inf
            out[field] = max(out.get(field, 0.0), rel)
    return out


def markdown(played: Sequence[Played], baseline: dict | None) -> list[str]:
    lines = ["| leader | follower | iterations | CPU now | CPU before | speed-up | numbers |",
             "|---|---|---:|---:|---:|---:|---|"]
    for p in played:
        old = (baseline or {}).get(p.leader)
        if old is None:
            before, speed, same = "–", "–", "no baseline"
        else:
            before = f"{old['cpu_seconds']:.2f} s"
            speed = f"{old['cpu_seconds'] / p.cpu_seconds:.2f}x"
            diff = differences(old["fingerprint"], p.fingerprint)
            if isinstance(diff, str):
                same = f"**differ**: {diff}"
            elif not diff:
                same = "identical"
            else:
                same = "identical but " + ", ".join(f"`{k}` (≤ {v:.0e} rel.)"
                                                    for k, v in sorted(diff.items()))
        lines.append(f"| {p.leader} | {p.follower} | {p.iterations} | {p.cpu_seconds:.2f} s | "
                     f"{before} | {speed} | {same} |")
    if baseline:
        now = sum(p.cpu_seconds for p in played)
        old = sum(baseline[p.leader]["cpu_seconds"] for p in played if p.leader in baseline)
        lines.append(f"| **all** | | | {now:.2f} s | {old:.2f} s | {old / now:.2f}x | |")
    return lines


#: Fields of the exact metrics that depend on their own best-response solve (not on anything
#: the leader or the follower computes): they moved at the rounding level when the metrics
#: began to solve from the follower's policy on a detached problem (commit 146edc5).
METRICS_OWN_SOLVE = ("hyper_objective", "lower_level_gap", "follower_gap")


def note(played: Sequence[Played], baseline: dict | None) -> list[str]:
    """One sentence on which differences a baseline shows, if any."""
    if not baseline:
        return []
    fields = set()
    for p in played:
        if p.leader in baseline:
            diff = differences(baseline[p.leader]["fingerprint"], p.fingerprint)
            fields |= {"?"} if isinstance(diff, str) else set(diff)
    if not fields:
        return ["Every match is bit for bit the same as before.", ""]
    if all(f.rsplit(".", 1)[-1] in METRICS_OWN_SOLVE for f in fields):
        return ["Where the numbers differ, they differ only in the exact metrics computed from "
                "the metrics' own best-response solve (`hyper_objective`, `lower_level_gap`, "
                "`follower_gap`), at the rounding level: these metrics now solve from the "
                "follower learner's policy on a detached copy of the problem, so that recording "
                "them cannot change the match (issue 9). Everything the leader and the follower "
                "compute (`x`, their policies, `upper_objective`, `samples`) and `leader_value`, "
                "which the GridWorld table is made of, is bit for bit the same.", ""]
    return []


def report(played: Sequence[Played], baseline: dict | None, args: argparse.Namespace,
           machine: list[str]) -> str:
    described = (f"; *CPU before* is from `{args.baseline_label}` "
                 f"(code {baseline.get('_code', 'unknown')}), and *numbers* compares every "
                 "summary field, every metrics row and the final `x` with it bit for bit "
                 "(wall-clock fields excepted)" if baseline else "")
    return "\n".join([
        SECTION_HEADING, "",
        f"One match of each leader of `{args.spec.as_posix()}` (seed {args.seed}, the "
        "spec's follower and budget for it), played in one process with `run_match`; clock: "
        f"CPU time of the process (`time.process_time`), one run each{described}.", "",
        *markdown(played, baseline), "",
        *note(played, baseline),
        *shared.provenance(machine, args.argv, Path(__file__)),
    ])


def code_of_package() -> str:
    """The commit of the checkout the ``stackelberg`` package was imported from (which
    ``PYTHONPATH`` may point away from this script's)."""
    import subprocess

    import stackelberg

    root = Path(stackelberg.__file__).resolve().parent.parent
    try:
        run = lambda *c: subprocess.run(["git", *c], cwd=root, capture_output=True,  # noqa: E731
                                        text=True, check=True, timeout=10).stdout.strip()
        dirty = "+dirty" if run("status", "--porcelain", "--untracked-files=no") else ""
        return f"{run('rev-parse', '--short', 'HEAD')}{dirty} ({root})"
    except (OSError, subprocess.SubprocessError):
        return f"unknown ({root})"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="CPU time and fingerprints of one GridWorld match per sample-based leader.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--spec", type=Path,
                        default=Path("configs") / "tournament_gridworld.toml")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--leaders", nargs="*", default=None,
                        help="leader labels to play (default: all of the spec)")
    parser.add_argument("--save", type=Path, help="write the fingerprints and times here")
    parser.add_argument("--baseline", type=Path, help="compare with a file from --save")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print the N most expensive functions of each match (cProfile)")
    shared.add_output_arguments(parser)
    args = parser.parse_args(argv)
    args.argv = list(argv)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    machine = shared.machine_info()
    spec = load_spec(shared.REPO_ROOT / args.spec)
    chosen = [m for m in spec.matches if m.seed == args.seed
              and (args.leaders is None or m.leader in args.leaders)]
    if not chosen:
        print(f"no match of seed {args.seed} for those leaders in {args.spec}", file=sys.stderr)
        return 2
    baseline = json.loads(args.baseline.read_text()) if args.baseline else None
    args.baseline_label = args.baseline.name if args.baseline else ""
    played = []
    for match in chosen:
        played.append(play(match, args.profile))
        print(f"{match.leader}: {played[-1].cpu_seconds:.2f} s CPU", file=sys.stderr)
    if args.save:
        data = {p.leader: {"follower": p.follower, "cpu_seconds": p.cpu_seconds,
                           "fingerprint": p.fingerprint} for p in played}
        data["_code"] = code_of_package()
        args.save.write_text(json.dumps(data))
    shared.publish(report(played, baseline, args, machine), args, SECTION_HEADING)
    return 0


if __name__ == "__main__":
    sys.exit(main())
