"""The command line, end to end: a complete run as a process, as a user would call it, the
rest through the same entry point in-process (the ``cli`` fixture: a process costs about 1.5
CPU s of imports; exit codes, tracebacks and pipes as processes are in test_bad_inputs and
test_cli_commands)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

GOOD = """
[game]
id = "stackelberg/matrix-v0"
leader_payoffs = [[2, 4], [1, 3]]
follower_payoffs = [[1, 0], [0, 1]]

[leader]
algorithm = "pbrl-value"

[follower]
learner = "best-response"
tau = 0.01

[run]
iterations = 30
seed = 3
"""

BAD_MODEL_BUILDER = '''
import numpy as np
from stackelberg.model import GameModel

def broken():
    P = np.full((2, 1, 1, 2), 0.5)
    P[1, 0, 0] = [0.7, 0.2]          # sums to 0.9
    r = np.zeros((2, 1, 1))
    return GameModel(P, r, r, np.array([0.5, 0.5]), 0.9)
'''


def write(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_run_writes_a_complete_run_directory(tmp_path, cli_process):
    config = write(tmp_path, GOOD)
    result = cli_process("run", str(config), "--out", "out", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == {
        ".stackelberg-run", "config.json", "metrics.csv", "summary.json", "convergence.png"}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging
    summary = json.loads((out / "summary.json").read_text())
    for key in ("leader_value", "lower_level_gap", "iterations", "wall_seconds", "seed",
                "sse_leader_value"):
        assert key in summary
    assert summary["iterations"] == 30 and summary["seed"] == 3
    assert summary["sse_leader_value"] == pytest.approx(3.5)
    resolved = json.loads((out / "config.json").read_text())
    assert resolved["leader"]["lam"] > 0  # defaults are filled in
    lines = (out / "metrics.csv").read_text().strip().splitlines()
    assert len(lines) == 31  # header + one row per iteration
    assert (out / "convergence.png").stat().st_size > 10_000


def test_overrides_change_the_config(tmp_path, cli):
    config = write(tmp_path, GOOD)
    result = cli("run", str(config), "--out", "o", "--quiet", "--no-figure", "run.iterations=5",
                 "leader.lam=50", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    resolved = json.loads((tmp_path / "o" / "config.json").read_text())
    assert resolved["run"]["iterations"] == 5 and resolved["leader"]["lam"] == 50


def test_same_seed_same_numbers(tmp_path, cli):
    """...and ``--no-figure`` changes nothing but the figure, which ``plot`` draws later as
    ``run`` would have drawn it."""
    config = write(tmp_path, GOOD.replace("best-response", "soft-q"))
    assert cli("run", str(config), "--out", "a", "--quiet", cwd=tmp_path).returncode == 0
    assert cli("run", str(config), "--out", "b", "--quiet", "--no-figure",
               cwd=tmp_path).returncode == 0
    assert {p.name for p in (tmp_path / "b").iterdir()} == {
        ".stackelberg-run", "config.json", "metrics.csv", "summary.json"}
    assert cli("plot", "b", cwd=tmp_path).returncode == 0
    assert (tmp_path / "b" / "convergence.png").read_bytes() == (
        tmp_path / "a" / "convergence.png").read_bytes()
    def without_wall_time(out):  # every column but the clock's
        with (tmp_path / out / "metrics.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        assert rows and "wall_seconds" in rows[0]
        return [{k: v for k, v in row.items() if k != "wall_seconds"} for row in rows]

    assert without_wall_time("a") == without_wall_time("b")


@pytest.mark.parametrize(
    "text, expected",
    [
        (GOOD.replace("seed = 3", "seed = 3\nspeed = 2"), "run.speed"),
        (GOOD.replace("lam", "lam").replace('algorithm = "pbrl-value"',
                                            'algorithm = "pbrl-value"\nlamda = 3'),
         "leader.lamda"),
        (GOOD + "\n[extra]\nx = 1\n", "unknown section [extra]"),
        (GOOD.replace('algorithm = "pbrl-value"', 'algorithm = "pbrl-magic"'), "pbrl-magic"),
        (GOOD.replace('learner = "best-response"', 'learner = "oracle"'), "oracle"),
        (GOOD.replace("tau = 0.01", "tau = -0.5"), "tau"),
        (GOOD.replace("[[2, 4], [1, 3]]", "[[nan, 4], [1, 3]]"), "leader_payoffs"),
        (GOOD.replace('"stackelberg/matrix-v0"', '"stackelberg/nope-v0"'), "stackelberg/nope-v0"),
        (GOOD.replace("[run]", "[run\n"), "not valid TOML"),
        (GOOD.replace("iterations = 30", "iterations = 0"), "run.iterations"),
        (GOOD.replace("follower_payoffs = [[1, 0], [0, 1]]", "follower_payoffs = [[1, 0]]"),
         "shape"),
        (GOOD.replace('algorithm = "pbrl-value"', 'algorithm = "hypergradient"')
             .replace("tau = 0.01", "tau = 0.0"), "tau > 0"),
        (GOOD.replace('algorithm = "pbrl-value"',
                      'algorithm = "pbrl-value"\nstarts = 2\nstart_iterations = 300'),
         "run.iterations = 30 is too few for leader (pbrl-value): it needs at least 603"),
    ],
    ids=["unknown-run-key", "unknown-leader-key", "unknown-section", "unknown-algorithm",
         "unknown-learner", "negative-tau", "nan-payoff", "unknown-game", "malformed-toml",
         "zero-iterations", "shape-mismatch", "hypergradient-needs-tau",
         "too-few-iterations-for-the-starts"],
)
def test_bad_input_exits_2_with_a_message_and_no_run_directory(tmp_path, cli, text, expected):
    config = write(tmp_path, text)
    result = cli("run", str(config), "--out", "out", "--quiet", cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
    assert not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_invalid_user_game_model_names_the_array(tmp_path, cli):
    write(tmp_path, BAD_MODEL_BUILDER, "mygame.py")
    text = GOOD.replace('"stackelberg/matrix-v0"', '"mygame.py:broken"')
    text = text.replace("leader_payoffs = [[2, 4], [1, 3]]\n", "").replace(
        "follower_payoffs = [[1, 0], [0, 1]]\n", "")
    config = write(tmp_path, text)
    result = cli("run", str(config), "--out", "out", "--quiet", cwd=tmp_path)
    assert result.returncode == 2
    assert "transitions[1, 0, 0]" in result.stderr and "sums to" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_missing_config_file(tmp_path, cli):
    result = cli("run", "nowhere.toml", cwd=tmp_path)
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_games_json_lists_the_registry(tmp_path, cli):
    result = cli("games", "--json", cwd=tmp_path)
    assert result.returncode == 0
    ids = {row["id"] for row in json.loads(result.stdout)}
    assert {"stackelberg/matrix-v0", "stackelberg/random-markov-v0",
            "stackelberg/patrol-v0"} <= ids


def test_plot_refuses_an_incomplete_run_directory(tmp_path, cli):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "metrics.csv").write_text("iteration\n1\n")
    result = cli("plot", "half", cwd=tmp_path)
    assert result.returncode == 2 and "summary.json" in result.stderr
