"""The commons economy (games.commons, games.economy_env): a valid exact model, the tragedy of
the commons, the environments sampling exactly that model, and invalid economies refused."""

from __future__ import annotations

import numpy as np
import pettingzoo
import pytest

import games
from games.commons import commons_economy
from games.economy_env import PLANNER, follower_name
from stackelberg.economy import equilibrium_outcome, upper_objective
from stackelberg.nash import joint_policy
from stackelberg.tabular import solve_mdp

TAU = 0.1


@pytest.mark.parametrize("params", [{}, {"n_followers": 3}, {"stock_levels": 4, "effort_levels": 2},
                                    {"incentive_range": "box"}])
def test_the_model_is_a_valid_follower_model(params):
    economy = commons_economy(**params)
    base = economy.base
    assert np.allclose(base.P.sum(axis=-1), 1.0, atol=1e-12) and (base.P >= 0).all()
    assert base.P.shape[1] == np.prod(base.action_sizes) == base.r.shape[2]
    assert base.r.shape[0] == economy.n_followers
    # symmetric followers: swapping two followers' actions swaps their rewards
    sizes = base.action_sizes
    for a in range(base.P.shape[1]):
        e = np.unravel_index(a, sizes)
        swapped = int(np.ravel_multi_index((e[1], e[0], *e[2:]), sizes))
        assert np.allclose(base.r[0, :, a], base.r[1, :, swapped])
        assert np.allclose(base.P[:, a], base.P[:, swapped])


def test_an_empty_stock_recovers_slowly_and_effort_depletes():
    economy = commons_economy()
    P = economy.base.P
    rest, work = 0, P.shape[1] - 1  # everyone rests / everyone at full effort
    mean_next = P @ np.arange(P.shape[0])
    assert (mean_next[1:, work] < mean_next[1:, rest]).all()  # nothing to deplete at 0
    assert mean_next[0, work] == pytest.approx(mean_next[0, rest])
    assert P[0, rest, 1] == pytest.approx(0.6 * 0.2)  # regrowth * recovery


@pytest.mark.parametrize("params", [{}, {"n_followers": 3}, {"catch": 0.3}])
def test_the_equilibrium_overuses_the_commons(params):
    """Tragedy of the commons: the followers' (regularized) Nash equilibrium gives far less
    welfare than the cooperative policy (the joint MDP maximizing the summed rewards), and
    every follower works harder there."""
    economy = commons_economy(**params)
    base = economy.base
    nash = equilibrium_outcome(economy, None, TAU)
    assert nash.equilibrium.converged and nash.equilibrium.gap.gap < 1e-8
    cooperative = solve_mdp(base.P, base.r.sum(axis=0), base.gamma, 1e-6)
    welfare_coop = float(base.rho @ cooperative.V)
    assert nash.upper.welfare < welfare_coop - 1.0
    # the follower's mean effort at equilibrium exceeds the cooperative one
    E = base.action_sizes[0]
    efforts = np.array(np.unravel_index(np.arange(base.P.shape[1]), base.action_sizes))[0]
    coop_effort = float((cooperative.pi @ efforts).mean())
    nash_effort = float((nash.equilibrium.profile[0] @ np.arange(E)).mean())
    assert nash_effort > coop_effort


def test_welfare_and_payments_are_the_discounted_sums():
    """``upper_objective``'s welfare and payments against a direct evaluation of the joint
    chain: ``rho^T (I - gamma P_pi)^{-1} u_pi``."""
    economy = commons_economy(n_followers=2)
    base = economy.base
    rng = np.random.default_rng(0)
    profile = [rng.dirichlet(np.ones(k), size=base.n_states) for k in base.action_sizes]
    x = rng.normal(size=economy.incentives.x_shape)
    pi = joint_policy(profile)
    P_pi = np.einsum("sa,sat->st", pi, base.P)
    M = np.eye(base.n_states) - base.gamma * P_pi

    def value(u):
        return float(base.rho @ np.linalg.solve(M, (pi * u).sum(axis=1)))

    upper = upper_objective(economy, x, profile)
    transfers = economy.incentives.paid(x).sum(axis=0)
    # only the subsidy for rest counts as paid (taxes are rebated): the transfer at effort 0
    assert np.allclose(transfers, np.clip(economy.incentives.transfers(x), 0, None).sum(axis=0))
    assert upper.welfare == pytest.approx(value(base.r.sum(axis=0)), rel=1e-12)
    assert upper.payments == pytest.approx(value(transfers), rel=1e-12)
    assert upper.objective == pytest.approx(-(upper.welfare - upper.payments), rel=1e-12)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"n_followers": 1}, "n_followers"),
        ({"n_followers": 2.5}, "n_followers"),
        ({"budget": -1.0}, "budget"),
        ({"payment_cost": -0.5}, "payment_cost"),
        ({"catch": 1.5}, "catch"),
        ({"gamma": 1.0}, "gamma"),
        ({"stock_levels": 1}, "stock_levels"),
        ({"incentive_range": "cone"}, "incentive_range"),
    ],
)
def test_invalid_economies_name_the_parameter(params, name):
    with pytest.raises(ValueError, match=name):
        commons_economy(**params)
    with pytest.raises(ValueError, match=name):
        pettingzoo.make("parallel", "stackelberg/commons-v0", **params)


# -- the environments sample the exact model -----------------------------------------------


@pytest.mark.parametrize("kind", ["parallel", "aec"])
def test_env_rewards_are_the_models_plus_transfers(kind):
    env = games.make_economy_env("stackelberg/commons-v0", kind, max_cycles=30)
    economy = env.model
    base, features, c = economy.base, economy.incentives.features, economy.payment_cost
    rng = np.random.default_rng(1)
    if kind == "parallel":
        _, infos = env.reset(seed=3)
        while env.agents:
            s = infos[PLANNER]["state"]
            levels = rng.uniform(0, 0.16, size=3)  # within the budget 0.5
            efforts = [int(e) for e in rng.integers(0, 3, size=2)]
            actions = {PLANNER: levels.astype(np.float32),
                       **{follower_name(i): efforts[i] for i in range(2)}}
            _, rewards, _, _, infos = env.step(actions)
            a = int(np.ravel_multi_index(efforts, base.action_sizes))
            g = levels.astype(np.float32).astype(float)
            transfers = features[:, s, a] @ g
            paid = economy.incentives.payment_features[:, s, a] @ g
            for i in range(2):
                assert rewards[follower_name(i)] == pytest.approx(base.r[i, s, a] + transfers[i])
            assert rewards[PLANNER] == pytest.approx(base.r[:, s, a].sum() - c * paid.sum())
            assert base.P[s, a, infos[PLANNER]["state"]] > 0
    else:
        env.reset(seed=3)
        assert env.agent_selection == PLANNER
        env.step(np.full(3, 0.4, dtype=np.float32))  # sums to 1.2 > budget 0.5: scaled down
        assert env._levels == pytest.approx(np.full(3, 0.5 / 3))
        observation = env.observe(follower_name(0))
        S = economy.n_states
        assert observation[S:S + 3] == pytest.approx(np.full(3, 1 / 3))  # levels / budget


def test_exact_and_sampled_worlds_agree_on_the_planners_value():
    """The planner's discounted return from the parallel env, averaged over episodes, matches
    the exact ``W - c payments`` of the same stationary play (within 4 standard errors)."""
    economy = commons_economy()
    rng = np.random.default_rng(0)
    profile = [np.full((economy.n_states, 3), 1 / 3)] * 2
    x = np.array([-1.0, 0.5, 1.0])
    exact = -upper_objective(economy, x, profile, gradients=False).objective
    levels = economy.incentives.levels(x).astype(np.float32)
    env = games.make_economy_env("stackelberg/commons-v0", "parallel",
                                 discount_as_termination=True)
    returns = []
    for episode in range(250):
        env.reset(seed=episode)
        total = 0.0
        while env.agents:
            actions = {PLANNER: levels, **{follower_name(i): int(rng.integers(3))
                                           for i in range(2)}}
            _, rewards, _, _, _ = env.step(actions)
            total += rewards[PLANNER]
        returns.append(total)
    returns = np.array(returns)
    assert abs(returns.mean() - exact) < 4 * returns.std() / np.sqrt(len(returns))
