"""Tournaments under faults (issue 10): a second writer, a store that is not one, an unreachable
Ray, a ``kill -9`` of the parent, and one BLAS thread per process.

The tests that need a tournament to be *running* use the ``held_game`` fixture (conftest): a
game that waits inside its matches until the test releases it. The tournaments they start
run in a user's environment, without the BLAS thread variables that the test suite sets, so
that they also show the workers pinning their threads themselves.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from stackelberg.app.threads import BLAS_THREAD_VARIABLES
from stackelberg.app.tournament import StoreBusy, load_spec, run_tournament
from stackelberg.app.tournament.executors import ExecutorError, RayExecutor
from stackelberg.app.tournament.lock import LOCK_NAME, WriterLock, refuse_if_locked
from stackelberg.results import FILENAME, MatchRecord, ResultStore

SPEC = """
seeds = [0, 1, 2]

[budget]
iterations = 5

[[games]]
label = "held"
id = "held.py:held_game"

[[leaders]]
algorithm = "pbrl-value"

[[followers]]
learner = "best-response"
tau = 0.05
"""
N_MATCHES = 3


def start(command: list[str], held, hold: bool) -> subprocess.Popen:
    """The command in its own process group, in a user's environment (no BLAS variables)."""
    return subprocess.Popen(command, cwd=held.directory, env=held.environment(hold),
                            start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def assert_one_blas_thread(records: list[dict]) -> None:
    for record in records:
        assert record["threads"], "no BLAS library was loaded in the match's process?"
        assert all(lib["num_threads"] == 1 for lib in record["threads"]), record


def wait_for(condition, what: str, process: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the tournament ended before {what}: {process.stderr.read()}")
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def holding(directory: Path) -> bool:
    try:
        refuse_if_locked(directory)
    except StoreBusy:
        return True
    return False


def count_rows(out_dir: Path) -> tuple[int, int]:
    uri = f"file:{out_dir / FILENAME}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
        return db.execute("SELECT COUNT(*), COUNT(DISTINCT match_id) FROM matches").fetchone()


def kill_group(process: subprocess.Popen) -> None:
    """Clean-up: the process group this test started, if anything of it is left."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


# -- one writer per results directory ----------------------------------------------------


@pytest.mark.slow
def test_a_second_tournament_into_the_same_directory_is_refused_at_once(held_game, cli_command):
    held = held_game.directory
    (held / "spec.toml").write_text(SPEC)
    command = cli_command("tournament", "spec.toml", "--out", "out", "--workers", "2", "--quiet")
    first = start(command, held_game, hold=True)
    try:
        wait_for(lambda: len(held_game.records()) >= 2, "the first tournament plays", first)
        workers = held_game.records()
        second = subprocess.run(command, cwd=held, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        assert f"is being written by process {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None  # refused without waiting for the first to finish
        assert count_rows(held / "out") == (0, 0)  # and wrote nothing

        held_game.release()
        out, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
        assert f"ran {N_MATCHES} (0 failed)" in out
        assert count_rows(held / "out") == (N_MATCHES, N_MATCHES)
        assert not holding(held / "out")  # the lock went with the first writer
    finally:
        kill_group(first)
    assert len({r["pid"] for r in workers}) == 2 and first.pid not in {r["pid"] for r in workers}
    assert_one_blas_thread(workers)


def test_the_lock_is_exclusive_and_a_killed_holder_leaves_none(tmp_path):
    with WriterLock(tmp_path):
        assert holding(tmp_path)
        with pytest.raises(StoreBusy, match=f"by process {os.getpid()}"), WriterLock(tmp_path):
            pass
    assert not holding(tmp_path)
    ready, tell = os.pipe()
    pid = os.fork()
    if pid == 0:  # a writer that takes the lock and is then killed, with no clean-up
        try:
            WriterLock(tmp_path).__enter__()
            os.write(tell, b"x")
            time.sleep(60)
        finally:
            os._exit(0)
    os.close(tell)
    try:
        assert os.read(ready, 1) == b"x"
        with pytest.raises(StoreBusy, match=f"by process {pid}"), WriterLock(tmp_path):
            pass
    finally:
        os.close(ready)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert not holding(tmp_path)
    with WriterLock(tmp_path):
        pass


# -- files that are not a results store ----------------------------------------------------


def _real_store(directory: Path, matches: int = 150) -> None:
    with ResultStore(directory) as store:
        store.bind_spec({"seeds": [0]})
        for k in range(matches):
            store.write_match(MatchRecord(match_id=f"m{k}", game="g", leader="l", follower="f",
                                          seed=k, config={"padding": "x" * 200}),
                              [{"iteration": i, "f": float(i)} for i in range(20)])


def _text_file(path: Path) -> None:
    path.write_text("leader,value\nA,1.0\n")


def _foreign_database(path: Path) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO customers (name) VALUES ('Ada')")
        db.commit()


def _same_names_other_columns(path: Path) -> None:
    with closing(sqlite3.connect(path)) as db:
        for table in ("tournament", "matches", "metrics"):
            db.execute(f"CREATE TABLE {table} (x INTEGER)")
        db.commit()


def _truncated_copy(path: Path) -> None:
    real = path.parent.parent / "real"
    real.mkdir()
    _real_store(real)
    data = (real / FILENAME).read_bytes()
    path.write_bytes(data[: len(data) // 2])


NOT_STORES = {"text-file": (_text_file, "not a SQLite database"),
              "foreign-database": (_foreign_database, "tables [customers]"),
              "same-table-names": (_same_names_other_columns, "with their columns"),
              "truncated-copy": (_truncated_copy, "damaged")}


def _snapshot(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}


@pytest.mark.parametrize("kind", list(NOT_STORES))
def test_tournament_and_report_refuse_a_file_that_is_not_a_store(kind, held_game, cli):
    tmp_path = held_game.directory
    make, reason = NOT_STORES[kind]
    out = tmp_path / "out"
    out.mkdir()
    make(out / FILENAME)
    (tmp_path / "spec.toml").write_text(SPEC)
    before = _snapshot(out)
    for args in (("tournament", "spec.toml", "--out", "out", "--quiet"),
                 ("tournament", "spec.toml", "--out", "out", "--workers", "2", "--quiet"),
                 ("report", "out")):
        result = cli(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert f"out/{FILENAME} cannot be read as a results store" in result.stderr
        assert reason in result.stderr and "Traceback" not in result.stderr
        assert _snapshot(out) == before  # not a byte changed, no file added (no lock either)


def test_an_empty_file_is_a_store_whose_creation_was_cut_short(tmp_path):
    for name, make in {"zero-bytes": Path.touch,
                       "no-tables": lambda p: closing(sqlite3.connect(p)).__enter__().execute(
                           "PRAGMA user_version = 1")}.items():
        path = tmp_path / name / FILENAME
        path.parent.mkdir()
        make(path)
        with ResultStore(path.parent, readonly=True) as store:
            assert store.spec() is None and store.stored_ids() == set() and store.records() == []
        with ResultStore(path.parent) as store:
            store.bind_spec({"seeds": [1]})
            assert store.spec() == {"seeds": [1]}


def test_reading_a_finished_store_leaves_no_file_behind(tmp_path):
    _real_store(tmp_path, matches=3)
    before = _snapshot(tmp_path)
    with ResultStore(tmp_path, readonly=True) as store:
        assert len(store.records()) == 3 and store.spec() == {"seeds": [0]}
    assert _snapshot(tmp_path) == before


# -- Ray: fail fast, write nothing before it is up -----------------------------------------


def _closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (the OS's pick, closed again)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_ray_address_fails_within_30_seconds(held_game, cli):
    pytest.importorskip("ray")
    held = held_game.directory
    (held / "spec.toml").write_text(SPEC)
    address = f"127.0.0.1:{_closed_port()}"
    start_time = time.monotonic()
    result = cli("tournament", "spec.toml", "--out", "out", "--ray-address", address, cwd=held)
    elapsed = time.monotonic() - start_time
    assert result.returncode == 2, result.stderr
    assert f"cannot reach Ray at --ray-address '{address}'" in result.stderr
    assert "Traceback" not in result.stderr
    assert elapsed < 30
    assert not (held / "out").exists()


@pytest.mark.parametrize("address", ["127.0.0.1", "ray://", "host:port", "h:0"])
def test_a_malformed_ray_address_is_refused(address):
    pytest.importorskip("ray")
    with pytest.raises(ExecutorError, match="expected 'local', 'auto', host:port"), \
            RayExecutor(address):
        pass


def test_a_failed_ray_start_leaves_the_output_directory_as_it_was(held_game, cli, monkeypatch):
    pytest.importorskip("ray")
    held = held_game.directory
    (held / "spec.toml").write_text(SPEC)

    def cannot_start(self):
        raise ExecutorError("cannot start or reach Ray at 'local': (simulated)")

    monkeypatch.setattr(RayExecutor, "__enter__", cannot_start)
    result = cli("tournament", "spec.toml", "--out", "out", "--ray-address", "local", "--quiet",
                 cwd=held)
    assert result.returncode == 2 and "(simulated)" in result.stderr
    assert not (held / "out").exists()
    (held / "out").mkdir()  # an existing directory is not written into either
    result = cli("tournament", "spec.toml", "--out", "out", "--ray-address", "local", "--quiet",
                 cwd=held)
    assert result.returncode == 2 and list((held / "out").iterdir()) == []
    # the spec corrected (another one) is not refused as "a different tournament"
    (held / "spec.toml").write_text(SPEC.replace("seeds = [0, 1, 2]", "seeds = [0]"))
    result = cli("tournament", "spec.toml", "--out", "out", "--quiet", cwd=held)
    assert result.returncode == 0, result.stderr
    assert "ran 1 (0 failed)" in result.stdout


# -- kill -9 of the parent: no orphans -------------------------------------------------------


def _children() -> dict[int, list[int]]:
    """Live processes by parent pid, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it ended meanwhile
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if state != "Z":
            children.setdefault(int(ppid), []).append(int(entry.name))
    return children


def descendants(pid: int) -> set[int]:
    children, found, todo = _children(), set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
@pytest.mark.slow
def test_kill_9_of_the_parent_leaves_no_live_worker(held_game, cli_command):
    (held_game.directory / "spec.toml").write_text(SPEC)
    command = cli_command("tournament", "spec.toml", "--out", "out", "--workers", "2", "--quiet")
    parent = start(command, held_game, hold=True)
    try:
        wait_for(lambda: len(held_game.records()) >= 2, "both workers play", parent)
        workers = {record["pid"] for record in held_game.records()}
        family = descendants(parent.pid)  # workers, fork server, resource tracker
        assert len(workers) == 2 and workers <= family
        os.kill(parent.pid, signal.SIGKILL)  # the parent only, not its process group
        parent.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in family) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes()[:80] for pid in family
                if alive(pid)}
        assert not left, f"still alive 10 s after the parent was killed: {left}"
    finally:
        kill_group(parent)
    assert_one_blas_thread(held_game.records())


# -- one BLAS thread per process -------------------------------------------------------------


def test_this_test_process_runs_blas_on_one_thread():
    libraries = threadpool_info()
    assert any(lib["internal_api"] == "openblas" for lib in libraries)  # numpy's is loaded
    assert {lib["filepath"]: lib["num_threads"] for lib in libraries} == {
        lib["filepath"]: 1 for lib in libraries}
    assert all(os.environ[variable] == "1" for variable in BLAS_THREAD_VARIABLES)


def test_a_match_in_this_process_runs_blas_on_one_thread(held_game, monkeypatch):
    (held_game.directory / "spec.toml").write_text(SPEC)
    monkeypatch.chdir(held_game.directory)
    spec = load_spec("spec.toml")
    (held_game.directory / "out").mkdir()
    (held_game.directory / "out" / LOCK_NAME).touch()  # what tells the game it is in a match
    with threadpool_limits(limits=2):  # as a caller may have set it
        result = run_tournament(spec, "out", workers=1, progress=False)
        assert all(lib["num_threads"] == 2 for lib in threadpool_info())  # restored after
    assert result.ran == N_MATCHES and len(held_game.records()) == N_MATCHES
    assert_one_blas_thread(held_game.records())


def test_an_output_path_that_is_a_file_is_refused_and_left_alone(held_game, cli):
    (held_game.directory / "spec.toml").write_text(SPEC)
    (held_game.directory / "notes.txt").write_text("my notes\n")
    result = cli("tournament", "spec.toml", "--out", "notes.txt", "--quiet",
                 cwd=held_game.directory)
    assert result.returncode == 2 and "notes.txt is not a directory" in result.stderr
    assert (held_game.directory / "notes.txt").read_text() == "my notes\n"
