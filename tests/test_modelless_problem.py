"""The exact leaders read the problem's ``gamma``, ``initial`` and reward scale, not a game model:
a bilevel problem built without ``model`` (a parameterization of the user's, here the commitment
logits behind the plain vjp contract) plays the same match as with it."""

from __future__ import annotations

import numpy as np
import pytest
from test_bilevel_problem import DenseOnly, play
from test_parameterizations import game

from stackelberg.parameterizations import CommitmentLogits, LeaderRewards
from stackelberg.problem import BilevelProblem
from stackelberg.upper_level import ValueObjective

TAU = 0.1


@pytest.mark.parametrize("leader", ["pbrl-value", "hypergradient"])
def test_exact_leaders_need_no_game_model(leader):
    model = game(False)
    commitment = CommitmentLogits(model)
    param, reward = DenseOnly(commitment), LeaderRewards(commitment)
    with_model = BilevelProblem(param, ValueObjective(reward), TAU, model=model)
    without = BilevelProblem(param, ValueObjective(reward), TAU)
    assert without.gamma == model.gamma
    np.testing.assert_array_equal(without.initial, model.initial)
    reference, result = play(with_model, leader), play(without, leader)
    assert [r["upper_objective"] for r in result.metrics] == \
        [r["upper_objective"] for r in reference.metrics]
    np.testing.assert_array_equal(result.x, reference.x)


def test_a_registered_bilevel_problem_runs_from_a_config(monkeypatch):
    """An entry of kind "problem" (its builder returns a BilevelProblem at ``tau``) plays the
    exact leaders through ``run``'s config path; a sampled leader is refused by name."""
    import games
    from stackelberg.app.config import ConfigError, build_experiment, parse_config
    from stackelberg.coordinator import run_match

    model = game(False)

    def builder(tau: float, scale: float = 1.0) -> BilevelProblem:
        commitment = CommitmentLogits(model)
        return BilevelProblem(DenseOnly(commitment), ValueObjective(LeaderRewards(commitment)),
                              tau)

    entry = games.GameInfo("test/problem-v0", builder, "a problem", kind="problem")
    monkeypatch.setitem(games.REGISTRY, entry.id, entry)
    assert "test/problem-v0" not in games.GAMES and games.game_kind(entry.id) == "problem"
    data = {"game": {"id": entry.id}, "leader": {"algorithm": "hypergradient",
                                                  "random_starts": 1, "tau_ratio": 1.0},
            "follower": {"tau": TAU}, "run": {"iterations": 5, "progress": False}}
    experiment = build_experiment(parse_config(data))
    result = run_match(experiment.problem, experiment.leader, experiment.followers,
                       experiment.config.run, experiment.streams)
    reference = play(BilevelProblem(DenseOnly(CommitmentLogits(model)),
                                    ValueObjective(LeaderRewards(CommitmentLogits(model))), TAU,
                                    model=model), "hypergradient", 5)
    np.testing.assert_array_equal(result.x, reference.x)
    with pytest.raises(ConfigError, match="'rac' cannot play a bilevel problem"):
        parse_config({**data, "leader": {"algorithm": "rac"}})
