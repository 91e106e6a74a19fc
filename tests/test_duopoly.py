"""The duopoly games: closed forms against brute force, PettingZoo conformance, the Box rule."""

from __future__ import annotations

import functools
import types

import numpy as np
import pytest
from pettingzoo.test import (
    api_test,
    max_cycles_test,
    parallel_api_test,
    parallel_seed_test,
    render_test,
    seed_test,
    state_test,
)

from games.duopoly import (
    FOLLOWER,
    LEADER,
    DuopolyMarket,
    duopoly_env,
    round_profits,
)
from games.duopoly_dynamic import duopoly_dynamic_env

#: Style advice of ``api_test`` inherent to one-number and commitment observations.
ADVICE = ("Observation is a single number", "Observation numpy array is all zeros",
          "Observations are different shapes", "Agents have different observation space sizes",
          "observation space value is -infinity", "observation space value is infinity")

MARKETS = [DuopolyMarket(), DuopolyMarket(100.0, 1.0, 10.0, 20.0),
           DuopolyMarket(7.0, 0.5, 1.0, 0.5)]


def test_reference_values():
    s = DuopolyMarket().stackelberg()
    assert (s.q_leader, s.q_follower, s.profit_leader, s.profit_follower) == (4, 2, 8, 4)
    c = DuopolyMarket().cournot()
    assert c.q_leader == pytest.approx(8 / 3) and c.profit_leader == pytest.approx(64 / 9)
    s = DuopolyMarket(100.0, 1.0, 10.0, 20.0).stackelberg()
    assert (s.q_leader, s.q_follower, s.price, s.profit_leader, s.profit_follower) == (
        50, 15, 35, 1250, 225)


@pytest.mark.parametrize("market", MARKETS)
def test_closed_forms_against_brute_force(market):
    grid = np.linspace(0.0, market.q_max, 200_001)
    # the follower's best response maximizes his profit on a fine grid
    for q_leader in (0.0, 0.3 * market.q_max, market.stackelberg().q_leader):
        profit = round_profits(market, np.full_like(grid, q_leader), grid)[1]
        assert market.best_response(q_leader) == pytest.approx(grid[profit.argmax()], abs=1e-4)
    # Stackelberg: the leader maximizes along the best response
    response = np.maximum(0.0, (market.a - market.cost_follower - market.b * grid) / (2 * market.b))
    leader_profit = round_profits(market, grid, response)[0]
    assert market.stackelberg().q_leader == pytest.approx(grid[leader_profit.argmax()], abs=1e-4)
    assert market.stackelberg().profit_leader == pytest.approx(leader_profit.max(), rel=1e-9)
    # Cournot: each quantity is a best response to the other
    c = market.cournot()
    assert market.best_response(c.q_leader) == pytest.approx(c.q_follower)
    swapped = DuopolyMarket(market.a, market.b, market.cost_follower, market.cost_leader)
    assert swapped.best_response(c.q_follower) == pytest.approx(c.q_leader)
    # commitment never hurts the leader
    assert market.stackelberg().profit_leader >= c.profit_leader


def _conform(make_aec, make_parallel, recwarn):
    api_test(make_aec(), num_cycles=30)
    parallel_api_test(make_parallel(), num_cycles=30)
    seed_test(make_aec, num_cycles=30)
    parallel_seed_test(make_parallel, num_cycles=30)
    state_test(make_aec(), make_parallel())
    unexpected = [str(w.message) for w in recwarn if not any(a in str(w.message) for a in ADVICE)]
    assert not unexpected, unexpected


def test_duopoly_conformance(recwarn):
    _conform(lambda: duopoly_env("aec", 3), lambda: duopoly_env("parallel", 3), recwarn)


def test_dynamic_duopoly_conformance(recwarn):
    _conform(lambda: duopoly_dynamic_env("aec", 4), lambda: duopoly_dynamic_env("parallel", 4),
             recwarn)


@pytest.mark.parametrize("factory", [duopoly_env, duopoly_dynamic_env])
def test_max_cycles_and_render(factory):
    mod = types.SimpleNamespace(env=functools.partial(factory, "aec"),
                                parallel_env=functools.partial(factory, "parallel"))
    max_cycles_test(mod)
    render_test(mod.env, custom_tests={"ansi": lambda text: text.startswith("stackelberg/")})


def test_aec_follower_observes_the_leaders_quantity_and_rewards_are_profits():
    env = duopoly_env("aec", a=100.0, cost_leader=10.0, cost_follower=20.0)
    env.reset(seed=0)
    env.step(np.array([50.0], dtype=np.float32))
    assert env.agent_selection == FOLLOWER and env.observe(FOLLOWER)[0] == 50.0
    env.step(np.array([15.0], dtype=np.float32))
    assert env.rewards == {LEADER: 1250.0, FOLLOWER: 225.0}


@pytest.mark.parametrize("kind", ["aec", "parallel"])
def test_actions_outside_the_box_are_clipped_and_nan_refused(kind):
    env = duopoly_env(kind)
    market = DuopolyMarket()
    expected = market.outcome(market.q_max, 0.0)
    if kind == "parallel":
        env.reset(seed=0)
        _, rewards, *_ = env.step({LEADER: np.array([1e9]), FOLLOWER: np.array([-5.0])})
        assert rewards == {LEADER: expected.profit_leader, FOLLOWER: 0.0}
        env.reset(seed=0)
        with pytest.raises(ValueError, match="finite"):
            env.step({LEADER: np.array([np.nan]), FOLLOWER: np.array([1.0])})
    else:
        env.reset(seed=0)
        env.step(np.array([1e9]))
        env.step(np.array([-5.0]))
        assert env.rewards == {LEADER: expected.profit_leader, FOLLOWER: 0.0}
        env.reset(seed=0)
        with pytest.raises(ValueError, match="finite"):
            env.step(np.array([np.inf]))


def test_parallel_follower_observes_the_commitment():
    env = duopoly_env("parallel")
    env.commit(np.array([0.25, -1.0]))
    observations, _ = env.reset(seed=0)
    assert observations[FOLLOWER].tolist() == [0.25, -1.0]
    with pytest.raises(ValueError):
        env.commit(np.array([np.nan, 0.0]))


def test_dynamic_demand_carries_over_and_is_seeded():
    def intercepts(seed):
        env = duopoly_dynamic_env("parallel", 6, sigma=0.2)
        env.reset(seed=seed)
        out = []
        while env.agents:
            _, _, _, _, infos = env.step({LEADER: np.array([1.0]), FOLLOWER: np.array([1.0])})
            out.append(infos[LEADER]["intercept"])
        return out
    assert intercepts(3) == intercepts(3) != intercepts(4)
    env = duopoly_dynamic_env("parallel", 2)
    assert env.stackelberg_at(10.0).q_leader == 4.0


@pytest.mark.parametrize("bad", [{"b": 0.0}, {"a": float("nan")}, {"cost_follower": 9.0}])
def test_bad_markets_are_refused_with_the_key(bad):
    key = next(iter(bad))
    with pytest.raises(ValueError, match="duopoly"):
        duopoly_env("parallel", **bad)
    if key != "cost_follower":
        with pytest.raises(ValueError, match=key):
            duopoly_env("aec", **bad)


@pytest.mark.parametrize("make", [lambda: duopoly_env("parallel"),
                                  lambda: duopoly_dynamic_env("parallel", 8)],
                         ids=["static", "dynamic"])
def test_a_commitment_is_size_finite_numbers_or_refused(make):
    env = make()
    size = env.commitment.size
    env.commit(np.arange(size, dtype=float))
    np.testing.assert_array_equal(env.commitment, np.arange(size, dtype=np.float32))
    for bad in (np.zeros(size + 1), np.full(size, np.nan)):
        with pytest.raises(ValueError, match=f"a commitment is {size} finite numbers"):
            env.commit(bad)
    np.testing.assert_array_equal(env.commitment, np.arange(size, dtype=np.float32))
