"""A goal-position design game on a grid world: the leader places the goal, the follower walks.

The story
---------
A **designer** (the leader) wants a walker (the follower) to spend time in a **target** region of
a grid with walls, but cannot move him: she can only decide where the walker's **goal reward**
is paid. She commits to one distribution ``mu`` over a few **candidate** goal cells, the same in
every state (``GameModel.shared_commitment``): each round the goal sits at candidate ``b`` with
probability ``mu(b)``. With logits ``x``, ``mu = softmax(x)`` is exactly "a distribution of the
goal reward over the candidate cells". The walker knows ``mu`` and walks the grid to maximize his
discounted (entropy-regularized) reward; the designer's objective is evaluated on the walk this
induces.

The model
---------
- **States** ``s``: the free (non-wall) cells of a ``size x size`` grid, numbered row-major over
  the free cells; ``state_names[s] = "r{row}c{col}"``. Row 0 is the top row.
- **Follower actions** ``a`` (``A = 5``): 0 up (row - 1), 1 down (row + 1), 2 left (col - 1),
  3 right (col + 1), 4 stay. A move into a wall or off the grid leaves the walker where he is.
- **Slip**: with probability ``slip`` a move (actions 0-3) is replaced by one of the 4 moves drawn
  uniformly (possibly the intended one), then executed as above. So the intended move happens with
  probability ``1 - 3 slip / 4`` and each other move with probability ``slip / 4``. **Stay never
  slips**: the walker can rest exactly where he is.
- **Leader actions** ``b`` (``B = len(candidates)``): "the goal reward sits at candidate cell
  ``b`` this round". Transitions do **not** depend on ``b``: ``transitions[s, b]`` is the same
  for every ``b`` (the designer shapes only rewards, as the Hessian-free estimate of
  docs/theory.md §4, RAC, requires: it is "valid when ``P`` does not depend on ``x``").
- **Follower reward**: ``follower_rewards[s, b, a] = goal_reward * [s == candidates[b]]
  - move_cost * [a is a move]``. The goal reward is paid for **being in** the goal cell (at every
  round spent there, whatever the action), not for entering it. Under ``mu`` the walker's
  expected reward in candidate cell ``c_b`` is ``goal_reward * mu(b)`` per round, so he heads for
  a candidate that is rich enough and close enough, and then stays there.
- **Leader reward**: ``leader_rewards[s, b, a] = [s in target] - reward_cost * goal_reward *
  [s == candidates[b]]``: one per round the walker spends in the target region, minus a cost
  proportional to the goal reward actually handed out. Under ``mu`` the leader's value is the
  discounted time the walker spends in the target region minus ``reward_cost * goal_reward``
  times the discounted expected goal reward he collects.
- **Initial state**: uniform over the ``start`` cells. **Discount** ``gamma`` (default 0.95).

The default layout (``size = 10``; ``#`` wall, ``S`` start, digits the candidates ``b``, ``T``
target, ``5`` is also in the target)::

       0 1 2 3 4 5 6 7 8 9
    0  S . . 0 # . . . T 5
    1  . . . . # . . . . T
    2  . . . . # . 4 . . .
    3  . . . . # . . . . .
    4  . . . . # # # # . #
    5  . . . . # . 3 . . .
    6  . . . . # . . . . .
    7  . . . . . . . . . .
    8  . . . . # . . . . .
    9  1 . . . # . . . . 2

Three rooms: the walker starts in the left room, which opens into the bottom-right room at
``r7c4``; the top-right room is reached only through ``r4c8``. The target region is the
top-right corner (``r0c8``, ``r0c9``, ``r1c9``), 22-23 steps from the start; only one of its cells
is a candidate (``r0c9``); the walk into it passes through the other two or next to them. Other
candidates are much closer (``r0c3`` is 3 steps away), so the designer must put enough goal mass
on ``r0c9`` to lure the walker across the grid, and every unit of mass there is paid for once he
arrives (``reward_cost``); mass on the other candidates is free as long as he does not go there,
but it also competes with ``r0c9``. The best commitment is near the walker's switching boundary,
not at a vertex of the simplex.

Sizes with the defaults: ``S = 87`` free cells (13 walls), ``B = 6`` candidates, ``A = 5``.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from games._validate import discount, finite_float, positive_int, probability
from stackelberg.model import GameModel

if TYPE_CHECKING:  # networkx is imported where it is used: importing it costs every command
    import networkx as nx  # about 0.3 CPU s (BENCHMARKS.md, "Branch sp")

#: Follower actions: (name, row step, column step); the index is the action.
MOVES = (("up", -1, 0), ("down", 1, 0), ("left", 0, -1), ("right", 0, 1), ("stay", 0, 0))
#: Index of the "stay" action (the only one that never slips).
STAY = 4
#: Number of real moves, among which a slip draws uniformly.
N_MOVES = 4

Cell = tuple[int, int]

DEFAULT_WALLS: tuple[Cell, ...] = (
    *((row, 4) for row in range(10) if row != 7),  # left room | right rooms, door at r7c4
    (4, 5), (4, 6), (4, 7), (4, 9),  # top-right room / bottom-right room, door at r4c8
)
DEFAULT_CANDIDATES: tuple[Cell, ...] = ((0, 3), (9, 0), (9, 9), (5, 6), (2, 6), (0, 9))
DEFAULT_TARGET: tuple[Cell, ...] = ((0, 8), (0, 9), (1, 9))
DEFAULT_START: tuple[Cell, ...] = ((0, 0),)


def _is_integer(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def grid_cells(name: str, cells: object, size: int) -> list[Cell]:
    """Parse ``cells``, a list of ``[row, col]`` pairs inside a ``size x size`` grid.

    Parameters
    ----------
    name : str
        The parameter's name, for error messages.
    cells : sequence of (int, int)
        The cells.
    size : int
        The grid's side.

    Returns
    -------
    list of (int, int)
        The cells as tuples, in the given order.

    Raises
    ------
    ValueError
        If ``cells`` is not a list of integer pairs, or a cell lies outside the grid; the message
        names the parameter and the offending entry.
    """
    if isinstance(cells, str | bytes) or not isinstance(cells, Sequence | np.ndarray):
        raise ValueError(f"{name} must be a list of [row, col] cells, got {cells!r}")
    parsed = []
    for i, cell in enumerate(cells):
        pair = tuple(cell) if isinstance(cell, Sequence | np.ndarray) else (cell,)
        if len(pair) != 2 or not all(_is_integer(v) for v in pair):
            raise ValueError(f"{name}[{i}] must be a [row, col] pair of integers, got {cell!r}")
        row, col = int(pair[0]), int(pair[1])
        if not (0 <= row < size and 0 <= col < size):
            raise ValueError(
                f"{name}[{i}] = {cell!r} is outside the {size}x{size} grid "
                f"(rows and columns 0..{size - 1})"
            )
        parsed.append((row, col))
    return parsed


def _free_cells(
    name: str, cells: object, size: int, walls: set[Cell], *, distinct: bool
) -> list[Cell]:
    """Parse a non-empty list of free cells (optionally without repetitions)."""
    parsed = grid_cells(name, cells, size)
    if not parsed:
        raise ValueError(f"{name} must list at least one cell, got {cells!r}")
    for i, cell in enumerate(parsed):
        if cell in walls:
            raise ValueError(f"{name}[{i}] = {list(cell)} is a wall cell; it must be free")
        if distinct and cell in parsed[:i]:
            raise ValueError(f"{name}[{i}] = {list(cell)} is listed twice; cells must be distinct")
    return parsed


def free_grid(size: int, walls: set[Cell]) -> nx.Graph:
    """The 4-neighbour graph of the free cells; raises ``ValueError`` unless it is connected."""
    import networkx as nx  # on use: see the module's imports
    graph = nx.grid_2d_graph(size, size)
    graph.remove_nodes_from(walls)
    if graph.number_of_nodes() < 2:
        raise ValueError(
            f"walls must leave at least 2 free cells, got {graph.number_of_nodes()} "
            f"in the {size}x{size} grid"
        )
    if not nx.is_connected(graph):
        parts = sorted(min(c) for c in nx.connected_components(graph))
        raise ValueError(
            "walls must leave the free cells connected; they split them into "
            f"{len(parts)} regions (containing e.g. {', '.join(f'r{r}c{c}' for r, c in parts)})"
        )
    return graph


def move_table(wall_mask: np.ndarray, index: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """``table[s, a]``: the state reached from ``s`` by action ``a`` without slipping.

    ``wall_mask`` is the ``(size, size)`` boolean grid of walls, ``index[row, col]`` the state
    of a free cell and ``cells[s]`` the ``(row, col)`` of state ``s``. A move off the grid or
    into a wall leaves the state unchanged.
    """
    size = wall_mask.shape[0]
    table = np.empty((len(cells), len(MOVES)), dtype=int)
    here = np.arange(len(cells))
    for a, (_, dr, dc) in enumerate(MOVES):
        rows, cols = cells[:, 0] + dr, cells[:, 1] + dc
        inside = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
        rows_c, cols_c = np.clip(rows, 0, size - 1), np.clip(cols, 0, size - 1)
        open_ = inside & ~wall_mask[rows_c, cols_c]
        table[:, a] = np.where(open_, index[rows_c, cols_c], here)
    return table


def gridworld_goal_game(
    size: int = 10,
    walls: Sequence[Sequence[int]] = DEFAULT_WALLS,
    candidates: Sequence[Sequence[int]] = DEFAULT_CANDIDATES,
    target: Sequence[Sequence[int]] = DEFAULT_TARGET,
    start: Sequence[Sequence[int]] = DEFAULT_START,
    slip: float = 0.1,
    goal_reward: float = 1.0,
    move_cost: float = 0.0,
    reward_cost: float = 0.1,
    gamma: float = 0.95,
) -> GameModel:
    """Build the grid-world goal-position game (the story and layout are in the module docstring).

    Parameters
    ----------
    size : int, default 10
        Side of the square grid (``size x size`` cells).
    walls : sequence of [row, col], default :data:`DEFAULT_WALLS`
        Wall cells (repetitions are ignored). The remaining free cells must be connected and at
        least 2.
    candidates : sequence of [row, col], default :data:`DEFAULT_CANDIDATES`
        Distinct free cells where the goal reward may sit; leader action ``b`` puts it at
        ``candidates[b]``.
    target : sequence of [row, col], default :data:`DEFAULT_TARGET`
        Free cells of the designer's target region (repetitions are ignored); the leader earns 1
        per round the follower spends there.
    start : sequence of [row, col], default :data:`DEFAULT_START`
        Distinct free cells; the initial state is uniform over them.
    slip : float, default 0.1
        Probability that a move (not "stay") is replaced by one of the 4 moves drawn uniformly.
    goal_reward : float, default 1.0
        Follower's reward per round spent in the goal cell (non-negative).
    move_cost : float, default 0.0
        Follower's cost per move action (up/down/left/right, whether or not it succeeds;
        non-negative). "stay" is free.
    reward_cost : float, default 0.1
        Leader's cost per unit of goal reward handed out (non-negative).
    gamma : float, default 0.95
        Discount factor in [0, 1).

    Returns
    -------
    GameModel
        ``S`` = number of free cells, ``B = len(candidates)``, ``A = 5``, with
        ``shared_commitment=True``.

    Raises
    ------
    ValueError
        If a parameter is out of range; the message names it.
    """
    size = positive_int("size", size)
    slip = probability("slip", slip)
    goal_reward = finite_float("goal_reward", goal_reward, nonnegative=True)
    move_cost = finite_float("move_cost", move_cost, nonnegative=True)
    reward_cost = finite_float("reward_cost", reward_cost, nonnegative=True)
    gamma = discount("gamma", gamma)
    wall_set = set(grid_cells("walls", walls, size))
    free_grid(size, wall_set)
    goals = _free_cells("candidates", candidates, size, wall_set, distinct=True)
    region = _free_cells("target", target, size, wall_set, distinct=False)
    starts = _free_cells("start", start, size, wall_set, distinct=True)

    wall_mask = np.zeros((size, size), dtype=bool)
    for cell in wall_set:
        wall_mask[cell] = True
    cells = np.argwhere(~wall_mask)  # row-major over the free cells
    S, B, A = len(cells), len(goals), len(MOVES)
    index = np.full((size, size), -1, dtype=int)
    index[cells[:, 0], cells[:, 1]] = np.arange(S)

    # deterministic moves as one-hot rows, then the slip mixes the 4 moves uniformly
    table = move_table(wall_mask, index, cells)
    exact = np.zeros((S, A, S))
    exact[np.arange(S)[:, None], np.arange(A)[None, :], table] = 1.0
    step = exact.copy()
    step[:, :N_MOVES] = (1.0 - slip) * exact[:, :N_MOVES] + slip * exact[:, :N_MOVES].mean(
        axis=1, keepdims=True
    )
    transitions = np.broadcast_to(step[:, None], (S, B, A, S))

    goal_state = index[tuple(np.array(goals).T)]
    paid = goal_reward * (np.arange(S)[:, None] == goal_state[None, :])  # (S, B)
    is_move = np.arange(A) != STAY
    follower_rewards = paid[:, :, None] - move_cost * is_move[None, None, :]
    in_target = np.zeros(S)
    in_target[index[tuple(np.array(region).T)]] = 1.0
    leader_rewards = np.broadcast_to(
        (in_target[:, None] - reward_cost * paid)[:, :, None], (S, B, A)
    )
    initial = np.zeros(S)
    initial[index[tuple(np.array(starts).T)]] = 1.0 / len(starts)

    def name(cell: Sequence[int]) -> str:
        return f"r{cell[0]}c{cell[1]}"

    return GameModel(
        transitions=transitions,
        leader_rewards=leader_rewards,
        follower_rewards=follower_rewards,
        initial=initial,
        gamma=gamma,
        name="gridworld-goal",
        state_names=tuple(name(cell) for cell in cells),
        leader_action_names=tuple(f"goal at {name(cell)}" for cell in goals),
        follower_action_names=tuple(move for move, _, _ in MOVES),
        shared_commitment=True,
    )
