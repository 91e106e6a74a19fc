"""Fixtures shared by the test modules: the command line, in-process and as a process.

Every test process runs BLAS on one thread (issue 10: 650 s with the default threads per
process, 163 s with one): the environment variables are set before numpy loads, for this
process and every command a test starts, and ``threadpoolctl`` covers a numpy that a pytest
plugin may have loaded already. ``tests/test_tournament_faults.py`` checks it.
"""

from __future__ import annotations

# ruff: noqa: E402, I001  (the pinning must come before anything imports numpy)
from stackelberg.app.threads import BLAS_THREAD_VARIABLES, pin_environment, pin_threads

pin_environment()

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from stackelberg.app.cli import main

pin_threads()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """``--dist loadgroup`` sends the tests of one ``xdist_group`` to one worker by the suffix
    ``@group`` that pytest-xdist's worker appends to their node ids. pytest-xdist 3.8 appends it
    to ``item._nodeid``, which pytest 9 no longer reads (a node's id is ``item._id``), so the
    groups were ignored and the expensive module fixtures they share (the report, the tournament
    played twice, the grid optima of test_convergence) were built on both workers. This sets the
    suffix where pytest reads it, when xdist's own renaming did not take."""
    if not config.getoption("loadgroup", default=False):
        return
    for item in items:
        names = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                        for mark in item.iter_markers("xdist_group")})
        if not names or item.nodeid.endswith("@" + "_".join(names)):
            continue
        grouped = f"{item.nodeid}@{'_'.join(names)}"
        if hasattr(item, "_id"):  # pytest >= 9
            from _pytest.nodeid import NodeId

            item._id = NodeId.parse(grouped)
        else:
            item._nodeid = grouped


@pytest.fixture
def cli(monkeypatch, capsys):
    """The ``stackelberg`` entry point in-process (fast): returns a CompletedProcess with the
    exit code, stdout and stderr."""

    def call(*args: str, cwd: Path) -> subprocess.CompletedProcess:
        monkeypatch.chdir(cwd)
        code = main(list(args))
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, captured.out, captured.err)

    return call


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "stackelberg.app.cli", *args]


@pytest.fixture
def cli_command():
    """``cli_command(*args)``: the ``stackelberg`` command line as a list, for ``subprocess``."""
    return _command


@pytest.fixture
def cli_process():
    """The command as a user runs it: a separate process."""

    def call(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(_command(*args), cwd=cwd, capture_output=True, text=True,
                              timeout=timeout)

    return call


#: Set in a tournament's environment to make the game of :data:`HELD_GAME` wait in its matches.
HOLD = "STACKELBERG_TEST_HOLD"

# A game for tests that need a tournament to be *running* (a second writer, kill -9): inside
# a match its builder records its process and BLAS threads and, if HOLD is set, waits until
# the test creates the file "release", so the test looks at a state, not a race against the
# clock. "Inside a match" is told by a writer's lock file in a directory next to it: the
# builder also runs when the spec is checked, before the lock is taken, and must not wait then.
HELD_GAME = f'''
import json
import os
import time
from pathlib import Path

from games.matrix import matrix_game

HERE = Path(__file__).parent


def held_game():
    """The textbook game, held in its matches while {HOLD} is set and "release" is missing."""
    if any(HERE.glob("*/results.lock")):
        from threadpoolctl import threadpool_info

        record = {{"pid": os.getpid(), "threads": threadpool_info()}}
        name = f"match-{{os.getpid()}}-{{time.monotonic_ns()}}.json"
        (HERE / f".{{name}}").write_text(json.dumps(record))
        os.replace(HERE / f".{{name}}", HERE / name)  # the test never reads half a file
        deadline = time.monotonic() + 120
        while os.environ.get("{HOLD}") and not (HERE / "release").exists():
            if time.monotonic() > deadline:
                raise RuntimeError("never released")
            time.sleep(0.05)
    return matrix_game([[2, 4], [1, 3]], [[1, 0], [0, 1]])
'''


@dataclass(frozen=True)
class HeldGame:
    """A directory with ``held.py`` (game id ``"held.py:held_game"``)."""

    directory: Path

    def environment(self, hold: bool) -> dict[str, str]:
        """This process's environment without the BLAS thread variables (what a user's shell
        has), holding the game's matches if ``hold``."""
        env = {k: v for k, v in os.environ.items() if k not in BLAS_THREAD_VARIABLES}
        if hold:
            env[HOLD] = "1"
        return env

    def records(self) -> list[dict]:
        """What the game recorded in each match so far: its pid and ``threadpool_info()``."""
        return [json.loads(p.read_text()) for p in sorted(self.directory.glob("match-*.json"))]

    def release(self) -> None:
        (self.directory / "release").touch()


@pytest.fixture
def held_game(tmp_path):
    """A :class:`HeldGame` in ``tmp_path``; released on teardown, so that no process is left
    waiting."""
    (tmp_path / "held.py").write_text(HELD_GAME)
    game = HeldGame(tmp_path)
    yield game
    game.release()
