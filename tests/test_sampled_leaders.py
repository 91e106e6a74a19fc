"""The sample-based leaders (issue 3): pbrl-value-sampled, partial-gradient-sampled, zeroth-order.

Unbiasedness: the mean of many independent estimates is compared with the exact closed form
(:class:`stackelberg.problem.JointEvaluation`), in standard errors computed from the estimates
themselves; each test also checks that it has the power to see a small error.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest

import agents.followers.soft_q
import agents.leaders.score_function
import agents.leaders.zeroth_order
import games
from agents.leaders.score_function import StateBaseline, policy_gradient_estimate
from agents.leaders.zeroth_order import (
    ZerothOrderConfig,
    ZerothOrderLeader,
    sphere_direction,
    two_point_estimate,
)
from agents.registry import FOLLOWERS, LEADERS
from stackelberg.coordinator import MatchConfig, run_match
from stackelberg.problem import StackelbergProblem
from stackelberg.sampling import sample_episodes
from stackelberg.seeding import run_streams
from stackelberg.tabular import softmax

#: Allowed deviation of a mean from its exact value, in standard errors.
SIGMAS = 4.0
SAMPLED_LEADERS = ("pbrl-value-sampled", "partial-gradient-sampled", "zeroth-order")


def small_problem(variant: str = "general", tau: float = 0.3) -> StackelbergProblem:
    """4 states, 2 x 2 actions, gamma 0.8. ``general``: transitions depend on the leader's
    action, one commitment per state; ``shared``: the same with one commitment shared by all
    states; ``shared-3``: that with 3 leader actions; ``rewards-only``: transitions independent
    of the leader's action."""
    model = games.random_markov_game(n_states=4, n_follower_actions=2, gamma=0.8, seed=7,
                                     n_leader_actions=3 if variant == "shared-3" else 2)
    if variant.startswith("shared"):
        model = dataclasses.replace(model, shared_commitment=True)
    elif variant == "rewards-only":
        P = np.repeat(model.transitions[:, :1], model.n_leader_actions, axis=1)
        model = dataclasses.replace(model, transitions=P)
    return StackelbergProblem(model, tau)


def z_scores(samples: np.ndarray, exact: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mean - exact) / SE`` entrywise, and the standard errors, over the leading axis."""
    se = samples.std(axis=0, ddof=1) / np.sqrt(len(samples))
    return (samples.mean(axis=0) - exact) / se, se


# --- unbiasedness of the score-function estimates ---------------------------------------------


@pytest.mark.parametrize("x_estimator", ["reward", "score"])
@pytest.mark.parametrize("variant", ["general", "shared-3", "rewards-only"])
def test_policy_gradient_estimates_are_unbiased(variant, x_estimator):
    problem = small_problem(variant)
    rng = np.random.default_rng(0)
    x = 0.5 * rng.normal(size=problem.x_shape)
    pi = softmax(rng.normal(size=problem.policy_shape), axis=1)
    baseline = StateBaseline(problem.model.n_states, rate=0.0)  # fixed: stays as drawn
    baseline.values[:] = rng.uniform(0.0, 3.0, size=baseline.values.shape)
    episodes = sample_episodes(problem.model, problem.leader_policy(x), pi, 30_000, rng,
                               continuation=problem.model.gamma**0.5)
    estimate = policy_gradient_estimate(problem, x, pi, episodes, per_episode=True,
                                        baseline=baseline, x_estimator=x_estimator)
    ev = problem.evaluate(x, pi)
    exact_f, exact_v = ev.grad_upper_objective(), ev.grad_follower_value()
    checks = {
        "f": (estimate.upper_objective, ev.upper_objective),
        "V": (estimate.follower_value, ev.follower_value),
        "grad_x f": (estimate.grad_upper_objective.x, exact_f.x),
        "grad_theta f": (estimate.grad_upper_objective.theta, exact_f.theta),
        "grad_x V": (estimate.grad_follower_value.x, exact_v.x),
        "grad_theta V": (estimate.grad_follower_value.theta, exact_v.theta),
    }
    worst = {}
    for name, (samples, exact) in checks.items():
        z, se = z_scores(samples, exact)
        worst[name] = float(np.abs(z).max())
        # power: an error of half the largest entry would show as 4 standard errors
        assert 0.5 * np.abs(exact).max() > SIGMAS * se.max(), (name, se.max())
    assert max(worst.values()) < SIGMAS, worst


def test_reward_form_has_less_variance_when_transitions_ignore_the_leader():
    problem = small_problem("rewards-only")
    rng = np.random.default_rng(1)
    x = rng.normal(size=problem.x_shape)
    pi = softmax(rng.normal(size=problem.policy_shape), axis=1)
    spread = {}
    for x_estimator in ("reward", "score"):
        episodes = sample_episodes(problem.model, problem.leader_policy(x), pi, 5000,
                                   np.random.default_rng(2))
        estimate = policy_gradient_estimate(problem, x, pi, episodes, per_episode=True,
                                            x_estimator=x_estimator)
        spread[x_estimator] = estimate.grad_upper_objective.x.std(axis=0).max()
    assert spread["reward"] < 0.3 * spread["score"], spread


# --- zeroth order ------------------------------------------------------------------------------


def circle_average(function, x: np.ndarray, radius: float, n: int = 256) -> np.ndarray:
    """The exact mean of the two-point estimate of ``function`` over directions ``u`` uniform on
    the unit circle (``x`` has 2 entries): the trapezoidal rule, spectrally accurate for the
    smooth periodic integrand."""
    angles = 2 * np.pi * np.arange(n) / n
    directions = np.stack([np.cos(angles), np.sin(angles)], axis=1).reshape(n, *x.shape)
    return np.mean([two_point_estimate(function, x, radius, u) for u in directions], axis=0)


@pytest.fixture
def circle_problem():
    """Two leader actions and one shared commitment: ``x`` lives in R^2 (a circle of
    directions, whose average has an exact quadrature)."""
    model = games.random_markov_game(n_states=3, n_leader_actions=2, n_follower_actions=2,
                                     gamma=0.8, seed=1)
    return StackelbergProblem(dataclasses.replace(model, shared_commitment=True), tau=0.3)


@pytest.mark.slow
def test_two_point_estimate_with_sampled_evaluations_is_unbiased(circle_problem):
    """Sampled ``Phi_hat`` (episodes against the exact best response to each probe): the mean
    estimate matches the exact gradient of the ball-smoothed ``Phi``, which is within
    ``O(radius**2)`` of the exact hypergradient."""
    problem, radius = circle_problem, 0.2
    x = np.array([[-0.3, 0.2]])
    model = problem.model

    def sampled_phi(z: np.ndarray, seed: int) -> float:
        episodes = sample_episodes(model, problem.leader_policy(z), problem.best_response(z).pi,
                                   20, np.random.default_rng(seed))
        return -episodes.returns(episodes.transitions.leader_rewards).mean()

    rng = np.random.default_rng(3)
    estimates = []
    for _ in range(1500):
        u = sphere_direction(x.shape, rng)
        seed = int(rng.integers(2**63))  # common random numbers for the pair
        estimates.append(two_point_estimate(functools.partial(sampled_phi, seed=seed), x,
                                            radius, u))
    smoothed = circle_average(problem.hyper_objective, x, radius)
    z, se = z_scores(np.array(estimates), smoothed)
    assert np.abs(z).max() < SIGMAS, z
    exact = problem.hypergradient(x).grad
    assert 0.25 * np.abs(exact).max() > SIGMAS * se.max()  # power: a 25% error would show
    # the smoothing bias is O(radius**2): small next to the gradient at radius 0.2
    assert np.abs(smoothed - exact).max() < 0.05 * np.abs(exact).max()


@pytest.mark.slow
def test_zeroth_order_leader_against_the_follower_estimates_the_smoothed_partial_gradient(
        circle_problem):
    """``response = "follower"``: the leader's own estimate (its sampled objective, common
    random numbers) has the mean of the two-point estimate of ``f(., pihat)``."""
    problem, radius = circle_problem, 0.2
    pihat = softmax(np.random.default_rng(4).normal(size=problem.policy_shape), axis=1)
    leader = ZerothOrderLeader(ZerothOrderConfig(radius=radius, directions=1, episodes=20,
                                                 response="follower"))
    leader.reset(problem, np.random.default_rng(5))
    estimates = np.array([leader.direction(pihat) for _ in range(1500)])
    smoothed = circle_average(lambda z: problem.evaluate(z, pihat).upper_objective, leader.x,
                              radius)
    z, se = z_scores(estimates, smoothed)
    assert np.abs(z).max() < SIGMAS, z
    assert 0.25 * np.abs(smoothed).max() > SIGMAS * se.max()


# --- runs: determinism, sample counts, improvement ---------------------------------------------


def play(problem, leader: str, follower: str, iterations: int, seed: int, **params):
    spec, follower_spec = LEADERS[leader], FOLLOWERS[follower]
    return run_match(problem, spec.factory(spec.make_config(**params)),
                     [follower_spec.factory(follower_spec.make_config())],
                     MatchConfig(iterations=iterations, progress=False), run_streams(seed))


@pytest.mark.parametrize("leader", SAMPLED_LEADERS)
def test_same_seed_same_trajectory(leader):
    problem = small_problem()
    first, again, other = (play(problem, leader, "soft-q", 15, seed) for seed in (1, 1, 2))
    assert [row["hyper_objective"] for row in first.metrics] == \
        [row["hyper_objective"] for row in again.metrics]
    np.testing.assert_array_equal(first.x, again.x)
    assert not np.array_equal(first.x, other.x)


@pytest.mark.parametrize("leader", SAMPLED_LEADERS)
def test_samples_counted_are_the_samples_drawn(leader, monkeypatch):
    """Every transition drawn through the sampling functions the leaders use is counted."""
    drawn = []

    def counting(function, size):
        def wrapper(*args, **kwargs):
            result = function(*args, **kwargs)
            drawn.append(size(result))
            return result
        return wrapper

    for module in (agents.leaders.score_function, agents.leaders.zeroth_order):
        monkeypatch.setattr(module, "sample_episodes",
                            counting(sample_episodes, lambda batch: batch.n_transitions))
    monkeypatch.setattr(agents.followers.soft_q, "sample_transitions",
                        counting(agents.followers.soft_q.sample_transitions, len))
    problem = small_problem()
    spec = LEADERS[leader]
    params = {"oracle_steps": 2} if leader == "pbrl-value-sampled" else {}
    agent = spec.factory(spec.make_config(**params))
    agent.reset(problem, np.random.default_rng(0))
    pihat = problem.best_response(problem.initial_x()).pi
    for _ in range(3):
        agent.step([pihat])
    assert len(drawn) >= 3 and agent.samples == sum(drawn) > 0


@pytest.mark.parametrize(("leader", "follower"), [
    ("pbrl-value-sampled", "soft-q"),
    ("pbrl-value-sampled", "best-response"),
    ("partial-gradient-sampled", "soft-q"),
    ("zeroth-order", "soft-q"),
    ("zeroth-order", "best-response"),
])
def test_sampled_leaders_decrease_the_hyper_objective(leader, follower):
    """A short run from the uniform commitment lowers the exact ``Phi`` by at least a third
    of what the exact hypergradient leader gains in as many iterations (could fail: a biased or
    noisy estimate, a wrong sign, a step that diverges)."""
    problem = small_problem(tau=0.2)
    start = problem.hyper_objective(problem.initial_x())
    reference = play(problem, "hypergradient", "best-response", 40, 0, alpha=0.5)
    gain = start - reference.summary["hyper_objective"]
    result = play(problem, leader, follower, 40, 0)
    assert gain > 0.05
    assert start - result.summary["hyper_objective"] > gain / 3, (start, result.summary)
