"""What a ``stackelberg`` process costs before it computes anything: refused inputs and listings.

The test suite starts ``stackelberg`` processes that refuse a config or a spec (exit 2) or list
the games and algorithms (issue 10: the bad-input suite goes through the real command, and a
closed pipe is a process boundary). Such a process does no maths, so its CPU time is its
imports. This measures each command's CPU time (user + system of the process, ``os.wait4``;
the minimum over repeats, which the other tenants of a shared machine only ever raise) and
which heavy libraries it imported.

Run from the repository root (``--python`` and ``PYTHONPATH`` pick the code measured, so two
trees can be compared side by side):

    .venv/bin/python benchmarks/bench_cli_startup.py --repeats 5
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Libraries a refusal or a listing does not need (scipy is imported where the maths runs).
HEAVY = ("scipy", "matplotlib", "torch", "ray", "tqdm", "networkx", "pandas")

BAD_CONFIG = '[game]\nid = "stackelberg/matrix-v0"\n[run]\niterations = "many"\n'
BAD_SPEC = "seeds = [0]\nunknown_key = 1\n"
#: Runs the command in-process and reports which of HEAVY it imported (on stderr's last line).
PROBE = ("import sys\nfrom stackelberg.app.cli import main\ncode = main(sys.argv[1:])\n"
         f"print('imported:', ' '.join(m for m in {HEAVY!r} if m in sys.modules) or '-', "
         "file=sys.stderr)\n")

COMMANDS = {
    "run, refused config (exit 2)": ("run", "bad.toml", "--out", "out"),
    "tournament, refused spec (exit 2)": ("tournament", "bad_spec.toml", "--out", "out"),
    "games --json": ("games", "--json"),
    "algorithms --json": ("algorithms", "--json"),
}


def cpu_of(argv: list[str], cwd: Path) -> tuple[float, str]:
    """CPU seconds (user + system) of one process running ``argv``, and its stderr's last
    line."""
    err_path = cwd / "stderr.txt"
    with open(os.devnull, "wb") as devnull, open(err_path, "wb") as err:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.chdir(cwd)
            os.dup2(devnull.fileno(), 1)
            os.dup2(err.fileno(), 2)
            os.execv(argv[0], argv)
        _, _, usage = os.wait4(pid, 0)
    lines = err_path.read_text().strip().splitlines()
    return usage.ru_utime + usage.ru_stime, lines[-1] if lines else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "bad.toml").write_text(BAD_CONFIG)
        (work / "bad_spec.toml").write_text(BAD_SPEC)
        print(f"| command | CPU s (min of {args.repeats}) | heavy libraries imported |")
        print("|---|---|---|")
        baseline = min(cpu_of([args.python, "-c", "pass"], work)[0]
                       for _ in range(args.repeats))
        print(f"| `python -c pass` | {baseline:.3f} | - |")
        for label, command in COMMANDS.items():
            runs = [cpu_of([args.python, "-c", PROBE, *command], work)
                    for _ in range(args.repeats)]
            cpu = min(seconds for seconds, _ in runs)
            print(f"| {label} | {cpu:.3f} | {runs[-1][1].removeprefix('imported: ')} |")


if __name__ == "__main__":
    main()
