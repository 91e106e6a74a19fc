"""Tournaments: the spec, resume after SIGKILL, workers and Ray agree, failures, refusals."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from contextlib import closing
from pathlib import Path

import pytest

from agents.registry import LEADERS
from stackelberg.app.tournament import load_spec, parse_spec, run_tournament
from stackelberg.app.tournament.spec import match_id
from stackelberg.results import FILENAME, MatchRecord, ResultStore, StoreError, canonical_json

REPO = Path(__file__).resolve().parents[1]

# rac cannot play the random Markov game, hence the exclusion: (2*2 + 1*2) combinations x 2 seeds
SPEC = """
seeds = [0, 1]

[budget]
iterations = 40
metrics_every = 5

[[games]]
label = "textbook"
id = "stackelberg/matrix-v0"

[[games]]
label = "random"
id = "stackelberg/random-markov-v0"
n_states = 3

[[leaders]]
algorithm = "pbrl-value"

[[leaders]]
algorithm = "rac"

[[followers]]
learner = "best-response"
tau = 0.05

[[followers]]
label = "sampled"
learner = "soft-q"
tau = 0.05
batch_size = 32

[[exclude]]
leader = "rac"
game = "random"
"""
N_MATCHES = 12

FRAGILE_GAME = '''
from pathlib import Path

from games.matrix import matrix_game


def fragile_game():
    """The textbook game, until a file named "broken" appears next to this one."""
    if Path(__file__).with_name("broken").exists():
        raise RuntimeError("the game broke")
    return matrix_game([[2, 4], [1, 3]], [[1, 0], [0, 1]])
'''


def spec_of(text: str):
    return parse_spec(tomllib.loads(text))


def contents(out_dir: Path) -> dict[str, str]:
    """Everything a store holds except wall-clock times, as canonical JSON by match id."""
    with ResultStore(out_dir) as store:
        table = {}
        for record in store.records():
            data = dataclasses.asdict(record)
            del data["wall_seconds"], data["finished_at"]
            data["summary"].pop("wall_seconds", None)
            metrics = {name: values.tolist() for name, values in
                       store.metrics(record.match_id).items() if name != "wall_seconds"}
            table[record.match_id] = canonical_json({"record": data, "metrics": metrics})
    return table


def count_rows(out_dir: Path) -> tuple[int, int]:
    """(rows, distinct match ids) of the matches table; (0, 0) before it exists."""
    try:
        uri = f"file:{out_dir / FILENAME}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
            return db.execute("SELECT COUNT(*), COUNT(DISTINCT match_id) FROM matches").fetchone()
    except sqlite3.OperationalError:  # no file or no table yet
        return 0, 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """SPEC played in this process (workers=1): the results the other executors must match."""
    out = tmp_path_factory.mktemp("reference")
    result = run_tournament(spec_of(SPEC), out, progress=False)
    assert (result.ran, result.skipped, result.failed, result.stored) == (N_MATCHES, 0, 0,
                                                                           N_MATCHES)
    return out


# -- the spec ------------------------------------------------------------------------------


def test_spec_expands_into_labelled_matches_with_stable_ids():
    spec = spec_of(SPEC)
    assert len(spec.matches) == N_MATCHES
    assert [e.label for e in spec.leaders] == ["pbrl-value", "rac"]  # label defaults to the name
    assert [e.label for e in spec.followers] == ["best-response", "sampled"]
    combos = {(m.game, m.leader, m.follower) for m in spec.matches}
    assert ("random", "rac", "best-response") not in combos and len(combos) == 6
    first = spec.matches[0]
    assert (first.game, first.leader, first.follower, first.seed) == (
        "textbook", "pbrl-value", "best-response", 0)
    assert first.config.run.iterations == 40 and first.config.tau == 0.05
    assert not first.config.run.progress
    assert first.resolved["leader"]["lam"] > 0  # defaults filled in
    ids = [m.match_id for m in spec.matches]
    assert len(set(ids)) == N_MATCHES and all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)
    assert first.match_id == match_id(first.config.resolved())
    # an id depends on its match only: not on the order or the company it keeps
    reordered = spec_of(SPEC.replace("seeds = [0, 1]", "seeds = [1, 0, 7]"))
    assert set(ids) < {m.match_id for m in reordered.matches}
    # ... and on everything that changes the match
    longer = spec_of(SPEC.replace("iterations = 40", "iterations = 41"))
    assert not set(ids) & {m.match_id for m in longer.matches}


BAD_SPECS = [
    (SPEC.replace('algorithm = "rac"', 'label = "foo"\nalgorithm = "bar"'),
     """leaders[1] ("foo"): unknown algorithm 'bar'"""),
    (SPEC.replace("n_states = 3", "n_states = 0"),
     'games[1] ("random"): n_states must be a positive integer'),
    (SPEC.replace('algorithm = "rac"', 'algorithm = "pbrl-value"'),
     'leaders[1]: label "pbrl-value" is already used by leaders[0]'),
    (SPEC.replace("seeds = [0, 1]", "seeds = []"), "seeds must be a non-empty list"),
    (SPEC[:SPEC.index("[[followers]]")], "followers: the list is empty"),
    (SPEC.replace("[budget]", "[budget\n"), "not valid TOML"),
    ("gamez = 1\n" + SPEC, "unknown key 'gamez'"),
    (SPEC.replace("batch_size = 32", "batch_sise = 32"),
     'followers[1] ("sampled"): follower.batch_sise: unknown key'),
    (SPEC.replace("tau = 0.05\n\n[[followers]]", "tau = -1\n\n[[followers]]"),
     'followers[0] ("best-response"): follower.tau must be'),
    (SPEC.replace("iterations = 40", "iterations = 0"), "budget.iterations must be"),
    (SPEC.replace("metrics_every = 5", "seed = 5"), "budget.seed"),
    (SPEC.replace("metrics_every = 5", "progress = true"), "budget.progress: unknown key"),
    (SPEC.replace('game = "random"', 'game = "randum"'),
     "exclude[0].game: no game is labelled 'randum'"),
    (SPEC[:SPEC.index("[[exclude]]")],
     'games[1] ("random") x leaders[1] ("rac") x followers[0] ("best-response"): rac needs '
     "transitions that do not depend on the leader's action"),
    (SPEC.replace('algorithm = "rac"', 'algorithm = "rac"\nbudget = { iterations = -3 }'),
     "leaders[1].budget.iterations must be"),
    (SPEC.replace('batch_size = 32', 'batch_size = 32\nbudget = { iterations = 3 }'),
     "followers[1]: only a leader entry may have its own budget"),
]


@pytest.mark.parametrize("text, expected", BAD_SPECS, ids=[
    "unknown-algorithm", "game-parameter-out-of-range", "duplicate-label", "empty-seeds",
    "empty-list", "malformed-toml", "unknown-top-level-key", "unknown-hyperparameter",
    "negative-tau", "bad-budget", "seed-in-budget", "progress-in-budget",
    "exclude-unknown-label", "combination-that-cannot-run", "bad-leader-budget",
    "follower-budget"])
def test_a_bad_spec_is_refused_before_any_match_runs(tmp_path, cli, text, expected):
    (tmp_path / "spec.toml").write_text(text)
    result = cli("tournament", "spec.toml", "--out", "out", "--quiet", cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert expected in result.stderr
    assert result.stderr.startswith("stackelberg tournament: error: ")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_leader_budget_overrides_the_tournament_budget_for_its_matches():
    text = SPEC.replace('algorithm = "rac"', 'algorithm = "rac"\nbudget = { iterations = 7 }')
    spec = spec_of(text)
    iterations = {m.leader: m.config.run.iterations for m in spec.matches}
    assert iterations == {"pbrl-value": 40, "rac": 7}
    assert {m.config.run.metrics_every for m in spec.matches} == {5}  # the rest is shared
    assert spec.leaders[1].as_data()["budget"] == {"iterations": 7}


def test_a_bad_spec_exits_2_from_the_installed_command(tmp_path, cli_process):
    (tmp_path / "spec.toml").write_text(BAD_SPECS[0][0])
    result = cli_process("tournament", "spec.toml", "--out", "out", cwd=tmp_path)
    assert result.returncode == 2 and BAD_SPECS[0][1] in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_the_demo_spec_plays_every_leader():
    spec = load_spec(REPO / "configs" / "tournament_demo.toml")
    # every leader of an exact model (the torch leaders play simulator-only games and text)
    assert {e.name for e in spec.leaders} == {n for n, s in LEADERS.items()
                                              if not {"simulator", "text"} & set(s.kinds)}
    assert len(spec.games) >= 3 and len(spec.followers) >= 2 and len(spec.seeds) >= 3


# -- running -------------------------------------------------------------------------------


@pytest.mark.xdist_group("reference")  # one worker plays the reference once
@pytest.mark.slow
def test_results_do_not_depend_on_workers_or_ray(reference, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    expected = contents(reference)
    assert len(expected) == N_MATCHES
    spec = spec_of(SPEC)
    two = run_tournament(spec, tmp_path / "two", workers=2, progress=False)
    assert (two.ran, two.failed) == (N_MATCHES, 0)
    assert contents(tmp_path / "two") == expected
    # one Ray worker: the matches still run as Ray tasks in another process, and the order
    # in which results come back is checked by the two local workers above (a second Ray
    # worker is one more process that imports the project: about 2 CPU s)
    on_ray = run_tournament(spec, tmp_path / "ray", workers=1, ray_address="local",
                            progress=False)
    assert (on_ray.ran, on_ray.failed) == (N_MATCHES, 0)
    assert contents(tmp_path / "ray") == expected


@pytest.mark.slow
def test_sigkill_then_resume_equals_an_uninterrupted_run(held_game, cli_command, monkeypatch):
    # SPEC and a third game whose matches (the last ones) wait until released: the kill lands
    # when the other matches are stored and two of the held ones are being played
    text = SPEC.replace("[[leaders]]", '[[games]]\nlabel = "held"\nid = "held.py:held_game"\n\n'
                        "[[leaders]]", 1)
    tmp_path = held_game.directory
    (tmp_path / "spec.toml").write_text(text)
    monkeypatch.chdir(tmp_path)  # where the spec's game file is found
    matches = spec_of(text).matches
    total, held = len(matches), sum(m.game == "held" for m in matches)
    command = cli_command("tournament", "spec.toml", "--out", "killed", "--workers", "2",
                          "--quiet")
    process = subprocess.Popen(command, cwd=tmp_path, start_new_session=True,
                               env=held_game.environment(hold=True),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while count_rows(tmp_path / "killed")[0] < total - held or len(held_game.records()) < 2:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "the matches were not played in time"
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGKILL)  # the command and its worker processes
        process.wait(timeout=30)
    finally:
        held_game.release()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    assert count_rows(tmp_path / "killed") == (total - held, total - held)

    resumed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"ran {held} (0 failed), skipped {total - held} already stored" in resumed.stdout
    assert count_rows(tmp_path / "killed") == (total, total)

    run_tournament(spec_of(text), tmp_path / "whole", progress=False)
    assert contents(tmp_path / "killed") == contents(tmp_path / "whole")


def test_a_failing_match_is_stored_as_failed_and_the_others_complete(tmp_path, monkeypatch):
    (tmp_path / "fragile.py").write_text(FRAGILE_GAME)
    text = SPEC.replace('id = "stackelberg/random-markov-v0"\nn_states = 3',
                        'id = "fragile.py:fragile_game"').replace('"random"', '"fragile"')
    monkeypatch.chdir(tmp_path)
    spec = spec_of(text)  # the game builds while the spec is checked ...
    (tmp_path / "broken").touch()  # ... and breaks before its matches run
    monkeypatch.chdir(REPO)  # the builder's file is found from the spec's directory still
    result = run_tournament(spec, tmp_path / "out", workers=2, progress=False)
    assert (result.ran, result.failed, result.stored) == (N_MATCHES, 4, N_MATCHES)
    with ResultStore(tmp_path / "out") as store:
        records = store.records()
        failed = [r for r in records if not r.ok]
        assert {(r.game, r.leader) for r in failed} == {("fragile", "pbrl-value")}
        assert all("raised RuntimeError: the game broke" in r.error.splitlines()[0] for r in failed)
        assert all(r.summary == {} and len(store.metrics(r.match_id)["iteration"]) == 0
                   for r in failed)
        ok = [r for r in records if r.ok]
        assert len(ok) == N_MATCHES - 4
        assert all(r.summary["iterations"] == 40 for r in ok)
    again = run_tournament(spec, tmp_path / "out", workers=2, progress=False)
    assert (again.ran, again.skipped) == (0, N_MATCHES)  # a failed match counts as stored
    (tmp_path / "broken").unlink()  # the game is mended: retrying plays the 4 failed ones
    retry = run_tournament(spec, tmp_path / "out", progress=False, retry_failed=True)
    assert (retry.retried, retry.ran, retry.failed, retry.stored) == (4, 4, 0, N_MATCHES)
    with ResultStore(tmp_path / "out") as store:
        assert all(r.ok for r in store.records())
        assert all(len(store.metrics(r.match_id)["iteration"]) > 0 for r in store.records())


@pytest.mark.xdist_group("reference")
def test_a_different_spec_in_the_same_directory_is_refused(reference, tmp_path, cli):
    before = contents(reference)
    (tmp_path / "other.toml").write_text(SPEC.replace("seeds = [0, 1]", "seeds = [0, 1, 2]"))
    result = cli("tournament", "other.toml", "--out", str(reference), "--quiet", cwd=tmp_path)
    assert result.returncode == 2 and "different tournament spec" in result.stderr
    assert contents(reference) == before


def test_a_store_with_matches_the_spec_does_not_produce_is_refused(tmp_path):
    spec = spec_of(SPEC)
    with ResultStore(tmp_path) as store:
        store.bind_spec(spec.as_data())  # the same spec, played by code with other defaults
        store.write_match(MatchRecord(match_id="0123456789abcdef", game="textbook",
                                      leader="pbrl-value", follower="best-response", seed=0))
    with pytest.raises(StoreError, match="1 match"):
        run_tournament(spec, tmp_path, progress=False)


@pytest.mark.xdist_group("reference")
def test_rerunning_a_finished_tournament_plays_nothing(reference, tmp_path, cli):
    result = cli("tournament", str(REPO / "spec.toml"), cwd=tmp_path)  # a missing spec file
    assert result.returncode == 2 and "does not exist" in result.stderr
    (tmp_path / "spec.toml").write_text(SPEC)
    result = cli("tournament", "spec.toml", "--out", str(reference), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"ran 0 (0 failed), skipped {N_MATCHES} already stored" in result.stdout
    assert f"results store: {reference / FILENAME} ({N_MATCHES} matches)" in result.stdout


def test_without_ray_the_ray_address_is_a_user_error(tmp_path, cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    (tmp_path / "spec.toml").write_text(SPEC)
    result = cli("tournament", "spec.toml", "--out", "out", "--ray-address", "auto",
                 cwd=tmp_path)
    assert result.returncode == 2
    assert "needs Ray" in result.stderr and "stackelberg[ray]" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_file_game_in_a_spec_is_found_relative_to_the_spec_file(tmp_path, monkeypatch):
    """``id = "game.py:builder"`` in a spec names a file next to the spec, wherever the command
    runs; the stored spec keeps the id as written."""
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "fragile.py").write_text(FRAGILE_GAME)
    text = SPEC.replace('id = "stackelberg/random-markov-v0"\nn_states = 3',
                        'id = "fragile.py:fragile_game"').replace('"random"', '"fragile"')
    (tmp_path / "specs" / "spec.toml").write_text(text)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no fragile.py here: it is found from the spec's directory
    spec = load_spec(tmp_path / "specs" / "spec.toml")
    fragile = [m for m in spec.matches if m.game == "fragile"]
    assert fragile and all(m.resolved["game"]["id"] == "fragile.py:fragile_game" for m in fragile)
    assert all(Path(m.config.game_id.split(":")[0]) == tmp_path / "specs" / "fragile.py"
               for m in fragile)
