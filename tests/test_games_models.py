"""Game builders, model validation, environment/model agreement and the game registry."""

from __future__ import annotations

import dataclasses
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from games import (
    FOLLOWER,
    GAMES,
    LEADER,
    StackelbergAECEnv,
    StackelbergParallelEnv,
    default_max_cycles,
    make_env,
    make_model,
    matrix_game,
    patrol_game,
    random_markov_game,
)
from stackelberg.model import GameModel, ModelError

#: Allowed deviation of an empirical frequency from its probability, in standard errors. For a
#: binomial proportion over n >= 1000 draws the normal approximation is good, and a 5-sigma
#: deviation has probability ~6e-7 per entry, negligible over the few dozen entries checked.
SIGMAS = 5.0


def assert_frequencies_match(counts: np.ndarray, probabilities: np.ndarray) -> None:
    """Check empirical next-state counts against the model's row, entry by entry, within 5 SE."""
    n = counts.sum()
    frequencies = counts / n
    standard_errors = np.sqrt(probabilities * (1 - probabilities) / n)
    deviations = np.abs(frequencies - probabilities)
    assert np.all(deviations <= SIGMAS * standard_errors + 1e-12), (
        f"frequencies {frequencies} vs probabilities {probabilities} "
        f"(n = {n}, standard errors {standard_errors})"
    )


# --- builders -------------------------------------------------------------------------------


def test_matrix_game_default_is_the_textbook_commitment_game():
    model = make_model("stackelberg/matrix-v0")
    assert model.transitions.shape == (1, 2, 2, 1)
    assert model.is_matrix_game
    np.testing.assert_array_equal(model.leader_rewards[0], [[2, 4], [1, 3]])
    np.testing.assert_array_equal(model.follower_rewards[0], [[1, 0], [0, 1]])
    np.testing.assert_array_equal(model.initial, [1.0])


def test_matrix_game_shapes_follow_rows_and_columns():
    model = matrix_game([[1, 2, 3], [4, 5, 6]], [[0, 0, 0], [1, 1, 1]])
    assert (model.n_states, model.n_leader_actions, model.n_follower_actions) == (1, 2, 3)
    assert model.leader_rewards[0, 1, 2] == 6
    assert np.all(model.transitions == 1.0)


@pytest.mark.parametrize(
    ("leader", "follower", "message"),
    [
        (
            [[1, 2], [3, 4]],
            [[1, 2, 3], [4, 5, 6]],
            r"leader_payoffs has shape \(2, 2\) but "
            r"follower_payoffs has shape \(2, 3\)",
        ),
        ([1, 2], [1, 2], r"leader_payoffs must be a non-empty 2-D matrix.*shape \(2,\)"),
        ([[1, 2]], [[[1, 2]]], r"follower_payoffs must be a non-empty 2-D matrix"),
        ([[1, 2], [3]], [[1, 2], [3, 4]], r"leader_payoffs must be a 2-D numeric matrix"),
        ([[1, float("nan")]], [[1, 2]], r"leader_payoffs\[0, 1\] is nan"),
    ],
)
def test_matrix_game_rejects_bad_matrices(leader, follower, message):
    with pytest.raises(ValueError, match=message):
        matrix_game(leader, follower)


def test_random_markov_game_shapes_and_ranges():
    model = random_markov_game(n_states=3, n_leader_actions=2, n_follower_actions=4, gamma=0.5)
    assert model.transitions.shape == (3, 2, 4, 3)
    assert model.leader_rewards.shape == model.follower_rewards.shape == (3, 2, 4)
    assert model.gamma == 0.5
    np.testing.assert_allclose(model.initial, np.full(3, 1 / 3))
    for rewards in (model.leader_rewards, model.follower_rewards):
        assert rewards.min() >= 0 and rewards.max() <= 1


def test_random_markov_game_is_deterministic_in_seed_and_differs_across_seeds():
    first, again, other = (random_markov_game(seed=s) for s in (11, 11, 12))
    for name in ("transitions", "leader_rewards", "follower_rewards"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
        assert not np.allclose(getattr(first, name), getattr(other, name))


@settings(max_examples=25, deadline=None)
@given(
    n_states=st.integers(1, 4),
    n_leader_actions=st.integers(1, 3),
    n_follower_actions=st.integers(1, 3),
    gamma=st.floats(0, 0.99),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_markov_game_is_always_a_valid_model(
    n_states, n_leader_actions, n_follower_actions, gamma, seed
):
    model = random_markov_game(n_states, n_leader_actions, n_follower_actions, gamma, seed)
    assert model.transitions.shape == (n_states, n_leader_actions, n_follower_actions, n_states)
    np.testing.assert_allclose(model.transitions.sum(axis=-1), 1.0)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_states": 0}, "n_states must be a positive integer, got 0"),
        ({"n_leader_actions": 1.5}, "n_leader_actions must be a positive integer, got 1.5"),
        ({"n_follower_actions": True}, "n_follower_actions must be a positive integer"),
        ({"gamma": 1.0}, r"gamma must be a discount factor in \[0, 1\), got 1.0"),
        ({"seed": -1}, "seed must be a non-negative integer, got -1"),
    ],
)
def test_random_markov_game_rejects_bad_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        random_markov_game(**params)


def test_patrol_game_default_sizes_and_names():
    model = patrol_game()
    assert model.transitions.shape == (4, 4, 3, 4)
    assert model.follower_action_names == ("attack", "move to neighbour 0", "move to neighbour 1")
    np.testing.assert_allclose(model.initial, np.full(4, 0.25))
    assert model.gamma == 0.9


def test_patrol_game_payoffs_tell_the_story():
    values = [1.0, 0.5, 0.8, 0.3]
    model = patrol_game(site_values=values, catch_penalty=2.0, catch_reward=0.7, slip=0.25)
    restart = np.full(4, 0.25)
    attack, move0, move1 = 0, 1, 2
    for s in range(4):
        # attack on the patrolled site: caught
        assert model.follower_rewards[s, s, attack] == -2.0
        assert model.leader_rewards[s, s, attack] == 0.7
        np.testing.assert_allclose(model.transitions[s, s, attack], restart)
        # attack elsewhere: succeeds, both sides see the site value
        other = (s + 2) % 4
        assert model.follower_rewards[s, other, attack] == values[s]
        assert model.leader_rewards[s, other, attack] == -values[s]
    # site 0 of the 4-cycle has neighbours [1, 3]: move0 -> site 1, move1 -> site 3
    np.testing.assert_allclose(model.transitions[0, 2, move0], [0.25, 0.75, 0, 0])
    np.testing.assert_allclose(model.transitions[0, 2, move1], [0.25, 0, 0, 0.75])
    assert model.follower_rewards[0, 2, move0] == 0 == model.leader_rewards[0, 2, move0]
    # moving into the patrolled site: caught on the way
    assert model.follower_rewards[0, 3, move1] == -2.0
    np.testing.assert_allclose(model.transitions[0, 3, move1], restart)


def test_patrol_game_on_a_path_graph_treats_missing_neighbours_as_stay():
    model = patrol_game(site_values=[1.0, 2.0, 3.0], edges=[(0, 1), (1, 2)], slip=0.0)
    assert model.transitions.shape == (3, 3, 3, 3)  # site 1 has two neighbours
    np.testing.assert_array_equal(model.transitions[0, 1, 2], [1, 0, 0])  # site 0 has one
    assert model.follower_rewards[0, 1, 2] == 0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"site_values": [1.0]}, "site_values must list at least 2 site values"),
        ({"site_values": [1.0, -0.5]}, "site_values must be non-negative"),
        ({"site_values": [1.0, float("inf")]}, r"site_values\[1\] is inf"),
        ({"slip": 1.5}, r"slip must be a probability in \[0, 1\], got 1.5"),
        ({"catch_penalty": -1}, "catch_penalty must be a finite non-negative number, got -1"),
        ({"catch_reward": float("nan")}, "catch_reward must be a finite non-negative number"),
        ({"gamma": -0.1}, r"gamma must be a discount factor in \[0, 1\)"),
        ({"edges": [(0, 0)]}, r"edges must be pairs of distinct site indices in 0\.\.3"),
        ({"edges": [(0, 4)]}, r"edges must be pairs of distinct site indices"),
        ({"edges": [(0, 1), (2, 3)]}, "edges must connect all 4 sites"),
    ],
)
def test_patrol_game_rejects_bad_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        patrol_game(**params)


# --- GameModel validation -------------------------------------------------------------------


@pytest.fixture
def arrays() -> dict:
    model = random_markov_game(n_states=3, n_leader_actions=2, n_follower_actions=2, seed=1)
    return {
        "transitions": model.transitions.copy(),
        "leader_rewards": model.leader_rewards.copy(),
        "follower_rewards": model.follower_rewards.copy(),
        "initial": model.initial.copy(),
        "gamma": model.gamma,
    }


def test_model_rejects_a_transition_row_not_summing_to_one(arrays):
    arrays["transitions"][1, 0, 1] = [0.25, 0.25, 0.0]
    with pytest.raises(ModelError, match=r"transitions\[1, 0, 1\] sums to 0\.5"):
        GameModel(**arrays)


def test_model_rejects_a_negative_probability(arrays):
    arrays["transitions"][0, 1, 0] = [-0.25, 0.75, 0.5]
    with pytest.raises(
        ModelError, match=r"transitions\[0, 1, 0, 0\] = .*-0\.25.* negative probability"
    ):
        GameModel(**arrays)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("follower_rewards", np.nan, r"follower_rewards\[2, 1, 0\] is nan"),
        ("leader_rewards", np.inf, r"leader_rewards\[2, 1, 0\] is inf"),
        ("leader_rewards", -np.inf, r"leader_rewards\[2, 1, 0\] is -inf"),
    ],
)
def test_model_rejects_non_finite_rewards(arrays, name, value, message):
    arrays[name][2, 1, 0] = value
    with pytest.raises(ModelError, match=message):
        GameModel(**arrays)


@pytest.mark.parametrize(
    ("name", "shape", "message"),
    [
        ("leader_rewards", (3, 2, 3), r"leader_rewards must have shape \(S, B, A\) = \(3, 2, 2\)"),
        ("follower_rewards", (2, 2, 2), r"follower_rewards must have shape"),
        ("transitions", (3, 2, 2, 4), r"transitions must have shape \(S, B, A, S\)"),
        ("transitions", (3, 2, 2), r"transitions must have 4 dimensions"),
        ("initial", (4,), r"initial must have shape \(3,\)"),
    ],
)
def test_model_rejects_shape_mismatches(arrays, name, shape, message):
    arrays[name] = np.full(shape, 1.0 / shape[-1])
    with pytest.raises(ModelError, match=message):
        GameModel(**arrays)


@pytest.mark.parametrize("gamma", [1.0, -0.1, 1.5])
def test_model_rejects_gamma_outside_zero_one(arrays, gamma):
    arrays["gamma"] = gamma
    with pytest.raises(ModelError, match=rf"gamma must be in \[0, 1\), got {gamma}"):
        GameModel(**arrays)


# --- environments agree with the model -------------------------------------------------------


@pytest.fixture
def small_game() -> GameModel:
    return random_markov_game(n_states=3, n_leader_actions=2, n_follower_actions=2, seed=5)


def test_parallel_env_samples_next_states_from_the_model(small_game):
    s, b, a = 2, 1, 0
    start_in_s = dataclasses.replace(small_game, initial=np.eye(small_game.n_states)[s])
    env = StackelbergParallelEnv(start_in_s, max_cycles=1, observation="index")
    env.reset(seed=2024)
    n = 20_000
    counts = np.zeros(small_game.n_states)
    for _ in range(n):
        observations, _ = env.reset()  # the generator stream continues: no reseeding
        assert observations == {LEADER: s, FOLLOWER: s}
        observations, rewards, terminations, truncations, infos = env.step({LEADER: b, FOLLOWER: a})
        assert rewards[LEADER] == small_game.leader_rewards[s, b, a]
        assert rewards[FOLLOWER] == small_game.follower_rewards[s, b, a]
        assert truncations == {LEADER: True, FOLLOWER: True} and not any(terminations.values())
        assert infos[LEADER]["state"] == observations[LEADER]
        counts[observations[LEADER]] += 1
    assert_frequencies_match(counts, small_game.transitions[s, b, a])


def test_aec_env_transitions_and_rewards_match_the_model(small_game):
    """Empirical next-state frequencies of every (s, b, a) along one long AEC trajectory."""
    rounds = 12_000
    env = StackelbergAECEnv(small_game, max_cycles=rounds, observation="index")
    env.reset(seed=7)
    policy = np.random.default_rng(0)
    S, B, A = small_game.transitions.shape[:3]
    counts = np.zeros((S, B, A, S))
    for _ in range(rounds):
        state = int(env.observe(LEADER))
        # plain comparisons: np.testing's took half of this test's 12000 rounds
        assert env.observe(FOLLOWER).tolist() == [state, B]  # leader not moved yet
        b, a = int(policy.integers(B)), int(policy.integers(A))
        env.step(b)
        assert env.observe(FOLLOWER).tolist() == [state, b]  # follower sees b
        assert env.rewards == {LEADER: 0.0, FOLLOWER: 0.0}
        env.step(a)
        assert env.rewards[LEADER] == small_game.leader_rewards[state, b, a]
        assert env.rewards[FOLLOWER] == small_game.follower_rewards[state, b, a]
        counts[state, b, a, env.state_index] += 1
    assert all(env.truncations.values())
    visits = counts.sum(axis=-1)
    assert visits.min() >= 500, visits
    for index in np.ndindex(S, B, A):
        assert_frequencies_match(counts[index], small_game.transitions[index])


def test_aec_last_returns_the_rewards_of_the_completed_round(small_game):
    env = StackelbergAECEnv(small_game)
    env.reset(seed=3)
    state = env.state_index
    env.step(1)
    env.step(0)
    assert env.agent_selection == LEADER
    _, leader_reward, *_ = env.last()
    assert leader_reward == small_game.leader_rewards[state, 1, 0]


def test_initial_states_follow_the_initial_distribution():
    model = patrol_game(site_values=[1.0, 0.5, 0.2])
    skewed = dataclasses.replace(model, initial=[0.6, 0.3, 0.1])
    env = StackelbergParallelEnv(skewed, observation="index")
    env.reset(seed=0)
    n = 10_000
    counts = np.bincount([env.reset()[0][LEADER] for _ in range(n)], minlength=3)
    assert_frequencies_match(counts, skewed.initial)


@pytest.mark.parametrize("env_class", [StackelbergParallelEnv, StackelbergAECEnv])
def test_same_seed_same_trajectory(env_class, small_game):
    def trajectory(seed: int) -> list[int]:
        env = env_class(small_game, max_cycles=40)
        env.reset(seed=seed)
        states = []
        for step in range(40):
            if env_class is StackelbergParallelEnv:
                env.step({LEADER: step % 2, FOLLOWER: (step // 2) % 2})
            else:
                env.step(step % 2)
                env.step((step // 2) % 2)
            states.append(env.state_index)
        return states

    assert trajectory(1) == trajectory(1)
    assert trajectory(1) != trajectory(2)


@pytest.mark.parametrize(
    ("game_id", "params", "expected"),
    [
        ("stackelberg/matrix-v0", {}, 1),
        ("stackelberg/random-markov-v0", {"gamma": 0.9}, 50),
        ("stackelberg/random-markov-v0", {"gamma": 0.5}, 10),
    ],
)
def test_default_episode_length(game_id, params, expected):
    env = make_env(game_id, **params)
    assert env.max_cycles == default_max_cycles(env.model.gamma) == expected
    env.reset(seed=0)
    steps = 0
    while env.agents:
        env.step({LEADER: 0, FOLLOWER: 0})
        steps += 1
    assert steps == expected


def test_envs_reject_invalid_actions_and_steps_before_reset(small_game):
    parallel = StackelbergParallelEnv(small_game)
    with pytest.raises(RuntimeError, match="reset"):
        parallel.step({LEADER: 0, FOLLOWER: 0})
    parallel.reset(seed=0)
    with pytest.raises(ValueError, match="invalid action for follower_0: 2"):
        parallel.step({LEADER: 0, FOLLOWER: 2})
    with pytest.raises(ValueError, match=r"missing \['follower_0'\]"):
        parallel.step({LEADER: 0})
    aec = StackelbergAECEnv(small_game)
    aec.reset(seed=0)
    with pytest.raises(ValueError, match="invalid action for leader_0"):
        aec.step(None)


def test_ansi_render_describes_the_round():
    env = make_env("stackelberg/patrol-v0", kind="aec", render_mode="ansi")
    env.reset(seed=0)
    env.step(2)
    assert "leader chose patrol site2" in env.render()
    env.step(0)
    assert "follower attack" in env.render()
    with pytest.raises(ValueError, match="render_mode"):
        make_env("stackelberg/patrol-v0", render_mode="video")


# --- registry -------------------------------------------------------------------------------


@pytest.mark.parametrize("game_id", sorted(GAMES))
def test_every_registered_game_builds_a_model_and_both_envs(game_id):
    model = make_model(game_id)
    assert isinstance(model, GameModel)
    for kind, env_class in (("parallel", StackelbergParallelEnv), ("aec", StackelbergAECEnv)):
        env = make_env(game_id, kind=kind)
        assert isinstance(env, env_class)
        assert env.model.transitions.tobytes() == model.transitions.tobytes()
    assert set(GAMES[game_id].parameters()) >= set(GAMES[game_id].defaults)


def test_make_model_parameters_override_defaults():
    model = make_model("stackelberg/matrix-v0", follower_payoffs=[[0, 1], [1, 0]])
    np.testing.assert_array_equal(model.follower_rewards[0], [[0, 1], [1, 0]])
    np.testing.assert_array_equal(model.leader_rewards[0], [[2, 4], [1, 3]])
    assert make_model("stackelberg/patrol-v0", slip=0.0).transitions[0, 2, 1, 1] == 1.0


def test_make_model_unknown_id_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown game 'stackelberg/nope-v0'.*patrol-v0"):
        make_model("stackelberg/nope-v0")


def test_make_model_unknown_parameter_is_named_with_the_accepted_ones():
    with pytest.raises(
        ValueError,
        match=r"unknown parameter 'n_sites' for game 'stackelberg/patrol-v0'; "
        r"accepted: site_values, edges, catch_penalty",
    ):
        make_model("stackelberg/patrol-v0", n_sites=3)


def test_make_env_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="kind must be one of"):
        make_env("stackelberg/matrix-v0", kind="turns")


USER_MODULE = textwrap.dedent(
    """
    from games import matrix_game

    def prisoners(temptation=5.0):
        return matrix_game([[3, 0], [temptation, 1]], [[3, temptation], [0, 1]])

    def needs_size(size):
        return matrix_game([[0] * size], [[0] * size])

    def not_a_model():
        return [[1, 2], [3, 4]]
    """
)


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "my_games_file.py").write_text(USER_MODULE)
    (tmp_path / "my_games_mod.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("my_games_mod", None)  # the next test's tmp_path holds a fresh copy


def test_user_builder_from_a_relative_file_path(user_dir):
    model = make_model("sub/my_games_file.py:prisoners", temptation=4.0)
    assert model.leader_rewards[0, 1, 0] == 4.0
    env = make_env("sub/my_games_file.py:prisoners", kind="aec")
    assert env.model.n_follower_actions == 2


def test_user_builder_from_an_absolute_path_and_never_from_a_module_name(user_dir):
    by_path = make_model(f"{user_dir / 'sub' / 'my_games_file.py'}:needs_size", size=3)
    assert by_path.n_follower_actions == 3
    # the same functions in an importable module: a game id never imports a module by name
    with pytest.raises(ValueError, match="unknown game 'my_games_mod:needs_size'"):
        make_model("my_games_mod:needs_size", size=3)
    assert "my_games_mod" not in sys.modules


@pytest.mark.parametrize(
    ("game_id", "params", "message"),
    [
        (
            "sub/my_games_file.py:prisoners",
            {"sucker": 1},
            r"unknown parameter 'sucker'.*"
            r"accepted: temptation",
        ),
        ("sub/my_games_file.py:needs_size", {}, r"needs parameter\(s\) size"),
        ("sub/my_games_file.py:not_a_model", {}, "returned list, not a GameModel"),
        ("sub/my_games_file.py:missing", {}, "has no function 'missing'"),
        ("sub/absent.py:prisoners", {}, "no such file 'sub/absent.py'"),
        ("no_such_module_xyz:prisoners", {}, "unknown game 'no_such_module_xyz:prisoners'"),
    ],
)
def test_user_builder_errors_name_the_problem(user_dir, game_id, params, message):
    with pytest.raises(ValueError, match=message):
        make_model(game_id, **params)
