"""The model-sampling machinery that every environment shares (see :mod:`games.env`).

:class:`ModelDynamics` holds the model, the options, the generator, the current state and the
round counter; ``_play_round`` is the only place where rewards are read and next states are
drawn, and ``_episode_end`` the only place where an episode ends. The conventions it implements
(randomness per copy, episode ends, the discount, ``state()``, rendering) are described in
:mod:`games.env`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import logger, spaces
from gymnasium.utils import seeding

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


class ModelDynamics:
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
