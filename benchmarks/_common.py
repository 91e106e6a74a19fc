"""What every benchmark script shares: BLAS pinning, clocks, interleaved repeats, the machine
description, and rewriting one section of ``BENCHMARKS.md``.

Import this module first in a benchmark script: it pins OpenBLAS/OpenMP/MKL to one thread
before numpy loads its BLAS (an explicit environment setting wins). See
``bench_pbrl_iteration.py`` for why.
"""

from __future__ import annotations

import os

# ruff: noqa: E402
from stackelberg.app.threads import BLAS_THREAD_VARIABLES, pin_environment

pin_environment()

import argparse
import datetime
import gc
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy

REPO_ROOT = Path(__file__).resolve().parent.parent


#: ``cpu`` counts the CPU seconds of this process (immune to being descheduled while another
#: process holds the core; with single-threaded BLAS it is the work done); ``wall`` is
#: ``time.perf_counter``.
CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}


@dataclass(frozen=True)
class Timing:
    """Median per-call seconds over repeats, with the spread of the repeats."""

    seconds: float
    spread: float  # (max - min) / median over the repeats
    calls: int  # calls per repeat
    repeats: int

    @classmethod
    def of(cls, per_call: Sequence[float], calls: int) -> Timing:
        median = statistics.median(per_call)
        return cls(median, (max(per_call) - min(per_call)) / median, calls, len(per_call))


def calls_for(run: Callable[[int], float], seconds: float) -> int:
    """How many calls make one measurement of about ``seconds`` (``run(n)`` times n calls)."""
    n = 1
    while True:
        elapsed = run(n)
        if elapsed >= 0.2 * seconds or n >= 10**7:
            return max(1, round(n * seconds / max(elapsed, 1e-9)))
        n *= 10 if elapsed < 0.02 * seconds else 2


def interleaved_repeats(
    runs: Sequence[Callable[[int], float]], calls: Sequence[int], repeats: int
) -> list[list[float]]:
    """Per-call seconds of each run, ``repeats`` times, the runs taking turns in every round.

    Taking turns exposes the reference solve and the iterations to the same (possibly
    changing) load of the machine. The garbage collector is off while timing, as in timeit.
    """
    samples: list[list[float]] = [[] for _ in runs]
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            for run, n, out in zip(runs, calls, samples, strict=True):
                out.append(run(n) / n)
    finally:
        if enabled:
            gc.enable()
    return samples


def _git(*command: str) -> str:
    done = subprocess.run(["git", *command], cwd=REPO_ROOT, capture_output=True, text=True,
                          check=True, timeout=10)
    return done.stdout.strip()


def code_version() -> str:
    """The commit measured, ``+dirty`` if tracked files changed; ``unknown`` without git."""
    try:
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
        return _git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_info() -> list[str]:
    blas = "unknown"
    try:
        dependency = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{dependency['name']} {dependency.get('version', '')}".strip()
    except Exception:  # older numpy: no mode="dicts"; not worth failing the benchmark for
        pass
    threads = ", ".join(f"{v}={os.environ.get(v)}" for v in BLAS_THREAD_VARIABLES)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return [
        f"- platform: {platform.platform()} ({platform.machine()}), "
        f"`os.cpu_count()` = {os.cpu_count()}",
        f"- python {platform.python_version()}, numpy {np.__version__} (BLAS: {blas}), "
        f"scipy {scipy.__version__}",
        f"- BLAS threads: {threads}",
        f"- code: commit {code_version()}",
        f"- load average (1, 5, 15 min) when the run started: {load}",
    ]


def rerun_command(argv: Sequence[str], script: Path) -> str:
    """The command line that reruns ``script`` (a benchmark of this folder) with ``argv``."""
    script = script.resolve().relative_to(REPO_ROOT)
    return " ".join([".venv/bin/python", str(script), *map(shlex.quote, argv)])


def provenance(machine: list[str], argv: Sequence[str], script: Path,
               rerun: str = "Rerun exactly this run with:") -> list[str]:
    """The closing lines of a benchmark section: when, on what, and how to rerun it."""
    date = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return [f"Measured {date} on:", "", *machine, "", rerun, "", "```",
            rerun_command(argv, script), "```", ""]


def publish(section: str, args: argparse.Namespace, heading: str) -> None:
    """Print ``section`` and, unless ``args.no_write``, put it in ``args.output``."""
    print(section)
    if not args.no_write:
        existing = args.output.read_text() if args.output.exists() else ""
        args.output.write_text(replace_section(existing, section, heading))
        print(f"wrote section {heading!r} of {args.output}", file=sys.stderr)


def replace_section(document: str, section: str, heading: str) -> str:
    """``document`` with the level-2 section titled ``heading`` replaced by ``section``.

    The section runs to the next level-1 or level-2 heading outside a code fence; if it is
    missing, ``section`` is appended. Other sections are kept as they are.
    """
    lines = document.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == heading), None)
    if start is None:
        kept = document.rstrip("\n")
        return (kept + "\n\n" if kept else "# Benchmarks\n\n") + section.rstrip("\n") + "\n"
    end, fenced = len(lines), False
    for i in range(start + 1, len(lines)):
        if lines[i].lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (lines[i].startswith("## ") or lines[i].startswith("# ")):
            end = i
            break
    before = "\n".join(lines[:start]).rstrip("\n")
    after = "\n".join(lines[end:]).strip("\n")
    parts = [p for p in (before, section.strip("\n"), after) if p]
    return "\n\n".join(parts) + "\n"


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``--output`` and ``--no-write``, which :func:`publish` reads."""
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "BENCHMARKS.md",
                        help="markdown file whose section is replaced")
    parser.add_argument("--no-write", action="store_true",
                        help="only print the table, leave the markdown file alone")
