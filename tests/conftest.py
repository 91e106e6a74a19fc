"""Fixtures shared by the test modules: the command line, in-process and as a process.

Every test process runs BLAS on one thread (issue 10: 650 s with the default threads per
process, 163 s with one): the environment variables are set before numpy loads, for this
process and every command a test starts, and ``threadpoolctl`` covers a numpy that a pytest
plugin may have loaded already. ``tests/test_tournament_faults.py`` checks it.
"""

from __future__ import annotations

# ruff: noqa: E402, I001  (the pinning must come before anything imports numpy)
from stackelberg.app.threads import pin_environment, pin_threads

pin_environment()

import subprocess
import sys
from pathlib import Path

import pytest

from stackelberg.app.cli import main

pin_threads()


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
