"""The environments' options and conventions: randomness per copy, episode ends, the discount,
one-hot observations and ``state()``, the commitment variant."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from pettingzoo.utils.conversions import aec_to_parallel

from games import (
    FOLLOWER,
    LEADER,
    StackelbergAECEnv,
    StackelbergCommitmentEnv,
    StackelbergParallelEnv,
    make_env,
    make_model,
    random_markov_game,
)
from stackelberg.model import GameModel


def state_trajectory(env: StackelbergParallelEnv, rounds: int = 30) -> list[int]:
    """States visited over ``rounds`` rounds (resets without a seed when an episode ends)."""
    _, infos = env.reset()
    states = [infos[LEADER]["state"]]
    for _ in range(rounds):
        if not env.agents:
            _, infos = env.reset()
        else:
            _, _, _, _, infos = env.step({LEADER: 0, FOLLOWER: 0})
        states.append(infos[LEADER]["state"])
    return states


# --- randomness ------------------------------------------------------------------------------


@pytest.mark.parametrize("duplicate", [copy.deepcopy, lambda env: pickle.loads(pickle.dumps(env))])
def test_copies_of_an_unseeded_env_draw_their_own_streams(duplicate):
    built = make_env("stackelberg/random-markov-v0", n_states=40)
    copies = [duplicate(built) for _ in range(4)]
    trajectories = [state_trajectory(env) for env in copies]
    assert len({tuple(t) for t in trajectories}) == 4
    state_trajectory(built)  # also after the original has drawn its generator from entropy
    later = [state_trajectory(duplicate(built)) for _ in range(2)]
    assert later[0] != later[1]


def test_a_copy_of_a_seeded_env_replays_its_stream():
    env = make_env("stackelberg/random-markov-v0", n_states=40)
    env.reset(seed=11)
    twin = copy.deepcopy(env)
    assert state_trajectory(env) == state_trajectory(twin)


def test_reset_without_seed_continues_the_stream_and_a_seed_restarts_it():
    env = make_env("stackelberg/random-markov-v0", n_states=40)
    env.reset(seed=3)
    first = state_trajectory(env)
    assert state_trajectory(env) != first
    env.reset(seed=3)
    assert state_trajectory(env) == first


# --- episode ends and the discount -----------------------------------------------------------


def test_a_one_shot_game_terminates_and_a_discounted_one_is_truncated():
    matrix = make_env("stackelberg/matrix-v0")
    matrix.reset(seed=0)
    _, _, terminations, truncations, _ = matrix.step({LEADER: 0, FOLLOWER: 1})
    assert terminations == {LEADER: True, FOLLOWER: True}
    assert truncations == {LEADER: False, FOLLOWER: False}
    patrol = make_env("stackelberg/patrol-v0", max_cycles=2)
    patrol.reset(seed=0)
    patrol.step({LEADER: 0, FOLLOWER: 1})
    _, _, terminations, truncations, _ = patrol.step({LEADER: 0, FOLLOWER: 1})
    assert not any(terminations.values()) and all(truncations.values())


def exact_values(model: GameModel, mu: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """``[leader, follower]`` discounted values of the stationary pair ``(mu, pi)``, from
    ``model.initial``: ``V = (I - gamma P_pi)^{-1} r_pi`` (policy evaluation, Bellman)."""
    P = np.einsum("sb,sa,sbat->st", mu, pi, model.transitions)
    values = []
    for rewards in (model.leader_rewards, model.follower_rewards):
        r = np.einsum("sb,sa,sba->s", mu, pi, rewards)
        V = np.linalg.solve(np.eye(model.n_states) - model.gamma * P, r)
        values.append(model.initial @ V)
    return np.array(values)


AGENT_COLUMNS = {LEADER: 0, FOLLOWER: 1}


def fixed_pair(model: GameModel, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mu = rng.dirichlet(np.ones(model.n_leader_actions), size=model.n_states)
    pi = rng.dirichlet(np.ones(model.n_follower_actions), size=model.n_states)
    return mu, pi


def undiscounted_returns(env, mu, pi, n_episodes: int, rng) -> np.ndarray:
    """``(n_episodes, 2)`` sums of the leader's and the follower's rewards, no discounting."""
    B, A = mu.shape[1], pi.shape[1]
    returns = np.zeros((n_episodes, 2))
    for episode in range(n_episodes):
        _, infos = env.reset()
        while env.agents:
            s = infos[LEADER]["state"]
            actions = {LEADER: rng.choice(B, p=mu[s]), FOLLOWER: rng.choice(A, p=pi[s])}
            _, rewards, _, _, infos = env.step(actions)
            returns[episode] += rewards[LEADER], rewards[FOLLOWER]
    return returns


@pytest.mark.parametrize(
    ("game_id", "params"),
    [
        ("stackelberg/random-markov-v0", {"seed": 4, "gamma": 0.8}),
        ("stackelberg/patrol-v0", {"gamma": 0.8}),
    ],
)
def test_termination_with_probability_one_minus_gamma_gives_the_discounted_value(game_id, params):
    """Done-means 3: the mean undiscounted return is the exact discounted value (3 SE)."""
    env = make_env(game_id, discount_as_termination=True, **params)
    env.reset(seed=123)
    mu, pi = fixed_pair(env.model, seed=9)
    returns = undiscounted_returns(env, mu, pi, 1500, np.random.default_rng(5))
    mean = returns.mean(axis=0)
    standard_error = returns.std(axis=0, ddof=1) / np.sqrt(len(returns))
    exact = exact_values(env.model, mu, pi)
    print(f"{game_id}: mean {mean}, exact {exact}, standard error {standard_error}")
    assert np.all(np.abs(mean - exact) <= 3 * standard_error), (mean, exact, standard_error)


def test_the_horizon_under_termination_is_a_safety_stop():
    env = make_env("stackelberg/random-markov-v0", discount_as_termination=True)
    assert env.max_cycles == 150  # ceil(15 / (1 - 0.9)): reached with probability < 4e-7
    env.reset(seed=0)
    lengths = []
    for _ in range(1000):
        env.reset()
        rounds = 0
        while env.agents:
            _, _, terminations, truncations, _ = env.step({LEADER: 0, FOLLOWER: 0})
            rounds += 1
        assert all(terminations.values()) and not any(truncations.values())
        lengths.append(rounds)
    # geometric lengths: mean 1 / (1 - gamma) = 10, standard deviation sqrt(gamma) / (1 - gamma)
    assert abs(np.mean(lengths) - 10.0) < 4 * np.sqrt(0.9) / 0.1 / np.sqrt(len(lengths))


# --- observations, state(), parallelizability ------------------------------------------------


def test_one_hot_observations_and_state_of_the_parallel_env():
    env = make_env("stackelberg/patrol-v0", max_cycles=4)
    observations, infos = env.reset(seed=1)
    S = env.model.n_states
    s = infos[LEADER]["state"]
    np.testing.assert_array_equal(observations[LEADER], np.r_[np.eye(S)[s], 1, 0])
    np.testing.assert_array_equal(observations[FOLLOWER], np.r_[np.eye(S)[s], 0, 1])
    assert observations[LEADER].dtype == np.float32
    env.step({LEADER: 0, FOLLOWER: 1})
    np.testing.assert_array_equal(env.state(), np.r_[np.eye(S)[env.state_index], 0.25])


def test_the_aec_follower_sees_the_leader_action_and_the_leader_is_told_apart():
    env = make_env("stackelberg/patrol-v0", kind="aec")
    env.reset(seed=2)
    S, B = env.model.n_states, env.model.n_leader_actions
    s = env.state_index
    np.testing.assert_array_equal(env.observe(LEADER), np.r_[np.eye(S)[s], np.zeros(B), 1, 0])
    env.step(3)
    np.testing.assert_array_equal(env.observe(FOLLOWER), np.r_[np.eye(S)[s], np.eye(B)[3], 0, 1])
    np.testing.assert_array_equal(env.state(), np.r_[np.eye(S)[s], np.eye(B)[3], 0.0])
    assert env.observation_space(LEADER) is env.observation_space(FOLLOWER)


def test_only_the_parallel_env_is_parallelizable():
    assert make_env("stackelberg/patrol-v0").metadata["is_parallelizable"]
    aec = make_env("stackelberg/patrol-v0", kind="aec")
    assert not aec.metadata["is_parallelizable"]
    with pytest.raises(AssertionError, match="is_parallelizable"):
        aec_to_parallel(aec)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="observation must be one of"):
        make_env("stackelberg/matrix-v0", observation="pixels")
    with pytest.raises(ValueError, match="discount_as_termination must be True or False"):
        make_env("stackelberg/matrix-v0", discount_as_termination="yes")
    with pytest.raises(ValueError, match="commitment .* needs kind='aec'"):
        make_env("stackelberg/matrix-v0", commitment=True)
    with pytest.raises(ValueError, match="observation must be 'onehot' in the commitment"):
        make_env("stackelberg/matrix-v0", kind="aec", commitment=True, observation="index")


def test_human_rendering_prints_the_round(capsys):
    env = make_env("stackelberg/patrol-v0", kind="aec", render_mode="human")
    env.reset(seed=0)
    env.step(2)
    assert "leader chose patrol site2" in capsys.readouterr().out


# --- the commitment variant ------------------------------------------------------------------


def test_the_follower_observes_the_normalized_commitment():
    env = make_env("stackelberg/matrix-v0", kind="aec", commitment=True)
    assert isinstance(env, StackelbergCommitmentEnv)
    env.reset(seed=0)
    env.step(np.array([0.2, 0.6], dtype=np.float32))
    np.testing.assert_allclose(env.observe(FOLLOWER), [1, 0.25, 0.75, 0, 1], rtol=1e-6)
    env.step(1)
    b = env.infos[LEADER]["leader_action"]
    assert env.rewards[LEADER] == env.model.leader_rewards[0, b, 1]
    env.reset()
    env.step(np.zeros(2, dtype=np.float32))  # all zeros: the uniform distribution
    np.testing.assert_allclose(env.observe(FOLLOWER)[1:3], [0.5, 0.5])
    env.reset()
    with pytest.raises(ValueError, match="non-negative weights"):
        env.step(np.array([-0.1, 1.0]))


def test_the_commitment_variant_samples_the_exact_model():
    """A leader committing to mu(s), a follower playing pi(s): the exact values of (mu, pi)."""
    model = random_markov_game(
        n_states=4, n_leader_actions=3, n_follower_actions=2, gamma=0.8, seed=8
    )
    env = StackelbergCommitmentEnv(model, discount_as_termination=True)
    env.reset(seed=31)
    mu, pi = fixed_pair(model, seed=2)
    rng = np.random.default_rng(6)
    returns = np.zeros((1500, 2))
    for episode in range(len(returns)):
        env.reset()
        for agent in env.agent_iter():
            _, reward, terminated, truncated, _ = env.last()
            returns[episode, AGENT_COLUMNS[agent]] += reward
            s = env.state_index
            if terminated or truncated:
                env.step(None)
            elif agent == LEADER:
                env.step(mu[s].astype(np.float32))
            else:
                env.step(rng.choice(2, p=pi[s]))
    mean = returns.mean(axis=0)
    standard_error = returns.std(axis=0, ddof=1) / np.sqrt(len(returns))
    exact = exact_values(model, mu, pi)
    assert np.all(np.abs(mean - exact) <= 3 * standard_error), (mean, exact, standard_error)


def test_the_game_model_is_unchanged_by_the_environment_options():
    reference = make_model("stackelberg/patrol-v0")
    for env in (
        StackelbergParallelEnv(reference, observation="index"),
        StackelbergAECEnv(reference, discount_as_termination=True),
        StackelbergCommitmentEnv(reference),
    ):
        assert env.model is reference
