"""HPGD's Four-Rooms as PettingZoo environments: the episodic game the exact model of
:mod:`games.four_rooms` describes (docs/theory.md §10).

Two agents: ``"planner_0"`` (action: the 105 incentive logits ``w``, a ``Box``; HPGD's planner
keeps them fixed during an episode, and so does every test here) and ``"follower_0"`` (action:
a move, ``Discrete(4)``: up, right, down, left). Both observe HPGD's observation
``[row, column, goal row, goal column]``; ``infos[agent]["state"]`` is the exact model's state
index (what a tabular policy of :class:`games.four_rooms.FourRoomsProblem` is indexed by).

One step, as in HPGD's ``step_env``: the rewards are those of the current cell (follower: 1 at
its goal, else the incentive ``-scale softmax(w)[k]`` of the cell; planner: 1 at the target
minus ``beta ||incentive||_1`` at the goal); at the goal the episode *terminates*; after
``max_steps`` steps it is *truncated* (HPGD: 200); otherwise the move is executed, replaced by
a slip as :func:`games.four_rooms.move_probabilities` says (``slip_kernel`` as in the exact
model, so that the two agree). Rewards are undiscounted; ``infos[agent]["discount"]`` is
``gamma``, the discount of the exact model's values.

:class:`FourRoomsParallelEnv` moves both agents at once; :func:`four_rooms_aec_env` is the same
game turn by turn (PettingZoo's conversion: the planner, then the follower).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from games.four_rooms import (
    FOUR_ROOMS_MAP,
    FourRoomsProblem,
    four_rooms_problem,
    move_probabilities,
)
from stackelberg.tabular import softmax

PLANNER, FOLLOWER = "planner_0", "follower_0"  # PettingZoo's <descriptor>_<number>
#: Bound of the planner's logits in its action space (softmax saturates far below it).
LOGIT_BOUND = 50.0


class FourRoomsParallelEnv(ParallelEnv):
    """Simultaneous moves of the planner and the follower (module docstring).

    Parameters
    ----------
    max_steps : int
        Episode length limit (HPGD's ``max_steps_in_episode``).
    problem : FourRoomsProblem, optional
        The exact model whose game this plays; built from ``params`` if omitted.
    render_mode : None, "human" (print) or "ansi" (return the text)
    **params
        Keywords of :func:`games.four_rooms.four_rooms_problem`.
    """

    metadata = {"name": "stackelberg/four-rooms-v0", "render_modes": ["human", "ansi"],
                "is_parallelizable": True}

    def __init__(self, max_steps: int = 200, problem: FourRoomsProblem | None = None,
                 render_mode: str | None = None, **params: Any):
        if not (isinstance(max_steps, int) and max_steps >= 1):
            raise ValueError(f"max_steps must be an integer >= 1, got {max_steps!r}")
        if render_mode not in (None, "human", "ansi"):
            raise ValueError(f"render_mode must be None, 'human' or 'ansi', got {render_mode!r}")
        self.problem = four_rooms_problem(**params) if problem is None else problem
        self.max_steps = max_steps
        self.render_mode = render_mode
        settings = self.problem.settings
        self.grid = self.problem.grid
        self.move_cdf = np.cumsum(move_probabilities(settings["slip"], settings["slip_kernel"]),
                                  axis=1)
        self._paid: tuple[bytes, np.ndarray, float] | None = None
        self.scale, self.beta = settings["scale"], settings["beta"]
        self.gamma = settings["gamma"]
        self.possible_agents = [PLANNER, FOLLOWER]
        self.agents: list[str] = []
        n_logits = self.problem.x_shape[1]
        obs = spaces.Box(0, len(FOUR_ROOMS_MAP) - 1, shape=(4,), dtype=np.int64)
        self._observation_spaces = {a: obs for a in self.possible_agents}
        self.state_space = obs  # both agents observe the whole state
        self._action_spaces = {
            PLANNER: spaces.Box(-LOGIT_BOUND, LOGIT_BOUND, shape=(n_logits,), dtype=np.float64),
            FOLLOWER: spaces.Discrete(4),
        }
        self.np_random = np.random.default_rng()
        self.cell, self.context, self.t = self.grid.start, 0, 0

    def observation_space(self, agent: str) -> spaces.Space:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self._action_spaces[agent]

    @property
    def state_index(self) -> int:
        """The exact model's state of the current cell and context."""
        return self.grid.state(self.context, self.cell)

    def _observe(self) -> np.ndarray:
        goal = self.grid.goals[self.context]
        return np.array([*self.cell, *goal], dtype=np.int64)

    def _infos(self) -> dict[str, dict]:
        return {a: {"state": self.state_index, "discount": self.gamma} for a in self.agents}

    def reset(self, seed: int | None = None,
              options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self.np_random = np.random.default_rng(seed)
        self.agents = list(self.possible_agents)
        self.context = int(self.np_random.integers(self.grid.n_contexts))
        self.cell, self.t = self.grid.start, 0
        obs = self._observe()
        return {a: obs.copy() for a in self.agents}, self._infos()

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"no action for {missing}")
        w = np.asarray(actions[PLANNER], dtype=float).reshape(-1)
        move = int(actions[FOLLOWER])
        incentive, norm = self._incentive(w)
        at_goal = self.cell == self.grid.goals[self.context]
        follower = 1.0 if at_goal else float(incentive[self.grid.index[self.cell]])
        planner = (float(self.cell == self.grid.target)
                   - (self.beta * norm if at_goal else 0.0))
        self.t += 1
        truncated = not at_goal and self.t >= self.max_steps
        if not (at_goal or truncated):
            executed = min(int(np.searchsorted(self.move_cdf[move], self.np_random.random(),
                                               side="right")), 3)
            self.cell = self.grid.moved(self.cell, executed)
        obs = self._observe()
        agents = self.agents
        observations = {a: obs.copy() for a in agents}
        rewards = {PLANNER: planner, FOLLOWER: follower}
        terminations = {a: at_goal for a in agents}
        truncations = {a: truncated for a in agents}
        infos = self._infos()
        if at_goal or truncated:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def _incentive(self, w: np.ndarray) -> tuple[np.ndarray, float]:
        """The incentive of the logits ``w`` on each cell and its 1-norm (the last logits'
        answer is kept: a planner usually repeats them)."""
        key = w.tobytes()
        if self._paid is None or self._paid[0] != key:
            incentive = -self.scale * softmax(w)[:-1]
            self._paid = (key, incentive, float(np.abs(incentive).sum()))
        return self._paid[1], self._paid[2]

    def render(self) -> str | None:
        if self.render_mode is None:
            return None
        rows = [list(r) for r in FOUR_ROOMS_MAP]
        goal = self.grid.goals[self.context]
        rows[goal[0]][goal[1]] = "G"
        rows[self.cell[0]][self.cell[1]] = "A"
        text = "\n".join([self.metadata["name"]] + ["".join(r) for r in rows])
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def state(self) -> np.ndarray:
        return self._observe()

    def close(self) -> None:
        pass


def four_rooms_aec_env(**options: Any):
    """The same game turn by turn (planner, then follower): PettingZoo's conversion of
    :class:`FourRoomsParallelEnv` (same keywords)."""
    return parallel_to_aec(FourRoomsParallelEnv(**options))


def rollout_returns(env: FourRoomsParallelEnv, x: np.ndarray, pi: np.ndarray, episodes: int,
                    seed: int) -> np.ndarray:
    """Discounted returns ``(planner, follower)`` of ``episodes`` episodes, shape
    ``(episodes, 2)``: the planner plays the logits ``x`` throughout, the follower draws its
    moves from the tabular policy ``pi`` (indexed by ``infos["state"]``) with its own stream.

    The follower's return is what the environment pays (task reward and incentive), without
    the entropy bonus.
    """
    rng = np.random.default_rng([seed, 1])
    w = np.asarray(x, dtype=float).reshape(-1)
    cdf = np.cumsum(pi, axis=1)
    out = np.zeros((episodes, 2))
    for e in range(episodes):
        _, infos = env.reset(seed=None if e else seed)
        discount = 1.0
        while env.agents:
            s = infos[FOLLOWER]["state"]
            a = min(int(np.searchsorted(cdf[s], rng.random(), side="right")), 3)
            _, rewards, _, _, infos = env.step({PLANNER: w, FOLLOWER: a})
            out[e] += discount * np.array([rewards[PLANNER], rewards[FOLLOWER]])
            discount *= env.gamma
    return out
