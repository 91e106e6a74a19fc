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

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import logger, spaces
from gymnasium.utils import seeding
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils import AgentSelector

from games import observations
from games._validate import positive_int
from games.render import Frame, describe, draw
from stackelberg.model import GameModel

LEADER = "leader_0"
FOLLOWER = "follower_0"
AGENTS = (LEADER, FOLLOWER)
RENDER_MODES = ("human", "ansi", "rgb_array")
#: Horizon under ``discount_as_termination``, in units of the expected length ``1 / (1 - gamma)``.
TERMINATION_HORIZON = 15.0


def default_max_cycles(gamma: float, discount_as_termination: bool = False) -> int:
    """Default episode length: 1 if ``gamma == 0``, else ``ceil(c / (1 - gamma))``.

    Parameters
    ----------
    gamma : float
        Discount factor in [0, 1).
    discount_as_termination : bool, default False
        ``c = 5`` without it (``gamma**T <= exp(-5)``: truncating there drops less than 0.7% of
        the discounted weight), ``c = 15`` with it (the horizon is only a safety stop of
        probability ``gamma**T <= exp(-15) < 4e-7``).

    Returns
    -------
    int
        The horizon ``T``.
    """
    if gamma == 0:
        return 1
    c = TERMINATION_HORIZON if discount_as_termination else 5.0
    return math.ceil(c / (1.0 - gamma) - 1e-9)  # 1e-9: 5 / (1 - 0.9) is 50.000000000000004


@dataclass(frozen=True)
class Round:
    """One played round: state, actions, rewards and the sampled next state."""

    state: int
    leader_action: int
    follower_action: int
    leader_reward: float
    follower_reward: float
    next_state: int


@dataclass(frozen=True)
class EpisodeEnd:
    """Whether the round just played ended the episode, and how."""

    terminated: bool
    truncated: bool


class _ModelDynamics:
    """The model-sampling machinery shared by the environments.

    Holds the model, the options, the generator, the current state and the round counter;
    ``_play_round`` is the only place where rewards are read and next states are drawn.
    Subclasses set ``_shows_leader`` (whether observations and ``state()`` have a leader part)
    and may override ``_leader_part`` and ``_pending_text``.
    """

    model: GameModel
    max_cycles: int
    render_mode: str | None
    _shows_leader: bool = False

    def _init_dynamics(
        self,
        model: GameModel,
        max_cycles: int | None,
        render_mode: str | None,
        observation: str,
        discount_as_termination: bool,
        name: str | None,
    ) -> None:
        if not isinstance(model, GameModel):
            raise ValueError(f"model must be a GameModel, got {type(model).__name__}")
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(
                f"render_mode must be None or one of {RENDER_MODES}, got {render_mode!r}"
            )
        if not isinstance(discount_as_termination, bool):
            raise ValueError(
                f"discount_as_termination must be True or False, got {discount_as_termination!r}"
            )
        self.model = model
        self.observation_format = observations.check_observation(observation)
        self.discount_as_termination = discount_as_termination
        self.max_cycles = (
            default_max_cycles(model.gamma, discount_as_termination)
            if max_cycles is None
            else positive_int("max_cycles", max_cycles)
        )
        self.render_mode = render_mode
        self.discount = 1.0 if discount_as_termination else float(model.gamma)
        # instance metadata: the name and the discount belong to this game, not to the class
        self.metadata = {
            "name": name or f"stackelberg/{model.name}",
            "render_modes": list(RENDER_MODES),
            "is_parallelizable": not self._shows_leader,
            "gamma": float(model.gamma),
            "discount": self.discount,
        }
        self._np_random: np.random.Generator | None = None
        self._np_random_seed: int | None = None
        self._seeded = False
        self._state = 0
        self._cycle = 0
        self._last_round: Round | None = None
        n_leader = model.n_leader_actions if self._shows_leader else 0
        self.state_space = observations.unit_box(model.n_states + n_leader + 1)

    # -- randomness ---------------------------------------------------------------------------

    @property
    def np_random(self) -> np.random.Generator:
        """The environment's generator; drawn from entropy at first use unless seeded."""
        if self._np_random is None:
            self._np_random, self._np_random_seed = seeding.np_random(None)
        return self._np_random

    @np_random.setter
    def np_random(self, value: np.random.Generator) -> None:
        self._np_random, self._np_random_seed, self._seeded = value, None, True

    @property
    def np_random_seed(self) -> int | None:
        """The seed of the current generator (``None`` before it exists)."""
        return self._np_random_seed

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if not self._seeded:  # a stream from entropy is never shared: the copy draws its own
            state["_np_random"] = state["_np_random_seed"] = None
        return state

    # -- one round ----------------------------------------------------------------------------

    def _reset_dynamics(self, seed: int | None) -> None:
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(seed)
            self._seeded = True
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

    def _episode_end(self) -> EpisodeEnd:
        """After a round: terminate (one-shot game, or the ``1 - gamma`` coin) or truncate."""
        if self.discount_as_termination:
            terminated = bool(self.np_random.random() >= self.model.gamma)
        else:
            terminated = self.model.gamma == 0 and self._cycle >= self.max_cycles
        return EpisodeEnd(terminated, not terminated and self._cycle >= self.max_cycles)

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

    # -- what agents see ----------------------------------------------------------------------

    def _leader_part(self) -> np.ndarray:
        """The leader's move shown this round (zeros if none); used when ``_shows_leader``."""
        return np.zeros(self.model.n_leader_actions, dtype=np.float32)

    def _encode(self, agent: str) -> np.ndarray:
        part = self._leader_part() if self._shows_leader else None
        return observations.one_hot(self.model.n_states, self._state, part, AGENTS.index(agent))

    def _onehot_spaces(self) -> dict[str, spaces.Space]:
        n_leader = self.model.n_leader_actions if self._shows_leader else 0
        shared = observations.unit_box(self.model.n_states + n_leader + 2)
        return dict.fromkeys(AGENTS, shared)

    def state(self) -> np.ndarray:
        """Global state ``[one-hot state | leader part | round / max_cycles]`` (``float32``)."""
        encoded = np.zeros(self.state_space.shape, dtype=np.float32)
        encoded[self._state] = 1.0
        if self._shows_leader:
            encoded[self.model.n_states : -1] = self._leader_part()
        encoded[-1] = min(self._cycle / self.max_cycles, 1.0)
        return encoded

    def _infos(self) -> dict[str, dict[str, Any]]:
        return {agent: {"state": self._state, "discount": self.discount} for agent in AGENTS}

    # -- rendering ----------------------------------------------------------------------------

    def _pending_row(self) -> int | None:
        return None

    def _pending_text(self) -> str | None:
        return None

    def _frame(self) -> Frame:
        return Frame(
            model=self.model,
            state=self._state,
            cycle=self._cycle,
            max_cycles=self.max_cycles,
            last=self._last_round,
            pending_row=self._pending_row(),
            pending_text=self._pending_text(),
        )

    def render(self) -> str | np.ndarray | None:
        """Text (``"ansi"``), a picture (``"rgb_array"``) or a printed text (``"human"``)."""
        if self.render_mode is None:
            logger.warn(f"render() called without a render_mode; pass one of {RENDER_MODES}.")
            return None
        if self.render_mode == "rgb_array":
            return draw(self._frame())
        text = describe(self._frame())
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def _render_human(self) -> None:
        if self.render_mode == "human":
            self.render()

    def close(self) -> None:
        """Nothing to release (pictures are drawn on a fresh canvas each time)."""


class StackelbergParallelEnv(_ModelDynamics, ParallelEnv):
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


class StackelbergAECEnv(_ModelDynamics, AECEnv):
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
