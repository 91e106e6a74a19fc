"""``pbrl-nash`` and the game follower learners in an economy match (the coordinator's one
match loop, :func:`stackelberg.coordinator.run_match`, on the economy's bilevel problem).

The claim of issue 12 (done-means 3), on instances the leader was not tuned on (tuning: the
default commons and ``commons_instance(0..4)``; here 200 and 201; the benchmark reports 100-104):
pbrl-nash raises the planner's net welfare at the followers' equilibrium above the equilibrium
without incentives. Plus: damped best-response followers reach a Nash gap below 1e-8 against a
fixed incentive; independent soft-Q from samples approaches the soft best response.
"""

from __future__ import annotations

import numpy as np
import pytest

from agents.followers.game import (
    DampedBestResponse,
    IndependentSoftQ,
    IndependentSoftQConfig,
)
from agents.leaders.pbrl_nash import PBRLNashConfig, PBRLNashLeader
from games.commons import commons_economy, commons_instance
from stackelberg.coordinator import MatchConfig, run_match
from stackelberg.nash import best_response
from stackelberg.seeding import run_streams

TAU = 0.1


class FixedIncentive:
    """A planner that keeps one ``x`` (to watch the followers alone)."""

    samples = 0
    penalized_policy = None

    def __init__(self, x: np.ndarray):
        self._x = x

    def reset(self, problem, rng) -> None:
        pass

    def step(self, responses) -> dict[str, float]:
        return {}

    @property
    def x(self) -> np.ndarray:
        return self._x


class NoIncentives:
    """The followers' own game, whatever the planner's ``x`` (what a learner reads of a
    problem)."""

    def __init__(self, economy, tau):
        self.economy, self.tau = economy, tau

    def followers(self, x):
        return self.economy.base

    def uniform_profile(self):
        return self.economy.problem(self.tau).uniform_profile()


def play_economy(economy, tau, leader, followers, iterations, seed=0, metrics_every=1):
    match = MatchConfig(iterations=iterations, metrics_every=metrics_every, progress=False)
    return run_match(economy.problem(tau), leader, followers, match,
                     run_streams(seed, len(followers)))


def test_damped_best_responses_in_a_match_reach_the_equilibrium():
    economy = commons_economy(n_followers=3)
    x = np.array([-1.0, 0.5, 0.2])
    learners = [DampedBestResponse(i) for i in range(3)]
    result = play_economy(economy, TAU, FixedIncentive(x), learners, iterations=80,
                          metrics_every=40)
    last = result.metrics[-1]
    assert last["nash_gap"] < 1e-8 and last["lower_level_gap"] == last["nash_gap"]
    # the followers' play is the equilibrium the metrics solve for (a gap of 1e-8 is quadratic
    # in the policies' distance, so values agree to about its square root)
    assert last["net_welfare"] == pytest.approx(last["equilibrium_net_welfare"], abs=1e-4)


def test_independent_soft_q_approaches_the_soft_best_response():
    economy = commons_economy()
    model, tau = economy.base, 0.5
    other = np.full((model.n_states, 3), 1 / 3)
    learner = IndependentSoftQ(0, IndependentSoftQConfig(batch=64, alpha=0.05))
    learner.reset(NoIncentives(economy, tau), np.random.default_rng(0))
    initial = np.abs(learner.policy - best_response(model, [other, other], 0, tau).pi).max()
    for _ in range(600):
        learner.see_others([learner.policy, other])
        learner.step(np.zeros(0))
    target = best_response(model, [learner.policy, other], 0, tau).pi
    error = np.abs(learner.policy - target).max()
    assert learner.samples == 600 * 64
    assert error < 0.06 < initial


def test_independent_soft_q_followers_play_near_the_equilibrium():
    """Each follower learns from its own samples only; together they end near the equilibrium
    (measured: Nash gap 0.17 at the start, about 0.005 after 600 steps; net welfare within
    0.01 of the equilibrium's)."""
    economy = commons_economy()
    learners = [IndependentSoftQ(i, IndependentSoftQConfig(alpha=0.05)) for i in range(2)]
    result = play_economy(economy, 0.5, FixedIncentive(np.array([-1.0, 0.5, 0.2])), learners,
                          iterations=600, metrics_every=300)
    first, last = result.metrics[0], result.metrics[-1]
    assert last["nash_gap"] < 0.03 < first["nash_gap"]
    assert last["net_welfare"] == pytest.approx(last["equilibrium_net_welfare"], abs=0.05)
    assert last["samples"] == 2 * 600 * 64


@pytest.mark.slow
@pytest.mark.parametrize("seed", [200, 201])
def test_pbrl_nash_raises_net_welfare_above_the_no_incentive_equilibrium(seed):
    economy = commons_instance(seed)
    learners = [DampedBestResponse(i) for i in range(economy.n_followers)]
    result = play_economy(economy, TAU, PBRLNashLeader(), learners, iterations=40, seed=seed,
                          metrics_every=40)
    first, last = result.metrics[0], result.metrics[-1]
    baseline = result.summary
    # measured (40 iterations): 1.41 -> 2.08 on seed 200, 1.48 -> 2.98 on seed 201; the first
    # step's incentive (the neutral split of the budget) is not what gets there
    assert last["equilibrium_net_welfare"] > baseline["baseline_net_welfare"] + 0.5
    assert last["equilibrium_net_welfare"] > first["equilibrium_net_welfare"] + 0.3
    # taxes are rebated, so this is welfare itself, net of the subsidies paid
    assert last["equilibrium_welfare"] > baseline["baseline_welfare"] + 0.5
    # the leader's penalized policies end close to an equilibrium (small NI penalty)
    assert last["ni_penalty"] < 0.1 * first["ni_penalty"]


def test_leader_settings_are_checked_by_name():
    with pytest.raises(ValueError, match="leader.penalty"):
        PBRLNashConfig(penalty=0.0)
    with pytest.raises(ValueError, match="leader.pi_steps"):
        PBRLNashConfig(pi_steps=0)
