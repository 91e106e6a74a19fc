"""The grid-world goal-position game: layout, dynamics, rewards, parameter checks, exact maths."""

from __future__ import annotations

import numpy as np
import pytest

import games
from games import gridworld_goal_game, make_model
from games.gridworld import (
    DEFAULT_CANDIDATES,
    DEFAULT_START,
    DEFAULT_TARGET,
    DEFAULT_WALLS,
    STAY,
)
from stackelberg.problem import StackelbergProblem
from stackelberg.tabular import solve_mdp

UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3


@pytest.fixture(scope="module")
def model():
    return make_model("stackelberg/gridworld-goal-v0")


def state(model, row: int, col: int) -> int:
    return model.state_names.index(f"r{row}c{col}")


def test_shapes_and_shared_commitment(model):
    S = 10 * 10 - len(set(DEFAULT_WALLS))
    B = len(DEFAULT_CANDIDATES)
    assert model.transitions.shape == (S, B, 5, S)
    assert model.leader_rewards.shape == model.follower_rewards.shape == (S, B, 5)
    assert model.shared_commitment is True
    assert model.gamma == 0.95
    assert model.follower_action_names == ("up", "down", "left", "right", "stay")
    assert model.leader_action_names[0] == "goal at r0c3"
    # free cells row-major, walls left out
    assert model.state_names[:5] == ("r0c0", "r0c1", "r0c2", "r0c3", "r0c5")
    assert "r0c4" not in model.state_names


def test_transitions_do_not_depend_on_the_leader_and_are_distributions(model):
    P = model.transitions
    np.testing.assert_array_equal(P, np.broadcast_to(P[:, :1], P.shape))
    np.testing.assert_allclose(P.sum(axis=-1), 1.0, atol=1e-12)


def test_stay_is_exact_and_walls_and_border_block_moves():
    model = gridworld_goal_game(slip=0.0)
    P = model.transitions[:, 0]
    s = state(model, 0, 3)  # wall r0c4 to the right, border above
    assert P[s, RIGHT, s] == 1.0
    assert P[s, UP, s] == 1.0
    assert P[s, LEFT, state(model, 0, 2)] == 1.0
    assert P[s, DOWN, state(model, 1, 3)] == 1.0
    # the doors are open
    assert P[state(model, 7, 3), RIGHT, state(model, 7, 4)] == 1.0
    assert P[state(model, 5, 8), UP, state(model, 4, 8)] == 1.0
    # stay never moves, even with a slip
    slippery = gridworld_goal_game(slip=0.5).transitions[:, 0, STAY]
    np.testing.assert_array_equal(slippery, np.eye(model.n_states))


def test_slip_spreads_mass_as_documented():
    slip = 0.2
    model = gridworld_goal_game(slip=slip)
    s = state(model, 0, 3)  # up: blocked (border), down: r1c3, left: r0c2, right: blocked (wall)
    row = model.transitions[s, 0, DOWN]
    expected = np.zeros(model.n_states)
    expected[state(model, 1, 3)] = 1 - slip + slip / 4  # intended move, or drawn by the slip
    expected[state(model, 0, 2)] = slip / 4  # the slip draws "left"
    expected[s] = 2 * slip / 4  # the slip draws "up" or "right", both blocked
    np.testing.assert_allclose(row, expected, atol=1e-15)
    # an open cell: the intended move with 1 - 3 slip / 4, every other move with slip / 4
    c = state(model, 7, 6)
    row = model.transitions[c, 3, LEFT]
    assert row[state(model, 7, 5)] == pytest.approx(1 - 3 * slip / 4)
    for r, k in ((6, 6), (8, 6), (7, 7)):
        assert row[state(model, r, k)] == pytest.approx(slip / 4)


def test_rewards_at_a_candidate_and_at_a_target_cell():
    model = gridworld_goal_game(goal_reward=2.0, move_cost=0.05, reward_cost=0.1)
    assert DEFAULT_CANDIDATES[5] == (0, 9) and (0, 9) in DEFAULT_TARGET
    corner = state(model, 0, 9)  # candidate 5 and in the target
    move_costs = np.array([0.05, 0.05, 0.05, 0.05, 0.0])
    np.testing.assert_allclose(model.follower_rewards[corner, 5], 2.0 - move_costs)
    np.testing.assert_allclose(model.leader_rewards[corner, 5], 1.0 - 0.1 * 2.0)
    for b in range(5):  # the goal is elsewhere: no goal reward, no cost
        np.testing.assert_allclose(model.follower_rewards[corner, b], -move_costs)
        np.testing.assert_allclose(model.leader_rewards[corner, b], 1.0)
    target_only = state(model, 0, 8)  # in the target, not a candidate
    np.testing.assert_allclose(model.leader_rewards[target_only], 1.0)
    np.testing.assert_allclose(model.follower_rewards[target_only], -np.tile(move_costs, (6, 1)))
    candidate = state(model, 0, 3)  # candidate 0, not in the target
    np.testing.assert_allclose(model.leader_rewards[candidate, 0], -0.2)
    np.testing.assert_allclose(model.leader_rewards[candidate, 1:], 0.0)
    np.testing.assert_allclose(model.follower_rewards[candidate, 0], 2.0 - move_costs)
    elsewhere = state(model, 5, 0)
    np.testing.assert_allclose(model.leader_rewards[elsewhere], 0.0)
    # the initial state is uniform over the start cells
    assert model.initial[state(model, *DEFAULT_START[0])] == 1.0
    two = gridworld_goal_game(start=[[0, 0], [9, 5]])
    assert two.initial[state(two, 9, 5)] == two.initial[state(two, 0, 0)] == 0.5


def test_default_layout_matches_the_docstring_picture():
    walls, names = set(DEFAULT_WALLS), {cell: str(b) for b, cell in enumerate(DEFAULT_CANDIDATES)}
    lines = ["       " + " ".join(str(c) for c in range(10))]
    for r in range(10):
        row = []
        for c in range(10):
            cell = (r, c)
            mark = "#" if cell in walls else names.get(cell, "T" if cell in DEFAULT_TARGET else ".")
            row.append("S" if cell in DEFAULT_START else mark)
        lines.append(f"    {r}  " + " ".join(row))
    assert "\n".join(lines) in games.gridworld.__doc__


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"walls": [[0, 10]]}, r"walls\[0\] = \[0, 10\] is outside the 10x10 grid"),
        ({"walls": [[1, 2, 3]]}, r"walls\[0\] must be a \[row, col\] pair"),
        ({"walls": "r0c4"}, r"walls must be a list"),
        ({"candidates": [[0, 3], [0, 4]]}, r"candidates\[1\] = \[0, 4\] is a wall cell"),
        ({"candidates": [[0, 3], [0, 3]]}, r"candidates\[1\] = \[0, 3\] is listed twice"),
        ({"candidates": []}, r"candidates must list at least one cell"),
        ({"target": [[4, 5]]}, r"target\[0\] = \[4, 5\] is a wall cell"),
        ({"start": [[-1, 0]]}, r"start\[0\] = \[-1, 0\] is outside"),
        ({"walls": [*DEFAULT_WALLS, (7, 4)]}, r"walls must leave the free cells connected"),
        ({"size": 2, "walls": [[0, 1], [1, 0]], "candidates": [[0, 0]], "target": [[1, 1]],
          "start": [[0, 0]]}, r"walls must leave the free cells connected"),
        ({"size": 1, "walls": [], "candidates": [[0, 0]], "target": [[0, 0]],
          "start": [[0, 0]]}, r"walls must leave at least 2 free cells"),
        ({"size": 0}, r"size must be a positive integer"),
        ({"slip": 1.5}, r"slip must be a probability in \[0, 1\]"),
        ({"slip": -0.1}, r"slip must be a probability"),
        ({"gamma": 1.0}, r"gamma must be a discount factor in \[0, 1\)"),
        ({"goal_reward": -1.0}, r"goal_reward must be a finite non-negative number"),
        ({"move_cost": float("nan")}, r"move_cost must be a finite non-negative number"),
        ({"reward_cost": -0.1}, r"reward_cost must be a finite non-negative number"),
    ],
)
def test_bad_parameters_raise_naming_the_parameter(params, message):
    with pytest.raises(ValueError, match=message):
        gridworld_goal_game(**params)


def test_parameters_from_a_config_file_are_lists():
    model = make_model(
        "stackelberg/gridworld-goal-v0",
        size=4,
        walls=[[1, 1], [2, 1]],
        candidates=[[0, 3], [3, 0]],
        target=[[3, 3]],
        start=[[0, 0]],
    )
    assert model.transitions.shape == (14, 2, 5, 14)


def _point_mass(B: int, b: int) -> np.ndarray:
    x = np.full((1, B), -1e3)  # softmax: exactly 0 on the others, 1 on b
    x[0, b] = 0.0
    return x


def _greedy_path_reaches(model, pi: np.ndarray, goal: int) -> bool:
    """Follow the follower's most likely action (without slipping) from the start cell."""
    P = model.transitions[:, 0]
    s = int(np.argmax(model.initial))
    for _ in range(10 * 10):
        if s == goal:
            return True
        s = int(np.argmax(P[s, np.argmax(pi[s])]))
    return s == goal


@pytest.mark.parametrize("b", range(len(DEFAULT_CANDIDATES)))
def test_follower_best_response_walks_to_the_only_goal(model, b):
    problem = StackelbergProblem(model, tau=0.01)
    assert problem.x_shape == (1, model.n_leader_actions)
    x = _point_mass(model.n_leader_actions, b)
    pi = problem.best_response(x).pi
    goal = state(model, *DEFAULT_CANDIDATES[b])
    assert _greedy_path_reaches(model, pi, goal)
    assert pi[goal, STAY] > 0.99  # and stays there
    # the same by hand: the follower's MDP does not depend on the leader's action
    by_hand = solve_mdp(model.transitions[:, 0], model.follower_rewards[:, b], model.gamma, 0.01)
    np.testing.assert_allclose(by_hand.pi, pi, atol=1e-8)


def test_the_leader_prefers_an_interior_commitment(model):
    # the documented trade-off: all goal mass on r0c9 lures the walker into the target but pays
    # for it; less mass there (the rest spread over the other candidates) still lures him, and
    # costs less; too little and he stops at a nearer candidate
    problem = StackelbergProblem(model, tau=0.01)
    B = model.n_leader_actions

    def leader_value(mass: float) -> float:
        mu = np.full(B, (1 - mass) / (B - 1))
        mu[5] = mass
        return -problem.hyper_objective(np.log(mu)[None])

    all_in = -problem.hyper_objective(_point_mass(B, 5))
    assert leader_value(0.5) > all_in > 4.0
    assert leader_value(0.3) < 1.0
