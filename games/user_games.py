"""A user's own games: a builder in a file the user names, or one a package registers.

These are the only two ways a user's code runs (DESIGN, "Conventions"):

- ``"path/to/file.py:function"``: the file is run as a module (naming it runs it) and the
  function is looked up in it; nothing but a ``.py`` file is ever loaded this way;
- an entry point in the group ``stackelberg.games``: the packaging convention for plug-ins; an
  installed package declares ``game-id = module:function`` on purpose, and only then is that
  module imported.

Whatever the user's code does wrong (any exception class, a ``SyntaxError``, a failing import,
a ``sys.exit``) becomes a :class:`GameBuildError`: the user's to fix, reported as such.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

Builder = Callable[..., Any]

ENTRY_POINT_GROUP = "stackelberg.games"


class GameBuildError(ValueError):
    """A user's builder (a named file or a plug-in) could not be loaded, or raised.

    Whatever a user's code raises (any exception class, a ``SyntaxError``, a failing import, a
    ``sys.exit``) is the user's to fix, so it becomes this ``ValueError`` with the cause named.
    """


def plugins() -> dict[str, importlib.metadata.EntryPoint]:
    """Games that installed packages register on purpose, by entry-point name."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _reraise_interrupt(err: BaseException) -> None:
    """A user's Ctrl-C stops the program; anything else a user's code raises is reported."""
    if isinstance(err, KeyboardInterrupt):
        raise err


def _raised(err: BaseException) -> str:
    if isinstance(err, SystemExit):
        return f"called sys.exit({err.code!r})"
    if isinstance(err, SyntaxError):
        return f"has a SyntaxError: {err.msg} (line {err.lineno})"
    return f"raised {type(err).__name__}: {err}"


def split_file_id(game_id: str) -> tuple[str, str] | None:
    """``("path/to/file.py", "function")`` if ``game_id`` names a builder in a file."""
    location, sep, function = game_id.rpartition(":")
    if not sep or not location.endswith(".py"):
        return None
    return location, function


def _import_file(path: Path, game_id: str) -> ModuleType:
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    name = f"_games_user_{path.stem}_{digest}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise GameBuildError(f"game {game_id!r}: cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up here
    # running the user's file must not write into the user's directory (__pycache__)
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        module_spec.loader.exec_module(module)
    except BaseException as err:
        del sys.modules[name]
        _reraise_interrupt(err)
        raise GameBuildError(f"game {game_id!r}: running {path} {_raised(err)}") from err
    finally:
        sys.dont_write_bytecode = writes_bytecode
    return module


def load_builder(game_id: str, base_dir: str | Path | None = None) -> Builder:
    """Load the builder a user names as ``"path/to/file.py:function"``: this runs the file.

    Parameters
    ----------
    game_id : str
        A ``.py`` file (relative to ``base_dir``) and a function in it, separated by the last
        colon. Nothing else is imported: ``"os:system"`` is refused without importing ``os``.
    base_dir : str or Path, optional
        What a relative path is relative to (the config file's directory); default the current
        directory.

    Raises
    ------
    ValueError
        If ``game_id`` is not of that form, the file does not exist or has no such function.
    GameBuildError
        If running the file fails in any way.
    """
    parts = split_file_id(game_id)
    if parts is None or not parts[1].isidentifier():
        raise ValueError(f"game {game_id!r}: a builder in a file is named "
                         "'path/to/file.py:function'")
    location, function = parts
    path = Path(absolute_game_id(game_id, base_dir).rpartition(":")[0])
    if not path.is_file():
        where = Path(base_dir) if base_dir is not None else Path.cwd()
        raise ValueError(f"game {game_id!r}: no such file {location!r} (resolved to {path}, "
                         f"relative to {where})")
    builder = getattr(_import_file(path, game_id), function, None)
    if builder is None or not callable(builder):
        raise ValueError(f"game {game_id!r}: {location!r} has no function {function!r}")
    return builder


def absolute_game_id(game_id: str, base_dir: str | Path | None = None) -> str:
    """``game_id`` with the file of a ``"path/to/file.py:function"`` builder made absolute.

    A relative path is taken relative to ``base_dir`` (default the current directory). The
    result names the same builder from any current directory: a worker process or a Ray
    worker on a shared file system. Any other id is returned unchanged.
    """
    parts = split_file_id(game_id)
    if parts is None:  # a registered id or a plug-in's: not a file
        return game_id
    location, function = parts
    path = Path(location).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return f"{path.resolve()}:{function}"


def load_plugin(game_id: str, entry_point: importlib.metadata.EntryPoint) -> Builder:
    try:
        builder = entry_point.load()
    except BaseException as err:
        _reraise_interrupt(err)
        raise GameBuildError(f"game {game_id!r}: loading the plug-in {entry_point.value!r} "
                             f"(entry point group {ENTRY_POINT_GROUP!r}) {_raised(err)}"
                             ) from err
    if not callable(builder):
        raise GameBuildError(f"game {game_id!r}: the plug-in {entry_point.value!r} is not a "
                             "function")
    return builder


def call_user_builder(game_id: str, builder: Builder, kwargs: Mapping[str, Any]) -> Any:
    """``builder(**kwargs)``; a ``TypeError`` or ``ValueError`` (a rejected parameter, an
    invalid model) keeps its own message, anything else is a :class:`GameBuildError`."""
    try:
        return builder(**kwargs)
    except (TypeError, ValueError):
        raise
    except BaseException as err:
        _reraise_interrupt(err)
        raise GameBuildError(f"game {game_id!r}: the builder {_raised(err)}") from err
