"""The commands a researcher reaches for: ``algorithms``, ``--version``, switching an agent on
the command line, ``plot`` of several runs, and a closed pipe (issue 11, "Plot and CLI")."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import stackelberg
from agents.leaders.gradient import GradientLeaderConfig
from agents.leaders.rac import RACConfig
from agents.registry import FOLLOWERS, LEADERS
from stackelberg.app import cli as cli_module
from stackelberg.app.config import default_tau, load_config

CONFIG = """
[game]
id = "stackelberg/matrix-v0"
leader_payoffs = [[2, 4], [1, 3]]
follower_payoffs = [[1, 0], [0, 1]]

[leader]
algorithm = "pbrl-value"
lam = 50.0
pi_update = "exact"
tau_ratio = 0.5

[follower]
learner = "best-response"
tau = 0.02
tol = 1e-9

[run]
iterations = 30
"""


def write_config(directory: Path, text: str = CONFIG) -> Path:
    path = directory / "exp.toml"
    path.write_text(text)
    return path


# -- algorithms ----------------------------------------------------------------------------


def test_algorithms_json_lists_every_registry_entry_with_the_dataclass_defaults(tmp_path, cli):
    result = cli("algorithms", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    listed = {(row["role"], row["name"]): row for row in rows}
    expected = {("leader", n) for n in LEADERS} | {("follower", n) for n in FOLLOWERS}
    assert set(listed) == expected and len(rows) == len(expected)
    for (role, name), row in listed.items():
        spec = (LEADERS if role == "leader" else FOLLOWERS)[name]
        assert row["summary"] == spec.summary
        fixed = dict(spec.fixed)
        assert row["fixed"] == fixed
        # every settable field, with the default the dataclass gives it (through JSON)
        defaults = {k: v for k, v in dataclasses.asdict(spec.make_config()).items()
                    if k not in fixed}
        if role == "follower":
            defaults = {"tau": default_tau(spec.kinds[0]), **defaults}
        got = {p["name"]: p["default"] for p in row["parameters"]}
        assert got == json.loads(json.dumps(defaults)), name
        # every field is documented in its config class (or a base class)
        assert all(p["description"] for p in row["parameters"]), name


def test_algorithms_text_shows_types_defaults_and_fixed_fields(tmp_path, cli):
    result = cli("algorithms", cwd=tmp_path)
    assert result.returncode == 0
    for name in [*LEADERS, *FOLLOWERS]:
        assert f"  {name}: " in result.stdout
    assert "lam: float = 100.0" in result.stdout
    assert '[penalty = "bellman"]' in result.stdout


# -- --version ------------------------------------------------------------------------------


def test_version_comes_from_the_package_metadata_or_the_package(tmp_path, cli, monkeypatch):
    result = cli("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"stackelberg {cli_module.version()}"
    # without installed metadata (a source tree on PYTHONPATH): the package's own version
    import importlib.metadata

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert cli_module.version() == stackelberg.__version__


def test_setup_cfg_reads_the_version_from_the_package():
    setup = (Path(stackelberg.__file__).parents[1] / "setup.cfg").read_text()
    assert "version = attr: stackelberg.__version__" in setup


# -- switching an agent on the command line --------------------------------------------------


def test_switching_the_leader_drops_the_keys_it_does_not_take(tmp_path, cli):
    config = write_config(tmp_path)
    result = cli("run", str(config), "--out", "out", "--quiet", "--no-figure",
                 "leader.algorithm=rac", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    note = [line for line in result.stderr.splitlines() if "note:" in line]
    assert len(note) == 1
    for key in ("leader.lam", "leader.pi_update", "leader.tau_ratio"):
        assert key in note[0]
    leader = json.loads((tmp_path / "out" / "config.json").read_text())["leader"]
    assert leader == {"algorithm": "rac", **dataclasses.asdict(RACConfig())}


def test_switching_keeps_the_keys_both_take_and_the_command_line_s(tmp_path):
    # the CLI path is the test above; the resolution itself, without running a match
    notes: list[str] = []
    config = load_config(write_config(tmp_path), ["leader.algorithm=hypergradient",
                                                  "leader.alpha=0.25",
                                                  "follower.learner=mirror-descent"],
                         note=notes.append)
    resolved = config.resolved()
    # tau_ratio is a search field both leaders take: kept; lam and pi_update dropped
    assert resolved["leader"] == {
        "algorithm": "hypergradient",
        **dataclasses.asdict(GradientLeaderConfig(tau_ratio=0.5, alpha=0.25))}
    assert resolved["follower"]["tau"] == 0.02 and "tol" not in resolved["follower"]
    assert notes == [
        "leader.algorithm=hypergradient: dropped leader.lam, leader.pi_update (not taken by "
        "hypergradient; it starts from its defaults)",
        "follower.learner=mirror-descent: dropped follower.tol (not taken by mirror-descent; "
        "it starts from its defaults)"]


def test_a_key_given_for_the_new_agent_that_it_does_not_take_is_refused(tmp_path, cli):
    config = write_config(tmp_path)
    result = cli("run", str(config), "--out", "out", "--quiet", "leader.algorithm=rac",
                 "leader.lam=3", cwd=tmp_path)
    assert result.returncode == 2
    assert "leader.lam: unknown key for 'rac'" in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_same_algorithm_drops_nothing(tmp_path):
    notes: list[str] = []
    config = load_config(write_config(tmp_path), ["leader.algorithm=pbrl-value"],
                         note=notes.append)
    assert notes == [] and config.leader_params["lam"] == 50.0


# -- plot ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three runs: two of the textbook game, one of another matrix game."""
    from stackelberg.app.cli import main

    root = tmp_path_factory.mktemp("runs")
    config = write_config(root)
    for name, extra in (("value", []), ("hyper", ["leader.algorithm=hypergradient"]),
                        ("other", ["game.leader_payoffs=[[2,4],[1,2]]"])):
        assert main(["run", str(config), "--out", str(root / name), "--quiet", *extra]) == 0
    return root


def _figures(root: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in root.glob("*/convergence.png")}


@pytest.fixture
def drawn(monkeypatch):
    """The labels of the runs each ``plot`` draws, recorded on the way to the real figure."""
    from stackelberg.app import rundir

    calls: list[list[str]] = []
    real = rundir.plot_convergence

    def spy(runs, *args, **kwargs):
        calls.append([run.label for run in runs])
        return real(runs, *args, **kwargs)

    monkeypatch.setattr(rundir, "plot_convergence", spy)
    return calls


@pytest.mark.xdist_group("plot-runs")  # one worker plays the module's runs once
def test_plot_of_several_runs_labels_them_and_leaves_their_figures(runs, tmp_path, cli, drawn):
    before = _figures(runs)
    result = cli("plot", str(runs / "value"), str(runs / "hyper"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "convergence_value_vs_hyper.png"
    assert out.stat().st_size > 10_000
    assert str(out.name) in result.stdout and "current directory" in result.stdout
    assert _figures(runs) == before  # no run's own figure was touched
    assert drawn == [["value (pbrl-value / best-response)",
                      "hyper (hypergradient / best-response)"]]
    assert "warning" not in result.stderr  # the same game


@pytest.mark.xdist_group("plot-runs")  # one worker plays the module's runs once
def test_plot_warns_when_the_runs_come_from_different_games(runs, tmp_path, cli):
    result = cli("plot", str(runs / "value"), str(runs / "other"), "--out", "c.png",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warning = result.stderr.strip()
    assert warning.startswith("stackelberg plot: warning: the runs come from different games")
    assert "value: leader_payoffs=[[2, 4], [1, 3]]" in warning
    assert "other: leader_payoffs=[[2, 4], [1, 2]]" in warning
    assert (tmp_path / "c.png").is_file()


@pytest.mark.xdist_group("plot-runs")  # one worker plays the module's runs once
def test_plot_never_replaces_another_run_s_figure(runs, tmp_path, cli):
    before = _figures(runs)
    target = runs / "hyper" / "convergence.png"
    result = cli("plot", str(runs / "value"), str(runs / "hyper"), "--out", str(target),
                 cwd=tmp_path)
    assert result.returncode == 2 and "never replaces a run's own figure" in result.stderr
    result = cli("plot", str(runs / "value"), "--out", str(target), cwd=tmp_path)
    assert result.returncode == 2
    assert _figures(runs) == before


@pytest.mark.xdist_group("plot-runs")  # one worker plays the module's runs once
def test_plot_of_one_run_redraws_its_own_figure(runs, tmp_path, cli, drawn):
    result = cli("plot", str(runs / "value"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"figure: {runs / 'value' / 'convergence.png'}"
    assert drawn == [["pbrl-value / best-response"]]  # as `run` labels it
    assert list(tmp_path.iterdir()) == []


@pytest.mark.xdist_group("plot-runs")  # one worker plays the module's runs once
def test_plot_names_runs_with_equal_directory_names_apart(runs, tmp_path, cli, drawn):
    for parent in ("a", "b"):
        (tmp_path / parent).mkdir()
        (tmp_path / parent / "run").symlink_to(runs / "value")
    result = cli("plot", "a/run", "b/run", "--out", "x.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [label.split(" (")[0] for label in drawn[0]] == ["a/run", "b/run"]


# -- a closed pipe ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["games", "algorithms"])
def test_a_closed_pipe_ends_quietly(tmp_path, cli_command, command):
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written: EPIPE for certain
    try:
        result = subprocess.run(cli_command(command, "--json"), stdout=write,
                                stderr=subprocess.PIPE, text=True, cwd=tmp_path, timeout=120)
    finally:
        os.close(write)
    assert result.stderr == ""
    assert result.returncode == cli_module.EXIT_PIPE


def test_json_piped_into_head(tmp_path, cli_command):
    line = " ".join(cli_command("games", "--json"))
    result = subprocess.run(["bash", "-c", f"{line} | head -c 10"], capture_output=True,
                            text=True, cwd=tmp_path, timeout=120,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert result.returncode == 0
    assert result.stdout == "[\n  {\n    "[:10]
    assert result.stderr == ""
