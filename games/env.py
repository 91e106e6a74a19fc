"""PettingZoo environments that sample from an exact :class:`~stackelberg.model.GameModel`.

The model is the single source of truth: an environment keeps it as ``env.model`` and draws the
initial state from ``model.initial`` and every next state from ``model.transitions[s, b, a]``
with its own generator ``env.np_random`` (seeded by ``reset(seed=...)``); the rewards of a round
are exactly ``model.leader_rewards[s, b, a]`` and ``model.follower_rewards[s, b, a]``.

Conventions (both environments)
-------------------------------
- agents: ``"leader"`` (actions ``Discrete(B)``) and ``"follower"`` (actions ``Discrete(A)``);
- a state is its index ``s`` in ``0 .. S-1``; observations are ``numpy.int64`` scalars or
  ``int64`` arrays;
- there are no terminations; every agent is truncated after ``max_cycles`` rounds. The default
  horizon is 1 when ``gamma == 0`` (a one-shot game) and ``ceil(5 / (1 - gamma))`` otherwise,
  after which the discount weight left, ``gamma**T <= exp(-5) < 0.7%``, is negligible;
- ``infos[agent] == {"state": s}``, the current state index;
- ``render_mode`` is ``None`` or ``"ansi"`` (``render()`` returns a text description).

:class:`StackelbergParallelEnv` plays simultaneous moves (the follower does not see the leader's
action); :class:`StackelbergAECEnv` lets the leader move first and shows her action to the
follower before he moves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import logger, spaces
from gymnasium.utils import seeding
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils import AgentSelector

from games._validate import positive_int
from stackelberg.model import GameModel

LEADER = "leader"
FOLLOWER = "follower"
AGENTS = (LEADER, FOLLOWER)
RENDER_MODES = ("ansi",)


def default_max_cycles(gamma: float) -> int:
    """Default episode length: 1 if ``gamma == 0``, else ``ceil(5 / (1 - gamma))``.

    Parameters
    ----------
    gamma : float
        Discount factor in [0, 1).

    Returns
    -------
    int
        A horizon ``T`` with ``gamma**T <= exp(-5)``: truncating there drops less than 0.7% of
        the discounted weight.
    """
    if gamma == 0:
        return 1
    return math.ceil(5.0 / (1.0 - gamma) - 1e-9)  # 1e-9: 5 / (1 - 0.9) is 50.000000000000004


@dataclass(frozen=True)
class Round:
    """One played round: state, actions, rewards and the sampled next state."""

    state: int
    leader_action: int
    follower_action: int
    leader_reward: float
    follower_reward: float
    next_state: int


class _ModelDynamics:
    """The model-sampling machinery shared by both environments.

    Holds the model, the generator, the current state and the round counter; ``_play_round``
    is the only place where rewards are read and next states are drawn.
    """

    model: GameModel
    max_cycles: int
    render_mode: str | None
    np_random: np.random.Generator
    np_random_seed: int | None

    def _init_dynamics(
        self, model: GameModel, max_cycles: int | None, render_mode: str | None
    ) -> None:
        if not isinstance(model, GameModel):
            raise ValueError(f"model must be a GameModel, got {type(model).__name__}")
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(
                f"render_mode must be None or one of {RENDER_MODES}, got {render_mode!r}"
            )
        self.model = model
        self.max_cycles = (
            default_max_cycles(model.gamma)
            if max_cycles is None
            else positive_int("max_cycles", max_cycles)
        )
        self.render_mode = render_mode
        self.np_random, self.np_random_seed = seeding.np_random(None)
        self._state = 0
        self._cycle = 0
        self._last_round: Round | None = None

    def _reset_dynamics(self, seed: int | None) -> None:
        if seed is not None:
            self.np_random, self.np_random_seed = seeding.np_random(seed)
        self._state = self._sample(self.model.initial)
        self._cycle = 0
        self._last_round = None

    def _sample(self, probabilities: np.ndarray) -> int:
        return int(self.np_random.choice(len(probabilities), p=probabilities))

    def _play_round(self, leader_action: int, follower_action: int) -> Round:
        s, b, a = self._state, leader_action, follower_action
        played = Round(
            state=s,
            leader_action=b,
            follower_action=a,
            leader_reward=float(self.model.leader_rewards[s, b, a]),
            follower_reward=float(self.model.follower_rewards[s, b, a]),
            next_state=self._sample(self.model.transitions[s, b, a]),
        )
        self._state = played.next_state
        self._cycle += 1
        self._last_round = played
        return played

    @property
    def state_index(self) -> int:
        """Index of the current state."""
        return self._state

    @property
    def cycle(self) -> int:
        """Number of rounds played since the last reset."""
        return self._cycle

    def _checked_action(self, agent: str, action: Any) -> int:
        space = self.action_space(agent)  # type: ignore[attr-defined]
        if action is None or not space.contains(action):
            raise ValueError(f"invalid action for {agent}: {action!r} is not in {space}")
        return int(action)

    def _infos(self) -> dict[str, dict[str, int]]:
        return {agent: {"state": self._state} for agent in AGENTS}

    def _describe(self) -> str:
        m = self.model
        lines = [
            f"{m.name}: round {self._cycle}/{self.max_cycles}, state {m.state_names[self._state]}"
        ]
        last = self._last_round
        if last is not None:
            lines.append(
                f"  last round: in {m.state_names[last.state]} leader "
                f"{m.leader_action_names[last.leader_action]}, follower "
                f"{m.follower_action_names[last.follower_action]}; rewards leader "
                f"{last.leader_reward:g}, follower {last.follower_reward:g}"
            )
        return "\n".join(lines)

    def render(self) -> str | None:
        """Return a text description of the game's progress (``render_mode="ansi"``)."""
        if self.render_mode is None:
            logger.warn("render() called without a render_mode; pass render_mode='ansi'.")
            return None
        return self._describe()

    def close(self) -> None:
        """Nothing to release."""


class StackelbergParallelEnv(_ModelDynamics, ParallelEnv):
    """Simultaneous-move PettingZoo environment sampling from a :class:`GameModel`.

    Both agents observe the current state index (``Discrete(S)``); the leader acts in
    ``Discrete(B)``, the follower in ``Discrete(A)``; neither sees the other's action before
    acting.

    Parameters
    ----------
    model : GameModel
        The exact game; kept as ``self.model``.
    max_cycles : int, optional
        Rounds before both agents are truncated; default :func:`default_max_cycles`.
    render_mode : {None, "ansi"}, optional
        ``"ansi"`` makes :meth:`render` return a text description.
    """

    metadata = {
        "name": "stackelberg_parallel_v0",
        "render_modes": list(RENDER_MODES),
        "is_parallelizable": True,
    }

    def __init__(
        self,
        model: GameModel,
        max_cycles: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        self._init_dynamics(model, max_cycles, render_mode)
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        self.observation_spaces = {agent: spaces.Discrete(model.n_states) for agent in AGENTS}
        self.action_spaces = {
            LEADER: spaces.Discrete(model.n_leader_actions),
            FOLLOWER: spaces.Discrete(model.n_follower_actions),
        }

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    def _observations(self) -> dict[str, np.int64]:
        return {agent: np.int64(self._state) for agent in AGENTS}

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.int64], dict[str, dict[str, int]]]:
        """Start an episode in a state drawn from ``model.initial``; return (obs, infos)."""
        self._reset_dynamics(seed)
        self.agents = list(self.possible_agents)
        return self._observations(), self._infos()

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        """Play one round with ``actions = {"leader": b, "follower": a}``."""
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
        truncated = self._cycle >= self.max_cycles
        terminations = dict.fromkeys(AGENTS, False)
        truncations = dict.fromkeys(AGENTS, truncated)
        if truncated:
            self.agents = []
        return self._observations(), rewards, terminations, truncations, self._infos()


class StackelbergAECEnv(_ModelDynamics, AECEnv):
    """Leader-first PettingZoo AEC environment sampling from a :class:`GameModel`.

    Each round the leader moves first, then the follower, who observes the leader's action.
    After the follower's move both agents receive the round's rewards and the state transitions.

    Observations: the leader sees the state index (``Discrete(S)``); the follower sees
    ``(state, leader action)`` as an ``int64`` array in ``MultiDiscrete([S, B + 1])``, where the
    leader-action entry is ``B`` while the leader has not yet moved in the current round.

    Parameters
    ----------
    model : GameModel
        The exact game; kept as ``self.model``.
    max_cycles : int, optional
        Rounds before both agents are truncated; default :func:`default_max_cycles`.
    render_mode : {None, "ansi"}, optional
        ``"ansi"`` makes :meth:`render` return a text description.
    """

    metadata = {
        "name": "stackelberg_aec_v0",
        "render_modes": list(RENDER_MODES),
        "is_parallelizable": True,
    }

    def __init__(
        self,
        model: GameModel,
        max_cycles: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        self._init_dynamics(model, max_cycles, render_mode)
        S, B = model.n_states, model.n_leader_actions
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        self.observation_spaces = {
            LEADER: spaces.Discrete(S),
            FOLLOWER: spaces.MultiDiscrete([S, B + 1]),
        }
        self.action_spaces = {
            LEADER: spaces.Discrete(B),
            FOLLOWER: spaces.Discrete(model.n_follower_actions),
        }
        self._agent_selector = AgentSelector(self.possible_agents)
        self._leader_action: int | None = None

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    def observe(self, agent: str) -> np.int64 | np.ndarray:
        """The leader's state index, or the follower's ``[state, leader action or B]``."""
        if agent == LEADER:
            return np.int64(self._state)
        shown = self.model.n_leader_actions if self._leader_action is None else self._leader_action
        return np.array([self._state, shown], dtype=np.int64)

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

    def step(self, action: int | None) -> None:
        """Take the current agent's action; the follower's move completes the round."""
        if not self.agents:
            raise RuntimeError("the episode is over (or never started): call reset() first")
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        action = self._checked_action(agent, action)
        self._cumulative_rewards[agent] = 0.0
        if agent == LEADER:
            self._leader_action = action
            self._clear_rewards()
        else:
            played = self._play_round(self._leader_action, action)
            self._leader_action = None
            self.rewards = {LEADER: played.leader_reward, FOLLOWER: played.follower_reward}
            self.truncations = dict.fromkeys(self.agents, self._cycle >= self.max_cycles)
            self.infos = self._infos()
        self.agent_selection = self._agent_selector.next()
        self._accumulate_rewards()

    def _describe(self) -> str:
        text = super()._describe()
        if self._leader_action is not None:
            name = self.model.leader_action_names[self._leader_action]
            text += f"\n  leader chose {name}; follower to move"
        return text
