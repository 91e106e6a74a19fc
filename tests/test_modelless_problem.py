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
