"""A user's own PettingZoo environment in a tournament spec (issue 14): named as in a run config,
found next to the spec, validated before anything runs, stored as a direct ``run`` of the same
match would give it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_simulator_games import USER_CONFIG, USER_ENV
from test_tournament import contents

from analysis.runs import load_run
from stackelberg.app.cli import main
from stackelberg.results import ResultStore

# its matches build the torch learners: on the worker that already imported torch
pytestmark = pytest.mark.xdist_group("torch")

#: The match of USER_CONFIG (seed 1, four iterations) as a tournament, with a follower learner
#: that cannot play a simulator-only game.
SPEC = """
seeds = [1]
[budget]
iterations = 4
metrics_every = 2
[[games]]
label = "market"
env = "my_env.py:Market"
demand = 6.0
roles = { leader = "firm_a", follower = "firm_b" }
[[leaders]]
algorithm = "rac-neural"
batch = 32
[[followers]]
learner = "actor-critic"
batch = 32
[[followers]]
learner = "best-response"
"""


def _files(tmp_path: Path, spec: str = SPEC) -> Path:
    """The spec, the environment and the run config in ``tmp_path/specs``; the current
    directory is elsewhere, so the environment is found from the spec's directory or not at
    all."""
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "my_env.py").write_text(USER_ENV)
    (specs / "experiment.toml").write_text(USER_CONFIG)
    (specs / "spec.toml").write_text(spec)
    (tmp_path / "elsewhere").mkdir()
    return specs / "spec.toml"


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_a_users_env_in_a_spec_is_stored_as_a_direct_run_gives_it(tmp_path, capsys,
                                                                   monkeypatch):
    spec = _files(tmp_path)
    monkeypatch.chdir(tmp_path / "elsewhere")
    code, text = _run(capsys, "tournament", str(spec), "--out", "t", "--quiet")
    assert code == 0, text
    assert "1 matches; ran 1 (0 failed)" in text
    assert ("market x rac-neural x best-response: skipped, best-response cannot play a game "
            "known only through its simulator") in text
    code, text = _run(capsys, "run", str(spec.parent / "experiment.toml"), "--out", "run",
                      "--quiet")
    assert code == 0, text
    summary = json.loads(Path("run/summary.json").read_text())
    direct = load_run(Path("run")).metrics
    with ResultStore(Path("t")) as store:
        (record,) = store.records()
        stored = store.metrics(record.match_id)
    assert record.status == "ok" and record.seed == 1
    # the store keeps the environment as the spec writes it, with its roles
    assert record.config["game"]["env"] == "my_env.py:Market"
    assert record.config["roles"] == {"leader": "firm_a", "follower": "firm_b"}
    # to the last bit: the same match
    keys = set(record.summary) - {"wall_seconds"}
    assert {"leader_value", "leader_value_se", "follower_value"} <= keys
    assert {key: record.summary[key] for key in keys} == {key: summary[key] for key in keys}
    names = set(stored) - {"wall_seconds"}
    assert "leader_value" in names and names <= set(direct)
    assert {n: stored[n].tolist() for n in names} == {n: direct[n].tolist() for n in names}
    # resumable: a rerun plays nothing
    code, text = _run(capsys, "tournament", str(spec), "--out", "t", "--quiet")
    assert code == 0 and "ran 0 (0 failed), skipped 1 already stored" in text


@pytest.mark.slow
def test_a_users_env_gives_the_same_store_with_two_workers(tmp_path, capsys, monkeypatch):
    spec = _files(tmp_path)
    monkeypatch.chdir(tmp_path / "elsewhere")  # a worker finds the file by its absolute path
    for workers in ("1", "2"):
        code, text = _run(capsys, "tournament", str(spec), "--out", f"t{workers}", "--quiet",
                          "--workers", workers)
        assert code == 0 and "1 matches; ran 1 (0 failed)" in text, text
    assert contents(Path("t1")) == contents(Path("t2"))


@pytest.mark.parametrize("change, key", [
    (('leader = "firm_a"', 'leader = "firm_x"'), "roles.leader = 'firm_x' is not an agent"),
    (('follower = "firm_b"', 'follower = "firm_a"'), "roles.leader and roles.follower"),
    (('follower = "firm_b" }', 'follower = "firm_b", discount = 0.5 }'), "roles.discount"),
    (('roles = { leader = "firm_a", follower = "firm_b" }', ''), "add roles = "),
    (('my_env.py:Market', 'my_env.py:Nope'), "env: "),
    (('my_env.py:Market', 'other.py:Market'), "env: "),
    (('my_env.py:Market', 'my_env.py'), "env = 'my_env.py': name a PettingZoo"),
    (('demand = 6.0', 'demand = 6.0\nsupply = 1.0'), "env = "),
    (('roles = { leader = "firm_a", follower = "firm_b" }', 'roles = "firm_a"'),
     "roles must be a table"),
    (('label = "market"', 'label = "market"\nid = "stackelberg/duopoly-v0"'), "both id and env"),
    (('env = "my_env.py:Market"', 'id = "stackelberg/duopoly-v0"'), "it needs env = "),
])
def test_a_bad_users_env_in_a_spec_exits_2_naming_the_entry_and_key(tmp_path, capsys,
                                                                     monkeypatch, change, key):
    spec = _files(tmp_path, SPEC.replace(*change))
    monkeypatch.chdir(tmp_path / "elsewhere")
    code, text = _run(capsys, "tournament", str(spec), "--out", "t")
    assert code == 2 and "Traceback" not in text and "internal error" not in text
    assert f"{spec}: games[0]" in text  # the file, then the entry
    assert key in text
    assert not Path("t").exists()
