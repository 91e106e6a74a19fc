"""One writer per results directory: an OS-level lock on a file in the directory.

Two tournaments writing into one store would each play the matches the other is playing (the
second then dies on a duplicate match id). The writer holds an exclusive ``flock`` on
``DIR/results.lock`` for as long as it writes; a second writer is refused at once. The kernel
drops the lock when the holder's file is closed, which includes the holder dying in any way
(``kill -9``, out of memory): a crashed writer cannot leave the directory locked, so no stale
lock ever needs deleting by hand. The file itself stays (deleting a lock file is what makes
lock files racy); it holds the pid of the last writer, for the message.

The lock is advisory: it excludes writers that take it (every ``stackelberg tournament``),
not readers (``stackelberg report`` reads a store while it is being written).
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from stackelberg.results import StoreError

LOCK_NAME = "results.lock"


class StoreBusy(StoreError):
    """Another process is writing into the results directory."""


def _busy(directory: Path, fd: int) -> StoreBusy:
    try:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        holder = ""
    who = f"process {holder}" if holder.isdigit() else "another process"
    return StoreBusy(
        f"{directory} is being written by {who} (another `stackelberg tournament` into the "
        f"same directory, which holds {directory / LOCK_NAME}); wait until it has finished, "
        "or use another output directory")


def refuse_if_locked(directory: str | Path) -> None:
    """Raise :class:`StoreBusy` if a writer holds ``directory``'s lock, without creating or
    changing anything (the check that comes before anything is started or written)."""
    directory = Path(directory)
    try:
        fd = os.open(directory / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:  # no lock file (or none we may read): no writer has taken it
        return
    try:
        # a shared lock conflicts with a writer's exclusive one; it is dropped at once
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _busy(directory, fd) from None
    finally:
        os.close(fd)


class WriterLock:
    """The exclusive lock of a results directory, held in a ``with`` block.

    Raises
    ------
    StoreBusy
        On entry, if another process holds it (never waits).
    StoreError
        On entry, if the lock file cannot be created (a directory we may not write into).
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self._fd: int | None = None

    def __enter__(self) -> WriterLock:
        path = self.directory / LOCK_NAME
        try:
            # O_CLOEXEC: worker processes must not hold the lock after we die
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise StoreError(f"cannot create the lock file {path}: "
                             f"{err.strerror or err}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            busy = _busy(self.directory, fd) if err.errno in (errno.EAGAIN, errno.EACCES) else \
                StoreError(f"cannot lock {path}: {err.strerror or err}")
            os.close(fd)
            raise busy from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None


__all__ = ["LOCK_NAME", "StoreBusy", "WriterLock", "refuse_if_locked"]
