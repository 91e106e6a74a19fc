"""An economy through ``stackelberg run`` (and its alias ``stackelberg economy``): a short
pbrl-nash match on the commons writes its run directory and beats the no-incentive equilibrium;
bad input exits 2 with a message naming the file, the section and key, no traceback and no
output directory."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from stackelberg.app.cli import build_parser, cmd_run
from stackelberg.app.tournament import load_spec

REPO = Path(__file__).resolve().parents[1]
#: The shipped config, shortened on the command line (the overrides of `run`).
SHORT = ("game.stock_levels=4", "run.iterations=8", "run.seed=3")


def test_economy_is_run_under_another_name():
    """`stackelberg economy ...` hands `cmd_run` the very arguments `stackelberg run ...` does
    (`cmd_run` never reads the command's name), so the match below, played once through `run`,
    covers both (it was played once through each: about 5 CPU s each)."""
    config = str(REPO / "configs" / "commons.toml")
    argv = [config, *SHORT, "--out", "out", "--quiet", "--overwrite"]
    parser = build_parser()
    run, economy = vars(parser.parse_args(["run", *argv])), vars(parser.parse_args(
        ["economy", *argv]))
    assert run.pop("command") == "run" and economy.pop("command") == "economy"
    assert economy == run and economy["func"] is cmd_run


def test_economy_run_beats_the_no_incentive_equilibrium(tmp_path, cli):
    config = str(REPO / "configs" / "commons.toml")
    done = cli("run", config, *SHORT, "--out", "out", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # --quiet
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_followers"] == 2 and summary["iterations"] == 8
    # the planner's incentives raise net welfare (at the followers' equilibrium) above none
    assert summary["equilibrium_net_welfare"] > summary["baseline_net_welfare"]
    assert summary["hyper_objective"] == -summary["equilibrium_net_welfare"]
    # net welfare is welfare minus the planner's (payment_cost = 1) payments
    assert summary["net_welfare"] == pytest.approx(summary["welfare"] - summary["payments"],
                                                   abs=1e-12)
    assert summary["payments"] >= 0
    assert summary["lower_level_gap"] == summary["nash_gap"] >= 0
    # a budget: the instruments' levels are non-negative and sum to at most the budget
    levels = summary["incentive_levels"]
    assert set(levels) == {"subsidy_rest", "tax_effort_1", "tax_effort_2"}
    assert min(levels.values()) >= 0 and sum(levels.values()) <= 0.5 + 1e-12
    with (out / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["iteration"]) for r in rows] == list(range(1, 9))
    assert float(rows[-1]["equilibrium_net_welfare"]) == summary["equilibrium_net_welfare"]
    resolved = json.loads((out / "config.json").read_text())
    assert resolved["game"]["stock_levels"] == 4 and resolved["follower"]["damping"] == 0.5
    assert resolved["leader"]["algorithm"] == "pbrl-nash" and resolved["leader"]["penalty"] == 20
    assert (out / "convergence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # an earlier run is replaced only with --overwrite (under either name)
    for name in ("run", "economy"):
        again = cli(name, config, *SHORT, "--out", "out", "--quiet", cwd=tmp_path)
        assert again.returncode == 2 and "--overwrite" in again.stderr


ECONOMY = "[game]\nid = 'stackelberg/commons-v0'\n"
REST = "[follower]\ntau = 0.1\n[run]\niterations = 2\n"


@pytest.mark.parametrize(("config", "expected"), [
    (ECONOMY + "n_followers = 1\n" + REST, "game.n_followers must be an integer >= 2, got 1"),
    (ECONOMY + "budget = -0.5\n" + REST,
     "game.budget must be a finite non-negative number, got -0.5"),
    (ECONOMY + "fish = 3\n" + REST, "unknown parameter 'fish'"),
    (ECONOMY + "budget = 'lots'\n" + REST, "game.budget must be a number, got 'lots'"),
    (ECONOMY + "[leader]\npenalty = true\n" + REST, "leader.penalty must be a number, got True"),
    (ECONOMY + "[leader]\nalgorithm = 'pbrl-value'\n" + REST,
     "leader: 'pbrl-value' cannot play an economy (a planner and n followers); those that "
     "can: pbrl-nash"),
    (ECONOMY + "[leader]\nalpha_x = -1.0\n" + REST, "leader.alpha_x must be a finite number > 0"),
    (ECONOMY + "[follower]\ntau = 0.1\nbatch = 8\n", "follower.batch: unknown key"),
    (ECONOMY + "[follower]\ntau = 0.1\ndamping = 2.0\n",
     "follower.damping must be a number in [0, 1], got 2.0"),
    (ECONOMY + "[follower]\ntau = 0.1\nlearner = 'mirror-descent'\n",
     "follower: 'mirror-descent' cannot play an economy"),
    (ECONOMY + "[follower]\ntau = 0\n", "follower.tau must be a finite number > 0, got 0"),
    ("[game]\nid = 'stackelberg/matrix-v0'\n[leader]\nalgorithm = 'pbrl-nash'\n",
     "leader: 'pbrl-nash' cannot play a two-player game"),
    ("[game]\nid = 'stackelberg/toll-network-v0'\n",
     "game.id = 'stackelberg/toll-network-v0' is a toll network: run it with `stackelberg tolls"),
])
def test_bad_economy_configs_exit_2_naming_the_problem(tmp_path, cli, config, expected):
    (tmp_path / "bad.toml").write_text(config)
    done = cli("run", "bad.toml", "--out", "out", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "bad.toml" in done.stderr and expected in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_games_lists_every_kind_from_the_one_registry(tmp_path, cli):
    done = cli("games", "--json", cwd=tmp_path)
    assert done.returncode == 0
    kinds = {row["id"]: row["kind"] for row in json.loads(done.stdout)}
    assert kinds["stackelberg/commons-v0"] == "economy"
    assert kinds["stackelberg/toll-network-v0"] == "network"
    assert kinds["stackelberg/matrix-v0"] == "game"


MIXED = """
seeds = [0]

[budget]
iterations = 3

[[games]]
label = "textbook"
id = "stackelberg/matrix-v0"

[[games]]
label = "commons"
id = "stackelberg/commons-v0"
stock_levels = 3

[[leaders]]
algorithm = "pbrl-value"

[[leaders]]
algorithm = "pbrl-nash"

[[followers]]
learner = "best-response"
tau = 0.1
"""


def test_a_tournament_plays_games_of_both_kinds_and_notes_what_it_skips(tmp_path, cli):
    (tmp_path / "mixed.toml").write_text(MIXED)
    done = cli("tournament", "mixed.toml", "--out", "t", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2 matches; ran 2 (0 failed)" in done.stdout
    assert ("textbook x pbrl-nash x best-response: skipped, pbrl-nash cannot play a two-player "
            "game") in done.stderr
    assert "commons x pbrl-value x best-response: skipped, pbrl-value cannot play an economy" \
        in done.stderr
    report = cli("report", "t", "--no-figures", cwd=tmp_path)  # the text is what is read
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "t" / "report" / "index.md").read_text()
    # the commons is scored on the planner's net welfare at the followers' equilibrium
    assert "## Game commons" in text and "No match of this game could be scored" not in text


def test_the_shipped_mixed_tournament_is_valid_and_notes_its_skipped_pairs():
    notes = []
    spec = load_spec(REPO / "configs" / "tournament_economy.toml", note=notes.append)
    played = {(m.game, m.leader) for m in spec.matches}
    assert played == {("textbook", "pbrl-value"), ("commons", "pbrl-nash")}
    assert len(notes) == 2 and all("skipped" in n for n in notes)
