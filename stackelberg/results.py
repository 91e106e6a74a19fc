"""The results store of a tournament: one SQLite file, one row per match, its metrics beside it.

The top layer (``stackelberg.app``) writes it, one transaction per finished match; ``analysis``
reads it. The store knows no algorithm or game by name: a match is identified by its labels
(game, leader, follower entries of the spec) and its seed.

Schema::

    tournament(key, value)          the spec (canonical JSON) and its hash
    matches(match_id, game, leader, follower, seed, status, error,
            config, summary, wall_seconds, finished_at)
    metrics(match_id, iteration, name, value)        long format, one row per number

``status`` is ``"ok"`` or ``"failed"``; a failed match has its error text and no summary.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

FILENAME = "results.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tournament (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS matches (
    match_id     TEXT PRIMARY KEY,
    game         TEXT NOT NULL,
    leader       TEXT NOT NULL,
    follower     TEXT NOT NULL,
    seed         INTEGER NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    error        TEXT,
    config       TEXT NOT NULL,
    summary      TEXT,
    wall_seconds REAL NOT NULL,
    finished_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    match_id  TEXT NOT NULL references matches(match_id),
    iteration INTEGER NOT NULL,
    name      TEXT NOT NULL,
    value     REAL,
    PRIMARY KEY (match_id, iteration, name)
) WITHOUT ROWID;
"""


class StoreError(RuntimeError):
    """The results store cannot be used as asked (e.g. it holds a different spec)."""


@dataclass(frozen=True)
class MatchRecord:
    """One finished match as stored.

    Attributes
    ----------
    match_id : str
        Stable id of the match (derived from its spec entries and seed by the writer).
    game, leader, follower : str
        Labels of the spec entries the match was built from.
    seed : int
    status : str
        ``"ok"`` or ``"failed"``.
    error : str or None
        The error message of a failed match.
    config : dict
        The resolved experiment config (what ``config.json`` of a run directory holds).
    summary : dict
        The match summary (``leader_value``, ``hyper_objective``, ``samples``, ...); empty
        for a failed match.
    wall_seconds : float
    finished_at : str
        ISO-8601 UTC time the match was stored.
    """

    match_id: str
    game: str
    leader: str
    follower: str
    seed: int
    status: str = "ok"
    error: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    wall_seconds: float = 0.0
    finished_at: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def canonical_json(data: Any) -> str:
    """JSON with sorted keys and no whitespace: equal data, equal text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=True)


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _expected_tables() -> dict[str, list[tuple[str, str]]]:
    """Table -> [(column, declared type)] of a store, read from ``_SCHEMA`` itself."""
    with closing(sqlite3.connect(":memory:")) as db:
        db.executescript(_SCHEMA)
        return _tables(db)


def _tables(db: sqlite3.Connection) -> dict[str, list[tuple[str, str]]]:
    names = [row[0] for row in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {name: [(row[1], row[2]) for row in db.execute(f"PRAGMA table_info('{name}')")]
            for name in names}


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A connection that cannot change ``path``.

    A WAL database without its ``-wal`` file has no writer and nothing uncheckpointed: it is
    opened ``immutable`` so that SQLite leaves no ``-wal``/``-shm`` files behind. Otherwise
    (a writer may be at work) it is opened read-only, which reads what the writer committed.
    """
    with path.open("rb") as file:
        header = file.read(20)
    wal_mode = len(header) == 20 and header[18] == 2
    immutable = wal_mode and not path.with_name(path.name + "-wal").exists()
    uri = f"file:{quote(str(path.resolve()))}?mode=ro" + ("&immutable=1" if immutable else "")
    return sqlite3.connect(uri, uri=True, timeout=60.0)


def check_store_file(path: str | Path) -> bool:
    """Check, without changing it, that the existing file ``path`` can serve as a results store.

    Returns True if it holds a store's tables, False if it is empty (a zero-byte file or a
    SQLite database without any table: a store whose creation was cut short).

    Raises
    ------
    StoreError
        If ``path`` is not a SQLite database (a text file), is damaged (e.g. a truncated copy:
        SQLite's ``quick_check`` fails), or is a database with other tables.
    """
    path = Path(path)
    advice = "it was left as it is: move it away, or choose another directory"
    try:
        with path.open("rb") as file:
            header = file.read(len(_SQLITE_MAGIC))
    except OSError as err:
        raise StoreError(f"{path} cannot be read as a results store: "
                         f"{err.strerror or err}") from None
    if not header:
        return False
    if header != _SQLITE_MAGIC:
        raise StoreError(f"{path} cannot be read as a results store: it is not a SQLite "
                         f"database (the format `stackelberg tournament` writes); {advice}")
    try:
        with closing(_connect_readonly(path)) as db:
            problems = [row[0] for row in db.execute("PRAGMA quick_check")]
            tables = _tables(db) if problems == ["ok"] else {}
    except sqlite3.DatabaseError as err:
        problems = [str(err)]
    if problems != ["ok"]:
        raise StoreError(f"{path} cannot be read as a results store: it is damaged "
                         f"(truncated or corrupt?), SQLite reports "
                         f"{problems[0].strip().splitlines()[0]!r}; {advice}")
    if not tables:
        return False
    expected = _expected_tables()
    if tables != expected:
        found = ", ".join(sorted(tables))
        raise StoreError(f"{path} cannot be read as a results store: it is another SQLite "
                         f"database, with the tables [{found}] where a store has "
                         f"[{', '.join(sorted(expected))}] with their columns; {advice}")
    return True


class ResultStore:
    """A tournament's SQLite results store.

    Parameters
    ----------
    path : str or Path
        The SQLite file, or a directory (then ``directory / "results.sqlite"``). Created
        with its schema when missing (unless ``readonly``).
    readonly : bool
        Open an existing store for reading only (``report``): nothing is written, and a
        missing file is an error.

    Raises
    ------
    StoreError
        If the file exists but is not a results store (see :func:`check_store_file`); it is
        then left exactly as it was.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False):
        path = Path(path)
        if path.is_dir():
            path = path / FILENAME
        self.path = path
        self.readonly = readonly
        exists = path.exists()
        if readonly and not exists:
            raise StoreError(f"{path} does not exist")
        has_schema = check_store_file(path) if exists else False
        self._empty = readonly and not has_schema  # an empty file: nothing to read
        if readonly:
            self._db = _connect_readonly(path)
            return
        # isolation_level=None: transactions are explicit (BEGIN ... COMMIT in write_match)
        self._db = sqlite3.connect(path, isolation_level=None, timeout=60.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the spec -------------------------------------------------------------------------
    def spec(self) -> dict[str, Any] | None:
        """The spec this store was created for, or None for a new store."""
        if self._empty:
            return None
        row = self._db.execute("SELECT value FROM tournament WHERE key = 'spec'").fetchone()
        return None if row is None else json.loads(row[0])

    def bind_spec(self, spec: Mapping[str, Any]) -> None:
        """Record ``spec`` in a new store, or check it equals the one stored.

        Raises
        ------
        StoreError
            If the store already holds a different spec.
        """
        text = canonical_json(spec)
        stored = self._db.execute("SELECT value FROM tournament WHERE key = 'spec'").fetchone()
        if stored is None:
            self._db.execute("INSERT INTO tournament (key, value) VALUES ('spec', ?)", (text,))
        elif stored[0] != text:
            raise StoreError(
                f"{self.path} holds the results of a different tournament spec; use another "
                "output directory (or delete it) rather than mixing results"
            )

    # -- writing --------------------------------------------------------------------------
    def stored_ids(self, status: str | None = None) -> set[str]:
        """Ids of every stored match, finished or failed, or only of those with ``status``
        (``"ok"`` or ``"failed"``)."""
        if self._empty:
            return set()
        if status is None:
            return {row[0] for row in self._db.execute("SELECT match_id FROM matches")}
        return {row[0] for row in self._db.execute(
            "SELECT match_id FROM matches WHERE status = ?", (status,))}

    def write_match(self, record: MatchRecord, metrics: Iterable[Mapping[str, float]] = ()) -> None:
        """Store one match and its per-iteration metrics rows in a single transaction.

        Each metrics row must have an ``"iteration"`` entry; every other numeric entry is
        stored under its name. Writing a match id that is already stored raises
        ``sqlite3.IntegrityError`` and changes nothing.
        """
        finished = record.finished_at or datetime.now(UTC).isoformat(timespec="seconds")
        rows = []
        for row in metrics:
            iteration = int(row["iteration"])
            rows.extend((record.match_id, iteration, name, float(value))
                        for name, value in row.items()
                        if name != "iteration" and isinstance(value, (int, float)))
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "INSERT INTO matches (match_id, game, leader, follower, seed, status, error, "
                "config, summary, wall_seconds, finished_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (record.match_id, record.game, record.leader, record.follower, record.seed,
                 record.status, record.error, canonical_json(record.config),
                 canonical_json(record.summary) if record.ok else None,
                 float(record.wall_seconds), finished),
            )
            self._db.executemany(
                "INSERT INTO metrics (match_id, iteration, name, value) VALUES (?,?,?,?)", rows)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def forget_failed(self) -> int:
        """Delete every failed match (one transaction), so that a rerun plays it again;
        returns how many were deleted."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            failed = "SELECT match_id FROM matches WHERE status = 'failed'"
            self._db.execute(f"DELETE FROM metrics WHERE match_id IN ({failed})")
            deleted = self._db.execute("DELETE FROM matches WHERE status = 'failed'").rowcount
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return deleted

    # -- reading --------------------------------------------------------------------------
    def records(self) -> list[MatchRecord]:
        """Every stored match, ordered by (game, leader, follower, seed)."""
        if self._empty:
            return []
        cursor = self._db.execute(
            "SELECT match_id, game, leader, follower, seed, status, error, config, summary, "
            "wall_seconds, finished_at FROM matches "
            "ORDER BY game, leader, follower, seed, match_id")
        return [
            MatchRecord(match_id=m, game=g, leader=ld, follower=fo, seed=s, status=st, error=e,
                        config=json.loads(c), summary=json.loads(su) if su else {},
                        wall_seconds=w, finished_at=t)
            for m, g, ld, fo, s, st, e, c, su, w, t in cursor
        ]

    def metrics(self, match_id: str) -> dict[str, np.ndarray]:
        """The per-iteration metrics of one match: ``{"iteration": ..., name: values}``.

        Arrays are aligned on ``iteration``; a metric missing at an iteration is NaN.
        """
        if self._empty:
            return {"iteration": np.zeros(0)}
        cursor = self._db.execute(
            "SELECT iteration, name, value FROM metrics WHERE match_id = ? ORDER BY iteration",
            (match_id,))
        triples = cursor.fetchall()
        iterations = sorted({it for it, _, _ in triples})
        index = {it: k for k, it in enumerate(iterations)}
        columns: dict[str, np.ndarray] = {"iteration": np.asarray(iterations, dtype=float)}
        for it, name, value in triples:
            column = columns.get(name)
            if column is None:
                column = columns[name] = np.full(len(iterations), np.nan)
            column[index[it]] = np.nan if value is None else value
        return columns


__all__ = ["FILENAME", "MatchRecord", "ResultStore", "StoreError", "canonical_json",
           "check_store_file"]
