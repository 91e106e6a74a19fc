"""What a local worker process sets up first: one BLAS thread (:mod:`stackelberg.app.threads`),
and death with its parent.

Death with the parent: a worker of a ``ProcessPoolExecutor`` waits for work on a pipe whose
writing end it holds itself, so it never sees its parent die, and a ``kill -9`` of the
tournament would leave the pool (and multiprocessing's fork server and resource tracker,
which wait for the workers) running forever. On Linux the kernel sends the worker SIGKILL when
its parent dies (``prctl(PR_SET_PDEATHSIG)``); the worker's parent is the fork server, which
itself exits when the tournament process dies (its pipe from the tournament closes). A
watchdog thread covers other systems and the moment before ``prctl`` took effect.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

from stackelberg.app.threads import pin_threads

#: ``<sys/prctl.h>``: deliver a signal to this process when its parent thread dies.
PR_SET_PDEATHSIG = 1
WATCHDOG_SECONDS = 1.0


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's (the pid was reused)
        return True
    return False


def die_with_parent(owner: int) -> None:
    """Make this process exit when its parent, or the process ``owner`` that the work is
    for, has died."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the watchdog alone
            pass

    def watch() -> None:
        while True:
            if os.getppid() != parent or _gone(owner):
                os._exit(1)  # no cleanup: nobody is left to report to
            time.sleep(WATCHDOG_SECONDS)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def setup_worker(owner: int) -> None:
    """The initializer of a local worker process (``owner``: the tournament's pid)."""
    pin_threads()
    die_with_parent(owner)


__all__ = ["die_with_parent", "setup_worker"]
