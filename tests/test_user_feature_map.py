"""A user's incentive design from a config alone: an economy's followers' game plus a feature map
given as data (a built-in name, an array) or as a function in the user's own file
(stackelberg/app/incentives_section.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.special

import games
from stackelberg.app.config import ConfigError, build_experiment, parse_config
from stackelberg.economy import IncentiveEconomy
from stackelberg.incentives import Box, LinearIncentives, action_features

PHI = '''
import numpy as np

def phi(game):
    """One instrument: pays every follower its own effort level (a tax when negative)."""
    n, S, A = game.r.shape
    own = np.array(np.unravel_index(np.arange(A), game.action_sizes))
    return own.reshape(n, 1, A, 1) * np.ones((1, S, 1, 1))
'''

CONFIG = """
[game]
id = "stackelberg/commons-v0"
stock_levels = 3

[incentives]
features = "phi.py:phi"
kind = "box"
lo = -0.3
hi = 0.0

[follower]
tau = 0.1

[run]
iterations = 6
"""


def test_a_feature_function_in_the_users_file_runs_through_the_cli(tmp_path, cli):
    (tmp_path / "phi.py").write_text(PHI)
    (tmp_path / "design.toml").write_text(CONFIG)
    # (an economy's figure is checked in test_economy_cli)
    done = cli("run", "design.toml", "--out", "out", "--quiet", "--no-figure", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    level = summary["incentive_levels"]["instrument_0"]
    assert -0.3 < level < 0.0
    # the same design built by hand gives the run's hyper-objective at that level
    economy = games.make_economy("stackelberg/commons-v0", stock_levels=3)
    base = economy.base
    own = np.array(np.unravel_index(np.arange(base.r.shape[2]), base.action_sizes))
    features = own.reshape(2, 1, -1, 1) * np.ones((1, base.n_states, 1, 1))
    mine = IncentiveEconomy("mine", LinearIncentives(base, features, Box([-0.3], [0.0])), 1.0,
                            ("tax",), economy.state_names, economy.action_names)
    x = np.array([scipy.special.logit((level + 0.3) / 0.3)])
    assert mine.problem(0.1).hyper_objective(x) == pytest.approx(summary["hyper_objective"],
                                                                 abs=1e-8)
    assert summary["equilibrium_net_welfare"] > summary["baseline_net_welfare"]


def _config(incentives: dict, game: str = "stackelberg/commons-v0") -> dict:
    return {"game": {"id": game, "stock_levels": 3} if "commons" in game else {"id": game},
            "incentives": incentives, "follower": {"tau": 0.1}, "run": {"iterations": 2}}


def test_a_built_in_feature_map_or_an_array_as_data():
    named = build_experiment(parse_config(_config(
        {"features": "per-action", "kind": "budget", "budget": 0.4, "payment_cost": 0.5})))
    base = named.problem.economy.base
    np.testing.assert_array_equal(named.problem.parameterization.features,
                                  action_features(base))
    assert named.problem.upper.payment_cost == 0.5
    array = action_features(base).tolist()
    written = build_experiment(parse_config(_config(
        {"features": array, "kind": "box", "lo": [-1, 0, 0], "hi": 1.0})))
    np.testing.assert_array_equal(written.problem.parameterization.features,
                                  action_features(base))
    np.testing.assert_array_equal(written.problem.parameterization.range_map.lo, [-1, 0, 0])


@pytest.mark.parametrize(("incentives", "game", "expected"), [
    ({"features": "os:system", "kind": "box", "lo": 0, "hi": 1}, "stackelberg/commons-v0",
     "incentives.features"),
    ({"features": "per-action", "kind": "box", "lo": 0}, "stackelberg/commons-v0",
     "incentives.hi is missing"),
    ({"features": "per-action", "kind": "budget", "budget": 1, "lo": 0},
     "stackelberg/commons-v0", "incentives.lo does not apply to kind = 'budget'"),
    ({"features": "per-action", "kind": "budget", "budget": -1}, "stackelberg/commons-v0",
     "budget must be a finite non-negative number"),
    ({"features": [[1.0]], "kind": "budget", "budget": 1}, "stackelberg/commons-v0",
     "incentives.features must have 4 axes"),
    ({"features": "per-action", "kind": "box", "lo": 0, "hi": 1, "cost": 1},
     "stackelberg/commons-v0", "incentives.cost: unknown key"),
    ({"features": "per-action", "kind": "box", "lo": 0, "hi": 1}, "stackelberg/matrix-v0",
     "game.id must name an economy"),
])
def test_bad_incentives_are_refused_naming_the_key(incentives, game, expected):
    with pytest.raises(ConfigError, match=None) as caught:
        build_experiment(parse_config(_config(incentives, game)))
    assert expected in str(caught.value)
