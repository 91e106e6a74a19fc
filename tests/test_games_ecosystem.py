"""The games in the hands of the MARL tools: SuperSuit copies, Stable-Baselines3, RLlib.

supersuit and stable-baselines3 are in the ``dev`` extra; RLlib (``ray[rllib]``, which pins
another gymnasium and pulls pandas and pyarrow) is not, and its test is skipped without it.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import pytest

import games
from games import FOLLOWER, LEADER

supersuit = pytest.importorskip("supersuit", reason="supersuit is in the dev extra")

N_COPIES = 4
README = Path(__file__).resolve().parents[1] / "README.md"


def vectorized(env, n_copies: int = N_COPIES):
    """SuperSuit's usual recipe: one vector entry per agent, ``n_copies`` copies of the game."""
    markov = supersuit.pettingzoo_env_to_vec_env_v1(env)
    return supersuit.concat_vec_envs_v1(markov, n_copies, num_cpus=0, base_class="gymnasium")


def state_sequences(vec_env, n_states: int, rounds: int = 12) -> np.ndarray:
    """``(rounds, n_copies)`` state indices, read off the leaders' one-hot observations."""
    observations, _ = vec_env.reset()
    actions = np.zeros(vec_env.num_envs, dtype=np.int64)
    states = []
    for _ in range(rounds):
        observations, *_ = vec_env.step(actions)
        states.append(observations[0::2, :n_states].argmax(axis=1))  # rows: leader, follower
    return np.array(states)


def test_vectorized_copies_of_a_built_env_draw_independent_streams():
    S = 40
    env = games.make_env("stackelberg/random-markov-v0", n_states=S)
    states = state_sequences(vectorized(env), S)
    # with 40 states, 4 copies agreeing by chance at a given round has probability ~1e-5
    assert all(len(set(row)) > 1 for row in states), states
    assert len({tuple(column) for column in states.T}) == N_COPIES


def test_seeded_vectorized_copies_are_reproducible_and_distinct():
    S = 40

    def seeded_run() -> np.ndarray:
        vec_env = vectorized(games.make_env("stackelberg/random-markov-v0", n_states=S))
        vec_env.reset(seed=7)  # SuperSuit seeds copy i with 7 + i
        return state_sequences(vec_env, S)

    first = seeded_run()
    np.testing.assert_array_equal(first, seeded_run())
    assert len({tuple(column) for column in first.T}) == N_COPIES


@pytest.mark.parametrize(
    "wrapper",
    ["flatten_v0", "dtype_v0", "normalize_obs_v0", "pad_action_space_v0", "pad_observations_v0"],
)
@pytest.mark.parametrize("kind", ["parallel", "aec"])
def test_supersuit_observation_wrappers_take_the_one_hot_observations(wrapper, kind):
    """The wrappers that need ``Box`` observations run a whole episode, in their spaces."""
    wrap = getattr(supersuit, wrapper)
    if wrapper == "dtype_v0":
        wrap = functools.partial(wrap, dtype=np.float64)
    env = wrap(games.make_env("stackelberg/patrol-v0", kind=kind, max_cycles=3))
    seen = []
    if kind == "parallel":
        observations, _ = env.reset(seed=0)
        while env.agents:
            seen += [(agent, obs) for agent, obs in observations.items()]
            actions = {agent: env.action_space(agent).sample() for agent in env.agents}
            observations, *_ = env.step(actions)
    else:
        env.reset(seed=0)
        for agent in env.agent_iter():
            observation, _, terminated, truncated, _ = env.last()
            seen.append((agent, observation))
            env.step(None if terminated or truncated else env.action_space(agent).sample())
    assert len(seen) >= 6
    for agent, observation in seen:
        assert isinstance(observation, np.ndarray)
        assert env.observation_space(agent).contains(observation)


def readme_block(first_line: str) -> str:
    for block in re.findall(r"```python\n(.*?)```", README.read_text(), re.S):
        if block.startswith(first_line):
            return block
    raise AssertionError(f"README has no python block starting with {first_line!r}")


@pytest.mark.xdist_group("torch")  # the worker that imports torch for test_gradients
def test_the_readme_sb3_recipe_trains_independent_ppo_to_the_nash_outcome(
        tmp_path, monkeypatch):
    """The README's recipe as printed: 4096 PPO steps, one policy shared by both agents.

    In the textbook game row 0 strictly dominates for the leader, so simultaneous-move
    learners end at the Nash outcome (row 0, column 0: leader 2), not at the commitment value
    3.5 (README, "Using the games with other RL libraries"); the agent indicator in the
    observation lets the shared policy play each role.
    """
    pytest.importorskip("stable_baselines3", reason="stable-baselines3 is in the dev extra")
    import torch

    torch.set_num_threads(1)
    # stable-baselines3's logger makes a directory SB3-<date> in the system's temporary
    # directory unless SB3_LOGDIR names one; one per run of the suite piled up there
    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path / "sb3"))
    namespace: dict = {}
    exec(compile(readme_block("# independent PPO"), "README.md", "exec"), namespace)
    model = namespace["model"]
    probe = games.make_env("stackelberg/matrix-v0")
    observations, _ = probe.reset(seed=0)
    greedy = {agent: int(model.predict(observations[agent], deterministic=True)[0])
              for agent in (LEADER, FOLLOWER)}
    assert greedy == {LEADER: 0, FOLLOWER: 0}
    _, rewards, terminations, _, _ = probe.step(greedy)
    assert rewards[LEADER] == 2.0 and all(terminations.values())


@pytest.mark.parametrize("game_id", sorted(games.GAMES))
def test_rllib_parallel_pettingzoo_env_builds_and_steps(game_id):
    pettingzoo_env = pytest.importorskip(
        "ray.rllib.env.wrappers.pettingzoo_env",
        reason="ray[rllib] is not installed (it is not in the dev extra: it pins another "
        "gymnasium and pulls pandas and pyarrow); pip install 'ray[rllib]' to run this test",
    )
    env = pettingzoo_env.ParallelPettingZooEnv(games.make_env(game_id, max_cycles=5))
    model = games.make_model(game_id)
    observations, infos = env.reset(seed=0)
    rounds = 0
    while True:
        for agent, observation in observations.items():
            assert env.observation_space[agent].contains(observation)
        state = infos[LEADER]["state"]
        actions = {agent: env.action_space[agent].sample() for agent in observations}
        observations, rewards, terminateds, truncateds, infos = env.step(actions)
        rounds += 1
        b, a = actions[LEADER], actions[FOLLOWER]
        assert rewards[LEADER] == model.leader_rewards[state, b, a]
        assert rewards[FOLLOWER] == model.follower_rewards[state, b, a]
        if terminateds["__all__"] or truncateds["__all__"]:
            break
    assert rounds == (1 if model.gamma == 0 else 5)
