"""Spec sweeps (a list where a hyperparameter takes one value is a grid) and command-line
overrides of a tournament spec (issue 11, "Plot and CLI")."""

from __future__ import annotations

import csv
import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from agents.registry import LEADERS, AgentSpec
from analysis.report import read_store
from analysis.tournament import ToleranceRule, overall_ranking, rank_games
from stackelberg.app.config import ConfigError
from stackelberg.app.tournament import parse_spec
from stackelberg.app.tournament.overrides import apply_spec_overrides
from stackelberg.app.tournament.sweep import expand
from stackelberg.results import ResultStore

SPEC = """
seeds = [0]

[budget]
iterations = 30

[[games]]
label = "textbook"
id = "stackelberg/matrix-v0"
leader_payoffs = [[2, 4], [1, 3]]
follower_payoffs = [[1, 0], [0, 1]]

[[leaders]]
algorithm = "pbrl-value"
tau_ratio = [0.01, 1.0]     # tau anneals to 0.01 x follower.tau, or stays

[[leaders]]
algorithm = "hypergradient"

[[followers]]
learner = "best-response"
tau = 0.02
"""


def spec_data(text: str = SPEC) -> dict:
    return tomllib.loads(text)


def labels(spec, kind: str = "leaders") -> list[str]:
    return [e.label for e in getattr(spec, kind)]


# -- expansion -------------------------------------------------------------------------------


def test_a_list_expands_into_labelled_entries_with_each_value():
    spec = parse_spec(spec_data())
    assert labels(spec) == ["pbrl-value[tau_ratio=0.01]", "pbrl-value[tau_ratio=1.0]",
                            "hypergradient"]
    assert [e.params["tau_ratio"] for e in spec.leaders[:2]] == [0.01, 1.0]
    assert {e.group for e in spec.leaders[:2]} == {"pbrl-value"}
    ratio = {m.leader: m.resolved["leader"]["tau_ratio"] for m in spec.matches}
    assert ratio == {"pbrl-value[tau_ratio=0.01]": 0.01, "pbrl-value[tau_ratio=1.0]": 1.0,
                     "hypergradient": 0.01}  # the default
    assert len(spec.matches) == 3


def test_two_lists_give_the_product_labelled_in_the_order_the_keys_are_written():
    data = spec_data()
    data["leaders"][0] = {"algorithm": "pbrl-value", "label": "pv", "tau_ratio": [0.5, 1.0],
                          "lam": [10, 100], "pi_update": "exact"}
    data["followers"][0]["tau"] = [0.02, 0.1]
    spec = parse_spec(data)
    assert labels(spec)[:4] == ["pv[tau_ratio=0.5,lam=10]", "pv[tau_ratio=0.5,lam=100]",
                                "pv[tau_ratio=1.0,lam=10]", "pv[tau_ratio=1.0,lam=100]"]
    assert labels(spec, "followers") == ["best-response[tau=0.02]", "best-response[tau=0.1]"]
    assert len(spec.matches) == 5 * 2
    taus = {(m.leader, m.follower): m.resolved["follower"]["tau"] for m in spec.matches}
    assert taus["hypergradient", "best-response[tau=0.1]"] == 0.1
    # booleans and strings sweep too, spelled as TOML spells them
    data["leaders"][0] = {"algorithm": "pbrl-value", "pi_update": ["exact", "gradient"]}
    data["leaders"][1] = {"algorithm": "rac", "xi_per_penalty": [True, False]}
    assert labels(parse_spec(data)) == [
        "pbrl-value[pi_update=exact]", "pbrl-value[pi_update=gradient]",
        "rac[xi_per_penalty=true]", "rac[xi_per_penalty=false]"]


@dataclass(frozen=True)
class WeightedConfig:
    """A leader config with a field that holds a tuple."""

    weights: tuple[float, ...] = (1.0, 1.0)
    lam: float = 1.0


def test_a_field_that_holds_a_list_is_not_expanded(monkeypatch):
    monkeypatch.setitem(LEADERS, "weighted", AgentSpec("weighted", WeightedConfig,
                                                       lambda c: None, "test leader"))
    variants = expand("leader", "weighted", "w", {"weights": [0.5, 2.0], "lam": [1, 2]},
                      "leaders[0]")
    assert [v.label for v in variants] == ["w[lam=1]", "w[lam=2]"]
    assert all(v.params["weights"] == [0.5, 2.0] for v in variants)
    # nothing swept: the entry itself
    only = expand("leader", "weighted", "w", {"weights": [0.5, 2.0]}, "leaders[0]")
    assert [(v.label, v.swept) for v in only] == [("w", ())]


def test_an_empty_sweep_and_a_clashing_label_are_refused():
    data = spec_data()
    data["leaders"][0]["tau_ratio"] = []
    with pytest.raises(ConfigError, match=r"leaders\[0\]\.tau_ratio: an empty list sweeps "):
        parse_spec(data)
    data = spec_data()
    data["leaders"][1] = {"algorithm": "pbrl-value", "label": "pbrl-value[tau_ratio=1.0]"}
    with pytest.raises(ConfigError, match=r'leaders\[1\]: label "pbrl-value\[tau_ratio=1.0\]"'
                                          r' is already used by leaders\[0\]'):
        parse_spec(data)


def test_a_bad_value_in_a_sweep_names_its_point():
    data = spec_data()
    data["leaders"][0]["tau_ratio"] = [1, "x"]
    with pytest.raises(ConfigError, match=r'leaders\[0\] \("pbrl-value\[tau_ratio=x\]"\): '
                                          r"leader.tau_ratio must be a number"):
        parse_spec(data)


def test_an_exclusion_naming_the_entry_as_written_covers_every_point():
    data = spec_data()
    data["followers"].append({"learner": "soft-q", "tau": 0.02})
    data["exclude"] = [{"leader": "pbrl-value", "follower": "soft-q"},
                       {"leader": "hypergradient[alpha=0.5]"}]
    data["leaders"][1]["alpha"] = [0.5, 1.0]
    spec = parse_spec(data)
    pairs = {(m.leader, m.follower) for m in spec.matches}
    assert pairs == {("pbrl-value[tau_ratio=0.01]", "best-response"),
                     ("pbrl-value[tau_ratio=1.0]", "best-response"),
                     ("hypergradient[alpha=1.0]", "best-response"),
                     ("hypergradient[alpha=1.0]", "soft-q")}


# -- a tournament over a sweep, reported -------------------------------------------------------


def test_a_sweep_is_played_stored_and_ranked_like_any_entries(tmp_path, cli):
    (tmp_path / "spec.toml").write_text(SPEC)
    result = cli("tournament", "spec.toml", "--out", "t", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with ResultStore(tmp_path / "t", readonly=True) as store:
        stored = {entry["label"] for entry in store.spec()["leaders"]}
    assert stored == {"pbrl-value[tau_ratio=0.01]", "pbrl-value[tau_ratio=1.0]",
                      "hypergradient"}
    assert cli("report", "t", "--no-figures", cwd=tmp_path).returncode == 0  # a table is read
    with (tmp_path / "t" / "report" / "rankings_overall.csv").open() as handle:
        table = [(row["leader"], float(row["rank"])) for row in csv.DictReader(handle)]
    assert {leader for leader, _ in table} == stored
    # the report's own ranking of these matches, in the table's order
    expected = overall_ranking(rank_games(read_store(tmp_path / "t"), ToleranceRule()))
    assert table == [(s.competitor.leader, float(s.rank)) for s in expected]
    ranks = dict(table)
    # annealing tau gets closer to the SSE value than keeping it: the points rank apart
    assert ranks["pbrl-value[tau_ratio=0.01]"] < ranks["pbrl-value[tau_ratio=1.0]"]


# -- command-line overrides of a spec --------------------------------------------------------


def test_overrides_address_seeds_budget_and_entries_by_label():
    data = apply_spec_overrides(spec_data(), [
        "seeds=[1,2]", "run.iterations=20", "budget.metrics_every=2",
        "leaders.hypergradient.alpha=0.25", "followers.*.tau=0.05",
        "leaders.pbrl-value.tau_ratio=[0.1,0.5]"]).data
    spec = parse_spec(data)
    assert spec.seeds == (1, 2) and dict(spec.budget) == {"iterations": 20, "metrics_every": 2}
    assert labels(spec) == ["pbrl-value[tau_ratio=0.1]", "pbrl-value[tau_ratio=0.5]",
                            "hypergradient"]
    assert spec.leaders[2].params == {"alpha": 0.25}
    assert all(m.resolved["follower"]["tau"] == 0.05 for m in spec.matches)
    assert spec_data()["seeds"] == [0]  # the data read is left as it was


def test_switching_an_entry_s_algorithm_drops_its_keys_with_a_note():
    data = spec_data()
    data["leaders"][1]["alpha"] = 0.25
    overridden = apply_spec_overrides(data, ["leaders.hypergradient.algorithm=rac"])
    assert overridden.data["leaders"][1] == {"algorithm": "rac"}
    assert overridden.notes == ("leaders[1]: algorithm = 'rac' drops alpha (not taken by rac; "
                                "it starts from its defaults)",)


@pytest.mark.parametrize("override, message", [
    ("leaders.nobody.lam=1", "override 'leaders.nobody.lam=1': no entry of leaders is "
                             "labelled 'nobody'; labels: 'pbrl-value', 'hypergradient'"),
    ("exclude.leader=x", "override 'exclude.leader=x': the spec has no 'exclude'"),
    ("budget=3", "override 'budget=3': 'budget' is not a top-level entry to set"),
    ("leaders.lam=1", "override 'leaders.lam=1': name an entry and a key"),
    ("seeds", "override 'seeds': it is not of the form key=value"),
])
def test_an_override_that_names_nothing_is_refused(override, message):
    with pytest.raises(ConfigError) as err:
        apply_spec_overrides(spec_data(), [override])
    assert str(err.value).startswith(message)


@pytest.mark.parametrize("override, message", [
    ("leaders.hypergradient.alfa=1", 'leaders[1] ("hypergradient"): leader.alfa: unknown key'),
    ("run.iterations=-3", "budget.iterations"),
    ("followers.best-response.tau=true", "follower.tau must be a finite number"),
    ("run.seed=4", "budget.seed: a tournament's seeds are the top-level list `seeds`"),
])
def test_a_bad_override_exits_2_naming_the_key(tmp_path, cli, override, message):
    (tmp_path / "spec.toml").write_text(SPEC)
    result = cli("tournament", "spec.toml", "--out", "t", "--quiet", override, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"stackelberg tournament: error: spec.toml (with {override} "
                                    "from the command line): ")
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "t").exists()


def test_overrides_are_part_of_the_tournament_s_identity(tmp_path, cli):
    (tmp_path / "spec.toml").write_text(SPEC)

    def play(*overrides: str):
        return cli("tournament", "spec.toml", "--out", "t", "--quiet", *overrides,
                   cwd=tmp_path)

    first = play("run.iterations=20", "leaders.pbrl-value.tau_ratio=0.5")
    assert first.returncode == 0, first.stderr
    assert "ran 2 (0 failed), skipped 0" in first.stdout
    again = play("run.iterations=20", "leaders.pbrl-value.tau_ratio=0.5")  # the same: resumes
    assert again.returncode == 0 and "ran 0 (0 failed), skipped 2" in again.stdout
    for other in (["run.iterations=25", "leaders.pbrl-value.tau_ratio=0.5"],  # refused
                  []):  # the spec as written is another tournament too
        refused = play(*other)
        assert refused.returncode == 2
        assert "holds the results of a different tournament spec" in refused.stderr
    with ResultStore(tmp_path / "t", readonly=True) as store:
        bound = store.spec()
    assert bound["budget"]["iterations"] == 20
    assert [e["label"] for e in bound["leaders"]] == ["pbrl-value", "hypergradient"]
    assert bound["leaders"][0]["tau_ratio"] == 0.5


def test_the_spec_as_written_keeps_its_identity():
    # a spec without sweeps or overrides binds the store to the same data as before sweeps
    # existed, so stores written by earlier versions still resume
    spec = parse_spec(spec_data(SPEC.replace("tau_ratio = [0.01, 1.0]", "lam = 1")))
    assert spec.as_data()["leaders"][0] == {"label": "pbrl-value", "algorithm": "pbrl-value",
                                            "lam": 1}
    assert not any(dataclasses.asdict(e).get("written_label") for e in spec.leaders)


def test_the_readme_shows_each_command_once():
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for snippet in ("stackelberg algorithms", "stackelberg --version", "leaders.pbrl-value.lam=",
                    "lam = [10, 100]", "leader.algorithm=", "games --json | head"):
        assert snippet in text, snippet
