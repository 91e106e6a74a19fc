"""``stackelberg economy CONFIG``: a short pbrl-nash match on the commons writes its four files
and beats the no-incentive equilibrium; bad input exits 2 with a message naming the file, the
section and key, no traceback and no output directory."""

from __future__ import annotations

import csv
import json

import pytest

GOOD = """
[economy]
id = "stackelberg/commons-v0"
n_followers = 2
stock_levels = 4
budget = 0.5

[leader]
algorithm = "pbrl-nash"

[followers]
learner = "best-response"
tau = 0.1

[run]
iterations = 8
seed = 3
"""


def test_economy_run_beats_the_no_incentive_equilibrium(tmp_path, cli):
    (tmp_path / "commons.toml").write_text(GOOD)
    done = cli("economy", "commons.toml", "--out", "out", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # --quiet
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    final = summary["final"]
    assert summary["n_followers"] == 2 and summary["iterations"] == 8
    # the planner's incentives raise net welfare (at the followers' equilibrium) above none
    assert final["equilibrium_net_welfare"] > summary["baseline_net_welfare"]
    # net welfare is welfare minus the planner's (payment_cost = 1) payments
    assert final["net_welfare"] == pytest.approx(final["welfare"] - final["payments"], abs=1e-12)
    assert final["payments"] >= 0
    # a budget: the instruments' levels are non-negative and sum to at most the budget
    levels = summary["incentive_levels"]
    assert set(levels) == {"subsidy_rest", "tax_effort_1", "tax_effort_2"}
    assert min(levels.values()) >= 0 and sum(levels.values()) <= 0.5 + 1e-12
    with (out / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["iteration"]) for r in rows] == list(range(1, 9))
    assert float(rows[-1]["equilibrium_net_welfare"]) == final["equilibrium_net_welfare"]
    config = json.loads((out / "config.json").read_text())
    assert config["economy"]["stock_levels"] == 4 and config["followers"]["damping"] == 0.5
    assert (out / "net_welfare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # an earlier economy run is replaced only with --overwrite
    again = cli("economy", "commons.toml", "--out", "out", "--quiet", cwd=tmp_path)
    assert again.returncode == 2 and "--overwrite" in again.stderr


ECONOMY = "[economy]\nid = 'stackelberg/commons-v0'\n"
REST = "[followers]\ntau = 0.1\n[run]\niterations = 2\n"


@pytest.mark.parametrize(("config", "expected"), [
    (ECONOMY + "n_followers = 1\n" + REST, "economy.n_followers must be an integer >= 2, got 1"),
    (ECONOMY + "budget = -0.5\n" + REST,
     "economy.budget must be a finite non-negative number, got -0.5"),
    ("[economy]\nid = 'stackelberg/nowhere-v0'\n" + REST,
     "economy.id must be one of stackelberg/commons-v0, got 'stackelberg/nowhere-v0'"),
    (ECONOMY + "fish = 3\n" + REST, "unknown key economy.fish"),
    (ECONOMY + "budget = 'lots'\n" + REST, "economy.budget must be a number, got 'lots'"),
    (ECONOMY + "[leader]\npenalty = true\n" + REST, "leader.penalty must be a number, got True"),
    (ECONOMY + "[leader]\nalgorithm = 'pbrl-value'\n" + REST,
     "leader.algorithm must be one of pbrl-nash"),
    (ECONOMY + "[leader]\nalpha_x = -1.0\n" + REST, "leader.alpha_x must be a finite number > 0"),
    (ECONOMY + "[followers]\ntau = 0.1\nlearner = 'q'\n",
     "followers.learner must be one of best-response, soft-q, got 'q'"),
    (ECONOMY + "[followers]\ntau = 0.1\nbatch = 8\n", "unknown key followers.batch"),
    (ECONOMY + "[followers]\ntau = 0.1\ndamping = 2.0\n",
     "followers.damping must be a number in [0, 1], got 2.0"),
    (ECONOMY + "[followers]\nlearner = 'soft-q'\n", "followers.tau is missing"),
    (ECONOMY + "[followers]\ntau = 0\n", "followers.tau must be a finite number > 0, got 0"),
    (ECONOMY + REST + "iterations_x = 3\n", "unknown key run.iterations_x"),
    (ECONOMY + "[followers]\ntau = 0.1\n[run]\niterations = 0\n",
     "run.iterations must be an integer >= 1, got 0"),
    ("[economy]\nn_followers = 2\n" + REST, "economy.id is missing"),
    (ECONOMY + REST + "[planner]\nbudget = 1\n", "unknown section [planner]"),
    ("[economy\n", "not valid TOML"),
])
def test_bad_economy_configs_exit_2_naming_the_problem(tmp_path, cli, config, expected):
    (tmp_path / "bad.toml").write_text(config)
    done = cli("economy", "bad.toml", "--out", "out", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "bad.toml" in done.stderr and expected in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_games_lists_every_kind(tmp_path, cli):
    done = cli("games", "--json", cwd=tmp_path)
    assert done.returncode == 0
    kinds = {row["id"]: row["kind"] for row in json.loads(done.stdout)}
    assert kinds["stackelberg/commons-v0"] == "economy"
    assert kinds["stackelberg/toll-network-v0"] == "environment"
    assert kinds["stackelberg/matrix-v0"] == "game"
