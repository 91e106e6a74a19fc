"""PettingZoo environments that sample from an exact :class:`~stackelberg.model.GameModel`.

The model is the single source of truth: an environment keeps it as ``env.model`` and draws the
initial state from ``model.initial`` and every next state from ``model.transitions[s, b, a]``
with its own generator ``env.np_random``; the rewards of a round are exactly
``model.leader_rewards[s, b, a]`` and ``model.follower_rewards[s, b, a]``.

Conventions (every environment)
-------------------------------
- agents: ``"leader_0"`` (:data:`LEADER`, actions ``Discrete(B)``) and ``"follower_0"``
  (:data:`FOLLOWER`, actions ``Discrete(A)``);
- observations: see :mod:`games.observations` (a one-hot ``Box`` by default, or indices);
  ``state()`` is ``[one-hot state | leader part | round / max_cycles]`` in ``state_space``;
- randomness as Gymnasium does it: the generator is created at the first ``reset()`` (from the
  operating system's entropy) or by ``reset(seed=...)``; ``reset()`` without a seed continues
  the stream. A copy (``copy.deepcopy``, pickling, SuperSuit's vectorized copies) of an
  environment whose generator came from entropy draws its own at its next use, so copies never
  share a stream; a copy of an environment you seeded replays the same stream;
- episode ends: after ``max_cycles`` rounds every agent is *truncated*, except in a game with
  ``gamma == 0`` (one-shot: no round has a future), where the last round *terminates*. The
  default horizon is 1 when ``gamma == 0`` and ``ceil(5 / (1 - gamma))`` otherwise, after which
  the discount weight left, ``gamma**T <= exp(-5) < 0.7%``, is negligible;
- ``discount_as_termination=True``: after every round the episode *terminates* with probability
  ``1 - gamma``. The undiscounted return of an episode is then an unbiased estimate of the
  discounted value (``E[sum_t r_t] = E[sum_t gamma^t r_t]`` since round ``t`` is reached with
  probability ``gamma^t``), so a learner that does not discount optimizes the game's objective;
  the horizon ``max_cycles`` (default ``ceil(15 / (1 - gamma))``, ``gamma**T < 4e-7``) is only
  a safety stop;
- the discount: ``metadata["gamma"]`` is the game's; ``metadata["discount"]`` and
  ``infos[agent]["discount"]`` are the discount to apply to this environment's rewards so that
  the return is the game's objective: ``gamma``, or 1 under ``discount_as_termination``;
  ``infos[agent]["state"]`` is the current state index;
- ``render_mode``: ``None``, ``"human"`` (prints the text each round), ``"ansi"`` (``render()``
  returns the text) or ``"rgb_array"`` (a matplotlib picture, :mod:`games.render`).

:class:`StackelbergParallelEnv` plays simultaneous moves (the follower does not see the leader's
action); :class:`StackelbergAECEnv` lets the leader move first and shows her action to the
follower before he moves; :class:`games.commitment.StackelbergCommitmentEnv` has the leader
commit to a mixed strategy, shown to the follower.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils import AgentSelector

from games import observations
from games.dynamics import (
    AGENTS,
    FOLLOWER,
    LEADER,
    RENDER_MODES,
    ModelDynamics,
    Round,
    default_max_cycles,
)
from stackelberg.model import GameModel

__all__ = [
    "AGENTS",
    "FOLLOWER",
    "LEADER",
    "RENDER_MODES",
    "Round",
    "StackelbergAECEnv",
    "StackelbergParallelEnv",
    "default_max_cycles",
]


class StackelbergParallelEnv(ModelDynamics, ParallelEnv):
    """Simultaneous-move PettingZoo environment sampling from a :class:`GameModel`.

    Neither agent sees the other's action before acting. Observations (one-hot form, both
    agents): ``[one-hot state (S) | agent indicator (2)]``; index form: the state index.

    Parameters
    ----------
    model : GameModel
        The exact game; kept as ``self.model``.
    max_cycles : int, optional
        Rounds before the episode ends; default :func:`default_max_cycles`.
    render_mode : {None, "human", "ansi", "rgb_array"}, optional
        See the module docstring.
    observation : {"onehot", "index"}, default "onehot"
        Observation encoding (:mod:`games.observations`).
    discount_as_termination : bool, default False
        End each round with probability ``1 - gamma`` (module docstring).
    name : str, optional
        ``metadata["name"]``; :func:`games.make_env` passes the game's id. Default
        ``"stackelberg/" + model.name``.
    """

    metadata = {"name": "stackelberg", "render_modes": list(RENDER_MODES),
                "is_parallelizable": True}

    def __init__(
        self,
        model: GameModel,
        max_cycles: int | None = None,
        render_mode: str | None = None,
        observation: str = observations.ONEHOT,
        discount_as_termination: bool = False,
        name: str | None = None,
    ) -> None:
        self._init_dynamics(
            model, max_cycles, render_mode, observation, discount_as_termination, name
        )
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        if self.observation_format == observations.INDEX:
            self.observation_spaces = {agent: spaces.Discrete(model.n_states) for agent in AGENTS}
        else:
            self.observation_spaces = self._onehot_spaces()
        self.action_spaces = {
            LEADER: spaces.Discrete(model.n_leader_actions),
            FOLLOWER: spaces.Discrete(model.n_follower_actions),
        }

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    def _observations(self) -> dict[str, np.ndarray | np.int64]:
        if self.observation_format == observations.INDEX:
            return {agent: np.int64(self._state) for agent in AGENTS}
        return {agent: self._encode(agent) for agent in AGENTS}

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Start an episode in a state drawn from ``model.initial``; return (obs, infos)."""
        self._reset_dynamics(seed)
        self.agents = list(self.possible_agents)
        self._render_human()
        return self._observations(), self._infos()

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        """Play one round with ``actions = {LEADER: b, FOLLOWER: a}``."""
        if not self.agents:
            raise RuntimeError("the episode is over (or never started): call reset() first")
        missing = [agent for agent in AGENTS if agent not in actions]
        if missing:
            raise ValueError(f"step() needs an action for every agent; missing {missing}")
        played = self._play_round(
            self._checked_action(LEADER, actions[LEADER]),
            self._checked_action(FOLLOWER, actions[FOLLOWER]),
        )
        rewards = {LEADER: played.leader_reward, FOLLOWER: played.follower_reward}
        end = self._episode_end()
        terminations = dict.fromkeys(AGENTS, end.terminated)
        truncations = dict.fromkeys(AGENTS, end.truncated)
        if end.terminated or end.truncated:
            self.agents = []
        self._render_human()
        return self._observations(), rewards, terminations, truncations, self._infos()


class StackelbergAECEnv(ModelDynamics, AECEnv):
    """Leader-first PettingZoo AEC environment sampling from a :class:`GameModel`.

    Each round the leader moves first, then the follower, who observes the leader's action.
    After the follower's move both agents receive the round's rewards and the state transitions.
    Because the follower's observation changes within a round, the environment is not
    parallelizable (``metadata["is_parallelizable"]`` is false: ``aec_to_parallel`` would show
    the follower "leader not yet moved" every round).

    Observations, one-hot form (both agents): ``[one-hot state (S) | one-hot leader action (B),
    zeros before she moves | agent indicator (2)]``. Index form: the leader sees the state index
    (``Discrete(S)``), the follower ``(state, leader action)`` in ``MultiDiscrete([S, B + 1])``,
    the leader-action entry being ``B`` while the leader has not yet moved in the round.

    Parameters
    ----------
    model, max_cycles, render_mode, observation, discount_as_termination, name
        As in :class:`StackelbergParallelEnv`.
    """

    _shows_leader = True
    metadata = {"name": "stackelberg", "render_modes": list(RENDER_MODES),
                "is_parallelizable": False}

    def __init__(
        self,
        model: GameModel,
        max_cycles: int | None = None,
        render_mode: str | None = None,
        observation: str = observations.ONEHOT,
        discount_as_termination: bool = False,
        name: str | None = None,
    ) -> None:
        self._init_dynamics(
            model, max_cycles, render_mode, observation, discount_as_termination, name
        )
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        self.observation_spaces = self._observation_spaces()
        self.action_spaces = {
            LEADER: self._leader_action_space(),
            FOLLOWER: spaces.Discrete(model.n_follower_actions),
        }
        self._agent_selector = AgentSelector(self.possible_agents)
        self._leader_action: Any = None

    def _observation_spaces(self) -> dict[str, spaces.Space]:
        if self.observation_format == observations.ONEHOT:
            return self._onehot_spaces()
        S, B = self.model.n_states, self.model.n_leader_actions
        return {LEADER: spaces.Discrete(S), FOLLOWER: spaces.MultiDiscrete([S, B + 1])}

    def _leader_action_space(self) -> spaces.Space:
        return spaces.Discrete(self.model.n_leader_actions)

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    def observe(self, agent: str) -> np.ndarray | np.int64:
        """The agent's observation (class docstring)."""
        if self.observation_format == observations.ONEHOT:
            return self._encode(agent)
        if agent == LEADER:
            return np.int64(self._state)
        shown = self.model.n_leader_actions if self._leader_action is None else self._leader_action
        return np.array([self._state, shown], dtype=np.int64)

    def _leader_part(self) -> np.ndarray:
        part = np.zeros(self.model.n_leader_actions, dtype=np.float32)
        if self._leader_action is not None:
            part[self._leader_action] = 1.0
        return part

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        """Start an episode in a state drawn from ``model.initial``; the leader moves first."""
        self._reset_dynamics(seed)
        self._leader_action = None
        self.agents = list(self.possible_agents)
        self.rewards = dict.fromkeys(self.agents, 0.0)
        self._cumulative_rewards = dict.fromkeys(self.agents, 0.0)
        self.terminations = dict.fromkeys(self.agents, False)
        self.truncations = dict.fromkeys(self.agents, False)
        self.infos = self._infos()
        self.agent_selection = self._agent_selector.reset()
        self._render_human()

    def _checked_leader_move(self, action: Any) -> Any:
        """The leader's move as stored until the follower's: here an action index."""
        return self._checked_action(LEADER, action)

    def _realized_leader_action(self) -> int:
        """The leader action ``b`` that the round is played with."""
        return self._leader_action

    def step(self, action: Any) -> None:
        """Take the current agent's action; the follower's move completes the round."""
        if not self.agents:
            raise RuntimeError("the episode is over (or never started): call reset() first")
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        self._cumulative_rewards[agent] = 0.0
        if agent == LEADER:
            self._leader_action = self._checked_leader_move(action)
            self._clear_rewards()
        else:
            follower_action = self._checked_action(FOLLOWER, action)
            played = self._play_round(self._realized_leader_action(), follower_action)
            self._leader_action = None
            self.rewards = {LEADER: played.leader_reward, FOLLOWER: played.follower_reward}
            end = self._episode_end()
            self.terminations = dict.fromkeys(self.agents, end.terminated)
            self.truncations = dict.fromkeys(self.agents, end.truncated)
            self.infos = self._round_infos(played)
        self.agent_selection = self._agent_selector.next()
        self._accumulate_rewards()
        self._render_human()

    def _round_infos(self, played: Round) -> dict[str, dict[str, Any]]:
        return self._infos()

    def _pending_row(self) -> int | None:
        return self._leader_action

    def _pending_text(self) -> str | None:
        if self._leader_action is None:
            return None
        return self.model.leader_action_names[self._leader_action]
