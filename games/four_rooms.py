"""HPGD's Four-Rooms incentive design as an exact bilevel problem (docs/theory.md §10).

Thoma, Pasztor, Krause, Ramponi, Hu, *Contextual Bilevel Reinforcement Learning for Incentive
Alignment* (NeurIPS 2024), Four-Rooms experiment and Table 1. The facts below are those of
their public code and configs (the 13x13 map, the moves, the slip, the start, the two goal
contexts, the incentive and the upper reward); the code here is ours.

The game
--------
A follower walks on the 104 free cells of a 13x13 four-rooms map (moves up, right, down, left;
a move into a wall stays put) from the start (4, 1) to a goal drawn uniformly at reset from
{(1, 9), (11, 11)} (the *context*; the follower sees it). At its goal it earns 1 and the
episode ends. It is entropy-regularized with weight ``lam`` (its policy is
``softmax(Q / lam)``). The planner's variable is ``w`` (105 logits); the incentive
``-scale * softmax(w)[:-1]`` (one entry per free cell, the last logit a slack) is added to the
follower's reward on every cell but the current goal. The planner earns, discounted by
``gamma``, 1 per step at the target cell (8, 4) and pays ``beta * ||incentive||_1`` when the
follower reaches its goal; it maximizes the expected total from the start, averaged over the
two contexts.

The exact model (what :func:`four_rooms_problem` builds)
--------------------------------------------------------
States ``(context, cell)`` (2 x 104) and one absorbing *terminal* state after a goal: 209
states, 4 actions. The context is part of the state (drawn by the initial distribution, half on
each ``(context, start)``), so the contextual problem is one MDP and the follower's policy is
per context, as in HPGD. A goal state pays the follower 1 and the planner
``-beta ||incentive||_1`` and moves to the terminal state. The terminal state pays the follower
``-lam log 4`` per step: its soft value ``lam log sum_a exp(Q/lam)`` is then exactly 0, as
after the end of an episode (an absorbing state without this would earn the entropy bonus
``lam log 4`` forever, ``0.69`` of value at ``lam = 0.005``). This is exact while the problem's
``tau`` equals ``lam`` (the Four-Rooms configs keep ``tau`` fixed).

The slip. HPGD's environment replaces a move by a uniformly random one (of four) with
probability ``4/3 slip``: the intended move happens with probability ``1 - slip``, each other
with ``slip / 3``. Their exact kernel (``get_transition_probability_matrix``), from which both
their follower's best response and the table's objective are computed, gives the intended move
``1 - 4/3 slip`` and each other ``4/9 slip`` (0.56 / 0.147 at ``slip = 0.33`` instead of
0.67 / 0.11). ``slip_kernel="table"`` (default) is theirs, so our numbers are comparable with
their table; ``"environment"`` is the sampler's. The difference matters: an incentive that
L-BFGS finds under their kernel (3 starts) is worth 0.02 to 0.74 less under the sampler's on
the nine rows of the table, most at ``lam = 0.005`` (0.998 against 0.263 at ``beta = 5``).

What HPGD's table measures, and what differs here
-------------------------------------------------
Their table's number is ``UL_initial_value``: the planner's value from the start for the context
drawn at that iteration, computed by 500 sweeps of policy evaluation on their exact kernel with
no time limit (the goal is terminal), for the follower's best response by 500 soft value-
iteration sweeps; averaged over the last 1000 of 10 000 iterations (both contexts, about half
each) and over 10 seeds. So the exact infinite-horizon value of this model is their measure, up
to (a) the 500-sweep truncations (the follower reaches its goal in 39 steps on average at ``lam
= 0.001`` without incentive, 54 at ``lam = 0.005``: negligible) and (b) the average over a
moving iterate (ours is the value at the final iterate). Their *environment* ends an episode
after 200 steps; this only affects their sampled gradients, not the table. The 200-step limit
changes the objective by the discounted value after step 200, ``gamma^200`` (0.134) times the
probability of not having reached the goal by then times the value from there:
:meth:`FourRoomsProblem.horizon_values` computes the 200-step values exactly (and the tests
confirm them by Monte-Carlo of the episodic environment, :mod:`games.four_rooms_env`); at the
final incentives of ``benchmarks/bench_four_rooms.py`` it is printed with the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from stackelberg.bilevel import BackupWeights, FollowerModel
from stackelberg.problem import BilevelProblem
from stackelberg.tabular import row_sum, softmax
from stackelberg.upper_level import ValueObjective

#: HPGD's map (``FOUR_ROOMS_DEFAULT_MAP``): ``x`` is a wall.
FOUR_ROOMS_MAP = (
    "xxxxxxxxxxxxx",
    "x     x     x",
    "x     x     x",
    "x           x",
    "x     x     x",
    "x     x     x",
    "xx xxxx     x",
    "x     xxx xxx",
    "x     x     x",
    "x     x     x",
    "x           x",
    "x     x     x",
    "xxxxxxxxxxxxx",
)
#: Moves as (row, column) steps: up, right, down, left (HPGD's ``directions``).
MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))
SLIP_KERNELS = ("table", "environment")
Cell = tuple[int, int]


@dataclass(frozen=True)
class FourRoomsLayout:
    """The grid as the exact model indexes it.

    Free cells are numbered in row-major order (HPGD's ``get_coordinates``); state
    ``context * n_cells + cell`` is the follower at ``cell`` with goal ``goals[context]``, and
    state ``2 n_cells`` (the last) is the terminal state.
    """

    cells: tuple[Cell, ...]
    start: Cell
    goals: tuple[Cell, ...]
    target: Cell

    def __post_init__(self) -> None:
        for name, cell in (("start", self.start), ("target", self.target),
                           *((f"goals[{i}]", g) for i, g in enumerate(self.goals))):
            if cell not in self.index:
                raise ValueError(f"{name} = {cell} is not a free cell of the map")

    @cached_property
    def index(self) -> dict[Cell, int]:
        return {cell: i for i, cell in enumerate(self.cells)}

    @property
    def n_cells(self) -> int:
        return len(self.cells)

    @property
    def n_contexts(self) -> int:
        return len(self.goals)

    @property
    def n_states(self) -> int:
        return self.n_contexts * self.n_cells + 1

    @property
    def terminal(self) -> int:
        return self.n_states - 1

    def state(self, context: int, cell: Cell) -> int:
        return context * self.n_cells + self.index[cell]

    @cached_property
    def goal_states(self) -> np.ndarray:
        """The state index of each context's goal."""
        return np.array([self.state(g, goal) for g, goal in enumerate(self.goals)])

    def moved(self, cell: Cell, move: int) -> Cell:
        """Where a move leads (a wall: nowhere)."""
        nxt = (cell[0] + MOVES[move][0], cell[1] + MOVES[move][1])
        return nxt if nxt in self.index else cell


def layout(start: Cell = (4, 1), goals: tuple[Cell, ...] = ((1, 9), (11, 11)),
           target: Cell = (8, 4)) -> FourRoomsLayout:
    """The four-rooms layout with HPGD's start, goals and target."""
    cells = tuple((i, j) for i, row in enumerate(FOUR_ROOMS_MAP) for j, c in enumerate(row)
                  if c == " ")
    return FourRoomsLayout(cells, tuple(start), tuple(tuple(g) for g in goals), tuple(target))


def move_probabilities(slip: float, kernel: str) -> np.ndarray:
    """``q[a, b]``: probability that intended move ``a`` is executed as ``b`` (module
    docstring, "The slip")."""
    if kernel not in SLIP_KERNELS:
        raise ValueError(f"slip_kernel must be one of {SLIP_KERNELS}, got {kernel!r}")
    fail = 4.0 * slip / 3.0 if kernel == "table" else slip
    if not 0.0 <= fail <= 1.0:
        raise ValueError(f"slip = {slip!r} gives a failure probability {fail!r} outside [0, 1]")
    q = np.full((4, 4), fail / 3.0)
    np.fill_diagonal(q, 1.0 - fail)
    return q


def cell_kernel(grid: FourRoomsLayout, slip: float, kernel: str) -> np.ndarray:
    """``P[c, a, c']`` on free cells, without goals."""
    q = move_probabilities(slip, kernel)
    n = grid.n_cells
    P = np.zeros((n, 4, n))
    for c, cell in enumerate(grid.cells):
        for b in range(4):
            P[c, :, grid.index[grid.moved(cell, b)]] += q[:, b]
    return P


class CellIncentive:
    """``r_x = r_0 + F (-scale softmax(w)[:-1])``: HPGD's incentive as a parameterization
    (:class:`stackelberg.bilevel.BackupParameterization`, docs/theory.md §12).

    ``x`` has shape ``(1, K + 1)`` (one row, as a shared commitment: the search and mirror
    geometry of the exact leaders read it that way); ``p = softmax(x[0])``; the incentive on
    cell ``k`` is ``-scale p_k`` (``k < K``), the last entry a slack. ``F[s, k] = 1`` when state
    ``s`` is at cell ``k`` and not at its goal. ``P`` does not depend on ``x``.

    vjp: the weights reach ``x`` through ``v_k = sum_{s,a} dr[s, a] F[s, k]``, the direct
    gradient ``q = (-scale v, 0)`` in ``p`` and the softmax Jacobian ``p (q - p . q)``
    (``mirror``: ``q - p . q``, the mirror-descent direction).
    """

    def __init__(self, base: FollowerModel, features: np.ndarray, scale: float):
        self.base = base
        self.features = features  # (S, K), 0/1
        self.scale = float(scale)
        self._x_shape = (1, features.shape[1] + 1)

    @property
    def x_shape(self) -> tuple[int, int]:
        return self._x_shape

    def initial_x(self) -> np.ndarray:
        """Zero logits: HPGD's initialization (normal with standard deviation 0.01) at its
        mean."""
        return np.zeros(self._x_shape)

    def shares(self, x: np.ndarray) -> np.ndarray:
        """``softmax(x[0])``, shape ``(K + 1,)``."""
        if x.shape != self._x_shape:
            raise ValueError(f"x must have shape {self._x_shape}, got {x.shape}")
        return softmax(x[0])

    def incentive(self, x: np.ndarray) -> np.ndarray:
        """``-scale softmax(x)[:-1]``: the incentive on each cell, shape ``(K,)``."""
        return -self.scale * self.shares(x)[:-1]

    def followers(self, x: np.ndarray) -> FollowerModel:
        r = self.base.r + (self.features @ self.incentive(x))[None, :, None]
        r.flags.writeable = False
        return FollowerModel(P=self.base.P, r=r, rho=self.base.rho, gamma=self.base.gamma,
                             action_sizes=self.base.action_sizes)

    def _through_softmax(self, x: np.ndarray, state_weights: np.ndarray,
                         mirror: bool) -> np.ndarray:
        p = self.shares(x)
        q = np.append(-self.scale * (state_weights @ self.features), 0.0)
        centred = q - p @ q
        return (centred if mirror else p * centred)[None, :]

    def vjp(self, x: np.ndarray, dP: np.ndarray | None, dr: np.ndarray | None) -> np.ndarray:
        if dr is None:
            return np.zeros(self._x_shape)
        return self._through_softmax(x, row_sum(dr[0]), mirror=False)

    def backup_vjp(self, x: np.ndarray, cotangent: BackupWeights,
                   mirror: bool = False) -> np.ndarray:
        (coefficient,) = cotangent.rewards
        return self._through_softmax(x, coefficient * row_sum(cotangent.weights), mirror)


class PlannerReward:
    """The planner's reward ``u_x(s) = 1[s at target] - beta 1[s at goal] ||incentive||_1``
    on every action (a :class:`stackelberg.bilevel.RewardMap`). ``||incentive||_1 = scale
    (1 - p_slack)``, so ``du/dp_k = -beta scale 1[goal]`` for ``k < K`` and 0 for the slack."""

    def __init__(self, incentive: CellIncentive, target: np.ndarray, goal: np.ndarray,
                 beta: float, n_actions: int):
        self.incentive = incentive
        self.target = target
        self.goal = goal
        self.beta = float(beta)
        self.n_actions = n_actions

    def rewards(self, x: np.ndarray) -> np.ndarray:
        norm = float(np.abs(self.incentive.incentive(x)).sum())
        u = self.target - self.beta * norm * self.goal
        return np.repeat(u[:, None], self.n_actions, axis=1)

    def vjp(self, x: np.ndarray, weights: np.ndarray, mirror: bool = False) -> np.ndarray:
        p = self.incentive.shares(x)
        q = np.zeros_like(p)
        q[:-1] = -self.beta * self.incentive.scale * float(row_sum(weights) @ self.goal)
        centred = q - p @ q
        return (centred if mirror else p * centred)[None, :]


class FourRoomsProblem(BilevelProblem):
    """The Four-Rooms bilevel problem (module docstring): a :class:`BilevelProblem` built from
    :class:`CellIncentive`, one :class:`stackelberg.lower_level.SoftFollower` and a
    :class:`stackelberg.upper_level.ValueObjective` of :class:`PlannerReward`.

    The leader minimizes ``f = -V_u``; HPGD's table reports ``V_u`` (:meth:`planner_value`).
    """

    def __init__(self, grid: FourRoomsLayout, incentive: CellIncentive, reward: PlannerReward,
                 lam: float, beta: float, settings: dict):
        super().__init__(incentive, ValueObjective(reward), lam)
        self.grid = grid
        self.incentive = incentive
        self.reward = reward
        self.lam = float(lam)
        self.beta = float(beta)
        self.settings = settings

    def commitment(self, x: np.ndarray) -> np.ndarray:
        """``softmax(x)`` as a one-row commitment: the exact leaders' mirror geometry."""
        return self.incentive.shares(x)[None, :]

    def reduce_x(self, per_state: np.ndarray) -> np.ndarray:
        """Per-state quantities on ``x``'s one row: the sum over states (one shared row)."""
        return per_state.sum(axis=0, keepdims=True)

    def planner_value(self, x: np.ndarray) -> float:
        """HPGD's upper-level objective at ``x``: ``V_u`` from the start, averaged over the
        contexts, against the follower's exact soft best response."""
        return -self.hyper_objective(x)

    def horizon_values(self, x: np.ndarray, pi: np.ndarray,
                       horizon: int) -> tuple[float, float]:
        """The planner's and the follower's discounted values of ``pi`` over the first
        ``horizon`` steps (rewards at steps ``0 .. horizon - 1``: HPGD's episodes of
        ``horizon`` steps), exactly, by ``horizon`` backward sweeps. The follower's is its
        task reward plus incentive, without entropy (what an episode pays)."""
        m = self.follower_mdp(x)
        P_pi = np.einsum("sa,sat->st", pi, m.P)
        u = row_sum(pi * self.reward.rewards(x))
        r = row_sum(pi * m.r)
        r[self.grid.terminal] = 0.0
        Vu, Vr = np.zeros_like(u), np.zeros_like(r)
        for _ in range(horizon):
            Vu = u + m.gamma * P_pi @ Vu
            Vr = r + m.gamma * P_pi @ Vr
        return float(m.rho @ Vu), float(m.rho @ Vr)


def four_rooms_problem(lam: float = 0.001, beta: float = 1.0, slip: float = 0.33,
                       gamma: float = 0.99, scale: float = 0.2, start: Cell = (4, 1),
                       goals: tuple[Cell, ...] = ((1, 9), (11, 11)), target: Cell = (8, 4),
                       slip_kernel: str = "table") -> FourRoomsProblem:
    """HPGD's Four-Rooms problem (module docstring); every default is theirs.

    Parameters
    ----------
    lam : float
        The follower's entropy weight (HPGD's ``reg_lambda``: 0.001, 0.003 or 0.005).
    beta : float
        The planner's cost per unit of ``||incentive||_1`` paid at the goal (1, 3 or 5).
    slip : float
        HPGD's ``fail_prob``.
    gamma : float
        Discount of both levels.
    scale : float
        Size of the incentive: ``-scale softmax(w)[:-1]`` (HPGD's range ``[0, -0.2]``).
    start, goals, target : (row, column) cells
        The start, the goals (one context each, drawn uniformly) and the planner's target.
    slip_kernel : str
        ``"table"`` (HPGD's exact kernel, from which their table is computed) or
        ``"environment"`` (their sampler's), see the module docstring.
    """
    if not (isinstance(lam, (int, float)) and lam > 0):
        raise ValueError(f"lam must be a number > 0, got {lam!r}")
    if not (isinstance(beta, (int, float)) and beta >= 0):
        raise ValueError(f"beta must be a number >= 0, got {beta!r}")
    if not (isinstance(gamma, (int, float)) and 0 <= gamma < 1):
        raise ValueError(f"gamma must be a number in [0, 1), got {gamma!r}")
    grid = layout(start, goals, target)
    cells = cell_kernel(grid, slip, slip_kernel)
    n, S, A, G = grid.n_cells, grid.n_states, 4, grid.n_contexts
    P = np.zeros((S, A, S))
    r0 = np.zeros(S)
    features = np.zeros((S, n))
    for g in range(G):
        block = slice(g * n, (g + 1) * n)
        P[block, :, block] = cells
        features[block] = np.eye(n)
        goal = grid.goal_states[g]
        P[goal] = 0.0
        P[goal, :, grid.terminal] = 1.0
        r0[goal] = 1.0
        features[goal] = 0.0
    P[grid.terminal, :, grid.terminal] = 1.0
    r0[grid.terminal] = -lam * np.log(A)  # makes the terminal soft value exactly 0 at tau = lam
    rho = np.zeros(S)
    rho[[grid.state(g, grid.start) for g in range(G)]] = 1.0 / G
    r = np.repeat(r0[None, :, None], A, axis=2)
    for array in (P, r, rho, features):
        array.flags.writeable = False
    base = FollowerModel(P=P, r=r, rho=rho, gamma=float(gamma), action_sizes=(A,))
    incentive = CellIncentive(base, features, scale)
    target_ind = np.zeros(S)
    target_ind[[grid.state(g, grid.target) for g in range(G)]] = 1.0
    goal_ind = np.zeros(S)
    goal_ind[grid.goal_states] = 1.0
    reward = PlannerReward(incentive, target_ind, goal_ind, beta, A)
    settings = dict(lam=lam, beta=beta, slip=slip, gamma=gamma, scale=scale, start=start,
                    goals=goals, target=target, slip_kernel=slip_kernel)
    return FourRoomsProblem(grid, incentive, reward, lam, beta, settings)
