"""HPGD's Four-Rooms (games/four_rooms.py, games/four_rooms_env.py; docs/theory.md §10): the
exact model against Monte-Carlo rollouts of the PettingZoo environment, the closed-form vjps
against torch autograd and finite differences, the environment's conformance."""

from __future__ import annotations

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test

from agents.registry import FOLLOWERS, LEADERS
from games.four_rooms import FOUR_ROOMS_MAP, four_rooms_problem, layout, move_probabilities
from games.four_rooms_entry import four_rooms_problem_for, make_four_rooms_env, play_four_rooms
from games.four_rooms_env import FourRoomsParallelEnv, four_rooms_aec_env, rollout_returns
from stackelberg.bilevel import BackupWeights
from stackelberg.coordinator import MatchConfig, run_match
from stackelberg.parameterizations import TorchParameterization, TorchRewardMap
from stackelberg.seeding import run_streams

# torch costs seconds of CPU to import: this module's tests import it (the fixture below) and
# share test_gradients' pytest-xdist worker, so that the other worker never pays for it
torch = None
pytestmark = pytest.mark.xdist_group("torch")


@pytest.fixture(autouse=True, scope="module")
def _import_torch():
    global torch
    import torch


@pytest.fixture(scope="module")
def problem():
    return four_rooms_problem(lam=0.003, beta=3.0)


def incentives(problem) -> dict[str, np.ndarray]:
    """Zero logits, random logits, and one strongly penalized corridor cell."""
    corridor = problem.grid.index[(6, 2)]
    focused = problem.initial_x()
    focused[0, corridor] = 6.0
    return {"zero": problem.initial_x(),
            "random": np.random.default_rng(7).normal(0.0, 2.0, problem.x_shape),
            "focused": focused}


def test_map_and_kernels_are_hpgds():
    grid = layout()
    assert len(grid.cells) == 104 and len(FOUR_ROOMS_MAP) == 13
    assert grid.n_states == 209
    table, environment = move_probabilities(0.33, "table"), move_probabilities(0.33, "environment")
    assert table[0, 0] == pytest.approx(1 - 0.44) and table[0, 1] == pytest.approx(0.44 / 3)
    assert environment[0, 0] == pytest.approx(0.67) and environment[0, 1] == pytest.approx(0.11)
    with pytest.raises(ValueError, match="slip_kernel"):
        move_probabilities(0.33, "other")
    with pytest.raises(ValueError, match="lam"):
        four_rooms_problem(lam=0.0)


def test_terminal_and_goal_values_are_those_of_an_ended_episode(problem):
    """The terminal state's soft value is 0 (an ended episode), a goal's is 1 + lam log 4 (its
    reward, and the entropy of the uniform policy there, as HPGD's soft value iteration)."""
    star = problem.best_response(problem.initial_x())
    assert star.V[problem.grid.terminal] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(star.V[problem.grid.goal_states], 1 + 0.003 * np.log(4), rtol=1e-12)


@pytest.mark.parametrize("name", ["zero", "random", "focused"])
def test_exact_objective_matches_rollouts_of_the_environment(problem, name):
    """Criterion 1: the exact values of a fixed incentive against the follower's best response
    agree with discounted returns of the 200-step episodic environment within 3 standard
    errors; the 200-step and the infinite-horizon values differ by far less."""
    x = incentives(problem)[name]
    pi = problem.best_response(x).pi
    returns = rollout_returns(FourRoomsParallelEnv(problem=problem), x, pi, 500, seed=11)
    planner, follower = problem.horizon_values(x, pi, 200)
    mean, se = returns.mean(axis=0), returns.std(axis=0, ddof=1) / np.sqrt(len(returns))
    assert abs(mean[0] - planner) < 3 * se[0]
    assert abs(mean[1] - follower) < 3 * se[1]
    assert abs(planner - problem.planner_value(x)) < 1e-3 < se[0]


def torch_twins(problem):
    """The incentive and the planner's reward written in torch (autograd's vjps)."""
    base = problem.incentive.base
    features = torch.as_tensor(np.array(problem.incentive.features))  # writable copies
    r0 = torch.as_tensor(np.array(base.r))
    target = torch.as_tensor(np.array(problem.reward.target))
    goal = torch.as_tensor(np.array(problem.reward.goal))

    def follower(x):
        incentive = -0.2 * torch.softmax(x[0], 0)[:-1]
        return None, r0 + (features @ incentive)[None, :, None]

    def planner(x):
        norm = (0.2 * torch.softmax(x[0], 0)[:-1]).sum()
        return (target - 3.0 * norm * goal)[:, None].repeat(1, 4)

    twin = TorchParameterization(follower, problem.x_shape, base.rho, base.gamma, (4,), P=base.P)
    return twin, TorchRewardMap(planner)


def test_vjps_match_torch_autograd_and_finite_differences(problem):
    rng = np.random.default_rng(3)
    twin, twin_reward = torch_twins(problem)
    x = rng.normal(0.0, 1.0, problem.x_shape)
    S = problem.grid.n_states
    dr, w = rng.normal(size=(1, S, 4)), rng.normal(size=(S, 4))
    ours = problem.incentive.vjp(x, None, dr)
    np.testing.assert_allclose(ours, twin.vjp(x, None, dr), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(twin.followers(x).r, problem.incentive.followers(x).r, atol=1e-14)
    np.testing.assert_allclose(problem.reward.vjp(x, w), twin_reward.vjp(x, w), rtol=1e-10,
                               atol=1e-13)
    np.testing.assert_allclose(problem.reward.rewards(x), twin_reward.rewards(x), atol=1e-14)
    # the factored vjp (no dP) is the dense one, and its mirror form lacks the factor p
    V = rng.normal(size=S)
    backup = problem.incentive.backup_vjp(x, BackupWeights(w, V, (0.7,)))
    np.testing.assert_allclose(backup, problem.incentive.vjp(x, None, 0.7 * w[None]), rtol=1e-12)
    mirror = problem.incentive.backup_vjp(x, BackupWeights(w, V, (0.7,)), mirror=True)
    np.testing.assert_allclose(problem.incentive.shares(x) * mirror[0], backup[0], rtol=1e-12)
    # central differences of <dr, r_x> and <w, u_x> along a random direction
    d, h = rng.normal(size=problem.x_shape), 1e-6
    fd_r = (np.sum(dr * problem.incentive.followers(x + h * d).r)
            - np.sum(dr * problem.incentive.followers(x - h * d).r)) / (2 * h)
    fd_u = (np.sum(w * problem.reward.rewards(x + h * d))
            - np.sum(w * problem.reward.rewards(x - h * d))) / (2 * h)
    assert np.sum(ours * d) == pytest.approx(fd_r, rel=1e-7)
    assert np.sum(problem.reward.vjp(x, w) * d) == pytest.approx(fd_u, rel=1e-7)


def test_hypergradient_matches_finite_differences_of_the_objective(problem):
    rng = np.random.default_rng(5)
    x = rng.normal(0.0, 1.0, problem.x_shape)
    grad = problem.hypergradient(x).grad
    for _ in range(2):
        d, h = rng.normal(size=problem.x_shape), 1e-5
        fd = (problem.hyper_objective(x + h * d) - problem.hyper_objective(x - h * d)) / (2 * h)
        assert np.sum(grad * d) == pytest.approx(fd, rel=1e-5, abs=1e-9)


def test_environments_pass_pettingzoo_api_tests():
    parallel_api_test(FourRoomsParallelEnv(max_steps=50), num_cycles=200)
    api_test(four_rooms_aec_env(max_steps=50), num_cycles=200)


def test_episode_ends_at_the_goal_or_the_step_limit(problem):
    env = FourRoomsParallelEnv(problem=problem, max_steps=3)
    _, infos = env.reset(seed=0)
    assert infos["follower_0"]["state"] in [problem.grid.state(g, (4, 1)) for g in range(2)]
    steps = 0
    while env.agents:
        _, _, terminated, truncated, _ = env.step({"planner_0": np.zeros(105), "follower_0": 0})
        steps += 1
    assert steps == 3 and truncated["follower_0"] and not terminated["follower_0"]


def test_an_exact_leader_runs_on_the_problem(problem):
    """The registry's hypergradient leader (one start, fixed tau) improves the objective."""
    spec, follower = LEADERS["hypergradient"], FOLLOWERS["best-response"]
    leader = spec.factory(spec.make_config(starts=1, tau_ratio=1.0))
    result = run_match(problem, leader, [follower.factory(follower.make_config())],
                       MatchConfig(iterations=10, progress=False), run_streams(0))
    start = problem.hyper_objective(problem.initial_x())
    assert result.summary["hyper_objective"] < start - 0.05


def test_sampled_game_mixes_to_the_exact_rewards_and_feeds_a_sampled_leader():
    """The shared-commitment game of games/four_rooms_sampled.py, mixed by softmax(w), is the
    exact problem's follower and planner rewards; a sample-based leader runs on it."""
    problem = four_rooms_problem_for("rac", "soft-q", lam=0.005, beta=5.0)
    x = np.random.default_rng(2).normal(0.0, 1.0, problem.x_shape)
    mu = problem.leader_policy(x)
    game = problem.model
    np.testing.assert_allclose(np.einsum("sb,sba->sa", mu, game.follower_rewards),
                               problem.follower_mdp(x).r, atol=1e-15)
    np.testing.assert_allclose(np.einsum("sb,sba->sa", mu, game.leader_rewards),
                               problem.reward.rewards(x), atol=1e-15)
    assert game.leader_independent_transitions
    match = play_four_rooms("rac", "soft-q", 0, 5, {"tau_decay": 0.0}, lam=0.005, beta=5.0)
    assert match.samples > 0 and len(match.curve) == 5
    assert abs(match.horizon_gap) < 1e-3
    assert four_rooms_problem_for("hypergradient", "best-response").model is None
    assert isinstance(make_four_rooms_env("parallel"), FourRoomsParallelEnv)
    with pytest.raises(ValueError, match="kind"):
        make_four_rooms_env("other")


def test_the_shipped_config_runs_through_the_registry(tmp_path, cli):
    """`stackelberg run configs/four_rooms.toml` (registry entry stackelberg/four-rooms-v0,
    [follower] tau = lambda): the leader's value is HPGD's measure, -Phi at tau = lambda, and a
    few hypergradient steps raise it above the uniform incentive's."""
    import json
    from pathlib import Path

    from games.four_rooms import four_rooms_problem

    config = Path(__file__).resolve().parents[1] / "configs" / "four_rooms.toml"
    done = cli("run", str(config), "--out", str(tmp_path / "run"), "run.iterations=5",
               "run.progress=false", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    uniform = four_rooms_problem(lam=0.001, beta=1.0)
    assert summary["leader_value"] == -summary["hyper_objective"]
    assert summary["leader_value"] > -uniform.hyper_objective(uniform.initial_x()) + 0.05
