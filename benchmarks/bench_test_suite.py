"""How long ``make test`` takes: the suite alone, then two suites started at the same moment.

Issue 10, done-means 4: ``make test`` on a fresh clone finishes within 4 minutes on 2 cores,
on a quiet machine and under the load of a second ``make test``. Wall time depends on what
else the machine runs, so this also reports the CPU time of each suite (user + system of
pytest and its xdist workers and every process they started; ``os.wait4``), which does not,
and the load average before and after.

Each suite runs in a fresh ``git clone`` of the committed ``HEAD`` (no ``__pycache__``, no
``.pytest_cache``), with the command of ``make test`` and this Python (the project's venv):
``python -m pytest -q -n auto --dist loadgroup``. Nothing is pinned here: the suite pins BLAS
threads itself (``tests/conftest.py``). With ``--make`` each clone runs ``make test`` itself, as
CI does: its own ``.venv`` is created first (pip, torch, the project), then the suite, and the
figures are those of the whole command.

Run from the repository root:

    .venv/bin/python benchmarks/bench_test_suite.py            # alone, then two at once
    .venv/bin/python benchmarks/bench_test_suite.py --alone    # only the suite alone
    .venv/bin/python benchmarks/bench_test_suite.py --make     # `make test`, venv included
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-m", "pytest", "-q", "-n", "auto", "--dist", "loadgroup"]


@dataclass(frozen=True)
class SuiteRun:
    """One suite: exit status, wall seconds, CPU seconds (user + system, with its children) and
    pytest's last line."""

    returncode: int
    wall: float
    cpu: float
    summary: str


def fresh_clone(parent: Path, name: str) -> Path:
    """A clone of the committed HEAD, as a newcomer gets it."""
    target = parent / name
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(target)],
                   check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                          text=True, check=True).stdout.strip()
    subprocess.run(["git", "checkout", "--quiet", head], cwd=target, check=True)
    return target


def start(clone: Path, log: Path, make: bool = False) -> tuple[subprocess.Popen, float]:
    if make:  # the clone's own venv, as CI has it: nothing of this process's environment leaks
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        command = ["make", "test"]
    else:
        # the venv is installed from another checkout: PYTHONPATH makes this clone's code the
        # one imported, as an editable install of the clone would
        env = {**os.environ, "PYTHONPATH": str(clone)}
        command = COMMAND
    handle = log.open("w")
    process = subprocess.Popen(command, cwd=clone, env=env, stdout=handle,
                               stderr=subprocess.STDOUT)
    handle.close()
    return process, time.perf_counter()


def finish(process: subprocess.Popen, started: float, log: Path) -> SuiteRun:
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    return SuiteRun(process.returncode, wall, usage.ru_utime + usage.ru_stime,
                    lines[-1] if lines else "")


def describe(label: str, run: SuiteRun) -> str:
    return (f"| {label} | {run.wall:.0f} s ({run.wall / 60:.1f} min) | {run.cpu:.0f} s "
            f"({run.cpu / 60:.1f} min) | {run.returncode} | {run.summary} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alone", action="store_true", help="only the suite alone")
    parser.add_argument("--pair", action="store_true", help="only the two suites at once")
    parser.add_argument("--make", action="store_true",
                        help="run `make test` in each clone (its venv created first)")
    args = parser.parse_args()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout.strip()
    rows, codes = [], []
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
        parent = Path(tmp)
        clones = [fresh_clone(parent, "first"), fresh_clone(parent, "second")]
        if not args.pair:
            load = os.getloadavg()
            process, started = start(clones[0], parent / "alone.log", args.make)
            run = finish(process, started, parent / "alone.log")
            rows.append(describe("alone", run) + f" {load[0]:.2f} -> {os.getloadavg()[0]:.2f} |")
            codes.append(run.returncode)
            print(rows[-1], flush=True)
            clones[0] = fresh_clone(parent, "first-again")  # fresh again for the pair
        if not args.alone:
            load = os.getloadavg()
            logs = [parent / "pair-1.log", parent / "pair-2.log"]
            running = [start(clone, log, args.make)
                       for clone, log in zip(clones, logs, strict=True)]
            runs = [finish(process, started, log)
                    for (process, started), log in zip(running, logs, strict=True)]
            after = os.getloadavg()[0]
            for k, run in enumerate(runs, 1):
                rows.append(describe(f"two at once, suite {k}", run)
                            + f" {load[0]:.2f} -> {after:.2f} |")
                codes.append(run.returncode)
                print(rows[-1], flush=True)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    what = "make test (venv + suite)" if args.make else "the suite"
    print(f"\n{what}, commit {head}, {os.cpu_count()} CPUs, finished {when}")
    print("| run | wall | CPU (user + sys) | exit | pytest | load (1 min) before -> after |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0 if not any(codes) else 1


if __name__ == "__main__":
    sys.exit(main())
