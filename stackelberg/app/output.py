"""Output directories that never cost the user a file (``run --out``, ``report --out``).

- The location is checked, and a hidden temporary sibling created next to it, *before* anything
  runs, so an unwritable location is reported at once, not after a long match.
- Everything is written into the sibling, which is renamed into place only when complete: a
  failed or interrupted command never leaves a directory that looks complete.
- An existing directory is replaced only if it is empty, or if it is one of ours (it holds our
  marker file) and the user allowed it; anything else is refused, and so is any location that
  holds the current directory or is the home directory or the root.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class OutputError(ValueError):
    """The output location cannot be used (a user error: it names the location and why)."""


@dataclass(frozen=True)
class OutputKind:
    """What a command writes, and how its directories are recognised.

    Attributes
    ----------
    what : str
        In messages: ``"run"``, ``"report"``.
    option : str
        The command-line option naming the location: ``"--out"``.
    marker : str
        File written first into every such directory.
    legacy : callable
        Recognises a directory written before markers existed (by its file names).
    overwrite_flag : str or None
        The flag that allows replacing an earlier one (``"--overwrite"``); ``None``: replaced
        without asking (derived data that the command rewrites anyway).
    """

    what: str
    option: str
    marker: str
    legacy: Callable[[set[str], Path], bool]
    overwrite_flag: str | None = None

    def owns(self, path: Path) -> bool:
        """Whether ``path`` is a directory this kind of command wrote."""
        if not path.is_dir() or path.is_symlink():
            return False
        names = {p.name for p in path.iterdir()}
        return self.marker in names or self.legacy(names, path)


def _remove_empty(directories: tuple[Path, ...]) -> None:
    """Remove directories created for the output, deepest first, while they are empty."""
    for directory in directories:
        try:
            directory.rmdir()
        except OSError:
            break


@dataclass(frozen=True)
class Output:
    """An output location being written: its final path and its staging directory.

    Attributes
    ----------
    kind : OutputKind
    out : Path
        The final directory.
    staging : Path
        The hidden sibling everything is written into (it already holds the marker).
    overwrite : bool
        Whether an earlier directory of this kind may be replaced.
    created : tuple of Path
        Parent directories created for ``out``, deepest first (removed again on failure).
    """

    kind: OutputKind
    out: Path
    staging: Path
    overwrite: bool
    created: tuple[Path, ...] = ()

    def abort(self) -> None:
        """Remove what :func:`prepare` created; nothing else is touched."""
        shutil.rmtree(self.staging, ignore_errors=True)
        _remove_empty(self.created)

    def write(self, work: Callable[[Path], T]) -> tuple[T, Path]:
        """Run ``work(staging)``, then move the finished directory into place (:meth:`commit`);
        if ``work`` fails in any way, remove what was staged (:meth:`abort`) and re-raise."""
        try:
            result = work(self.staging)
        except BaseException:
            self.abort()
            raise
        return result, self.commit()

    def commit(self) -> Path:
        """Move the finished directory into place, checking ``out`` again (time has passed).

        Only an empty directory or one of ours (with ``overwrite``) is replaced; otherwise the
        staging directory is kept and the message says where it is.
        """
        out, option = self.out, self.kind.option
        if out.is_symlink() or out.exists():
            if out.is_dir() and not out.is_symlink() and not any(out.iterdir()):
                out.rmdir()
            elif self.overwrite and self.kind.owns(out):
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old",
                                            dir=out.parent))
                os.replace(out, old / out.name)
                try:
                    os.rename(self.staging, out)
                except BaseException:
                    os.replace(old / out.name, out)
                    raise
                shutil.rmtree(old)
                return out
            else:
                raise OutputError(f"{option} {out}: something was put there meanwhile; nothing "
                                  f"was replaced; the finished {self.kind.what} is in "
                                  f"{self.staging}")
        os.rename(self.staging, out)
        return out


def refuse_protected(out: Path, option: str) -> None:
    """Refuse the root, the home directory, and the current directory or any parent of it."""
    resolved = out.resolve()
    cwd, home = Path.cwd().resolve(), Path.home().resolve()
    if resolved == Path(resolved.anchor):
        raise OutputError(f"{option} {out}: that is the root of the file system; name a new "
                          "directory, e.g. runs/NAME")
    if resolved == home:
        raise OutputError(f"{option} {out}: that is the home directory; name a new directory, "
                          "e.g. runs/NAME")
    if cwd == resolved or resolved in cwd.parents:
        raise OutputError(f"{option} {out}: that is the current directory or one of its "
                          "parents (it holds your files); name a new directory, e.g. runs/NAME")


def prepare(kind: OutputKind, out: str | Path, overwrite: bool = False) -> Output:
    """Check that ``kind`` may be written to ``out`` and create its staging directory.

    Raises
    ------
    OutputError
        ``out`` is protected (:func:`refuse_protected`), a file or a symbolic link, a non-empty
        directory that is not one of ours, one of ours without ``overwrite`` (when the kind
        asks), or in a location that cannot be written.
    """
    out, option = Path(out).expanduser(), kind.option
    refuse_protected(out, option)
    if out.is_symlink():
        raise OutputError(f"{option} {out} is a symbolic link; give the directory it points to")
    if out.exists():
        if not out.is_dir():
            raise OutputError(f"{option} {out} exists and is not a directory; nothing was "
                              "written; name a new directory")
        if any(out.iterdir()):
            if not kind.owns(out):
                raise OutputError(
                    f"{option} {out} is a non-empty directory that is not a {kind.what} "
                    f"directory (it has no {kind.marker} file); nothing was written or "
                    "deleted; name a new or empty directory")
            if kind.overwrite_flag is None:
                overwrite = True
            elif not overwrite:
                raise OutputError(f"{option} {out} holds an earlier {kind.what}; pass "
                                  f"{kind.overwrite_flag} to replace it, or name another "
                                  "directory")
    created = tuple(p for p in (out.parent, *out.parent.parents) if not p.exists())
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial",
                                        dir=out.parent))
    except OSError as err:
        _remove_empty(created)
        raise OutputError(f"{option} {out}: cannot write there ({err.strerror or err}); "
                          "nothing was run") from None
    (staging / kind.marker).write_text(
        f"written by `stackelberg {kind.what}`; this directory may be replaced by it\n")
    return Output(kind, out, staging, overwrite, created)
