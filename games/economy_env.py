"""PettingZoo environments of an incentive economy: ``planner_0`` and ``follower_0 .. n-1``.

They sample from an exact :class:`~stackelberg.economy.IncentiveEconomy` (docs/theory.md §7),
so the sampled and the exact worlds agree: the initial state from ``rho``, the next state from
``P[s, a]`` with ``a`` the followers' joint action (row-major), and the rewards of a round are

- follower ``i``: ``r_i(s, a) + (Phi_i g)(s, a)``, its own reward plus the transfer it receives;
- planner: ``sum_i r_i(s, a) - c sum_i (Psi_i g)(s, a)``, welfare minus ``c`` times what it
  counts as paid (the payment map ``Psi``, :mod:`stackelberg.incentives`).

The planner's action is the vector ``g`` of instrument levels (a ``Box``): within ``[lo, hi]``
for a box range, within ``[0, budget]`` each for a budget, where levels summing to more than
the budget are scaled down to it (the exact model's planner commits to a stationary ``g``; here
it may change every round). Followers choose ``Discrete(E_i)`` levels.

:class:`EconomyParallelEnv` plays every move at once (followers see the levels in force from
the previous round); in :class:`EconomyAECEnv` the planner moves first and the followers, in
turn, see the levels it just set (but not each other's moves) before the round is played.

Observations, one-hot form: ``[one-hot state (S) | levels in force, scaled to [0, 1] (K) |
agent indicator (n + 1)]``; index form: the state index. ``state()`` is ``[one-hot state |
scaled levels | round / max_cycles]``. Episodes end as in :mod:`games.env` (truncation after
``max_cycles`` rounds, or termination with probability ``1 - gamma`` per round under
``discount_as_termination``); ``render_mode`` ``"human"`` or ``"ansi"`` (text).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import logger, spaces
from gymnasium.utils import seeding
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils import AgentSelector

from games import observations
from games.dynamics import default_max_cycles
from stackelberg.economy import IncentiveEconomy
from stackelberg.incentives import Budget
from stackelberg.validation import positive_int

PLANNER = "planner_0"  # PettingZoo advises <descriptor>_<number> names (as leader_0)
RENDER_MODES = ("human", "ansi")


def follower_name(i: int) -> str:
    return f"follower_{i}"


class _EconomyDynamics:
    """Model sampling shared by both environments (the only place rewards and next states are
    drawn: :meth:`_play_round`)."""

    metadata: dict[str, Any]

    def _init_economy(self, economy: IncentiveEconomy, max_cycles: int | None,
                      render_mode: str | None, observation: str, discount_as_termination: bool,
                      name: str | None) -> None:
        if not isinstance(economy, IncentiveEconomy):
            raise ValueError(f"economy must be an IncentiveEconomy, got {type(economy).__name__}")
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(
                f"render_mode must be None or one of {RENDER_MODES}, got {render_mode!r}")
        if not isinstance(discount_as_termination, bool):
            raise ValueError(
                f"discount_as_termination must be True or False, got {discount_as_termination!r}")
        self.model = economy
        base = economy.base
        self.observation_format = observations.check_observation(observation)
        self.discount_as_termination = discount_as_termination
        self.max_cycles = (default_max_cycles(base.gamma, discount_as_termination)
                           if max_cycles is None else positive_int("max_cycles", max_cycles))
        self.render_mode = render_mode
        self.discount = 1.0 if discount_as_termination else float(base.gamma)
        self.metadata = {"name": name or f"stackelberg/{economy.name}",
                         "render_modes": list(RENDER_MODES),
                         "is_parallelizable": isinstance(self, ParallelEnv),
                         "gamma": float(base.gamma), "discount": self.discount}
        n, K = base.n_followers, economy.incentives.x_shape[0]
        self.possible_agents = [PLANNER, *(follower_name(i) for i in range(n))]
        self.agents: list[str] = []
        range_map = economy.incentives.range_map
        if isinstance(range_map, Budget):
            self._lo, self._hi = np.zeros(K), np.full(K, range_map.budget)
        else:
            self._lo, self._hi = range_map.lo, range_map.hi
        self._idle = np.clip(0.0, self._lo, self._hi)  # the levels in force before any move
        planner_space = spaces.Box(self._lo.astype(np.float32), self._hi.astype(np.float32),
                                   dtype=np.float32)
        self.action_spaces = {PLANNER: planner_space, **{
            follower_name(i): spaces.Discrete(k) for i, k in enumerate(base.action_sizes)}}
        S = base.n_states
        if self.observation_format == observations.INDEX:
            shared: spaces.Space = spaces.Discrete(S)
        else:
            shared = observations.unit_box(S + K + n + 1)
        self.observation_spaces = dict.fromkeys(self.possible_agents, shared)
        self.state_space = observations.unit_box(S + K + 1)
        self._np_random: np.random.Generator | None = None
        self._np_random_seed: int | None = None
        self._state, self._cycle = 0, 0
        self._levels = self._idle.copy()
        self._last: str | None = None

    # -- randomness (as in games.env: a generator from entropy unless seeded) ------------------

    @property
    def np_random(self) -> np.random.Generator:
        if self._np_random is None:
            self._np_random, self._np_random_seed = seeding.np_random(None)
        return self._np_random

    @property
    def np_random_seed(self) -> int | None:
        return self._np_random_seed

    def _reset_economy(self, seed: int | None) -> None:
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(seed)
        base = self.model.base
        self._state = int(self.np_random.choice(base.n_states, p=base.rho))
        self._cycle = 0
        self._levels = self._idle.copy()
        self._last = None
        self.agents = list(self.possible_agents)

    # -- one round ------------------------------------------------------------------------------

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    def _checked_levels(self, action: Any) -> np.ndarray:
        space = self.action_spaces[PLANNER]
        levels = None if action is None else np.asarray(action, dtype=np.float32)
        if levels is None or levels.shape != space.shape or not space.contains(levels):
            raise ValueError(f"invalid action for {PLANNER}: {action!r} is not in {space}")
        levels = levels.astype(float)
        range_map = self.model.incentives.range_map
        if isinstance(range_map, Budget) and levels.sum() > range_map.budget:
            levels *= range_map.budget / levels.sum()  # onto the budget, keeping the proportions
        return levels

    def _checked_effort(self, agent: str, action: Any) -> int:
        space = self.action_spaces[agent]
        if action is None or not space.contains(action):
            raise ValueError(f"invalid action for {agent}: {action!r} is not in {space}")
        return int(action)

    def _play_round(self, efforts: list[int]) -> dict[str, float]:
        """Play the round at the current levels; return every agent's reward."""
        economy, base = self.model, self.model.base
        s = self._state
        a = int(np.ravel_multi_index(efforts, base.action_sizes))
        own = base.r[:, s, a]
        transfers = economy.incentives.features[:, s, a, :] @ self._levels
        paid = economy.incentives.payment_features[:, s, a, :] @ self._levels
        rewards = {PLANNER: float(own.sum() - economy.payment_cost * paid.sum())}
        rewards.update({follower_name(i): float(own[i] + transfers[i])
                        for i in range(base.n_followers)})
        self._state = int(self.np_random.choice(base.n_states, p=base.P[s, a]))
        self._cycle += 1
        self._last = (f"efforts {efforts}, rewards "
                      + ", ".join(f"{k}={v:.3g}" for k, v in rewards.items()))
        return rewards

    def _episode_end(self) -> tuple[bool, bool]:
        if self.discount_as_termination:
            terminated = bool(self.np_random.random() >= self.model.gamma)
        else:
            terminated = self.model.gamma == 0 and self._cycle >= self.max_cycles
        return terminated, not terminated and self._cycle >= self.max_cycles

    # -- what agents see ------------------------------------------------------------------------

    def _scaled_levels(self) -> np.ndarray:
        width = self._hi - self._lo
        return np.where(width > 0, (self._levels - self._lo) / np.where(width > 0, width, 1), 0)

    def _encode(self, agent: str) -> np.ndarray | np.int64:
        if self.observation_format == observations.INDEX:
            return np.int64(self._state)
        S, K = self.model.n_states, self._levels.size
        encoded = np.zeros(self.observation_spaces[agent].shape, dtype=np.float32)
        encoded[self._state] = 1.0
        encoded[S:S + K] = self._scaled_levels()
        encoded[S + K + self.possible_agents.index(agent)] = 1.0
        return encoded

    def state(self) -> np.ndarray:
        """``[one-hot state | scaled levels | round / max_cycles]`` (``float32``)."""
        S, K = self.model.n_states, self._levels.size
        encoded = np.zeros(self.state_space.shape, dtype=np.float32)
        encoded[self._state] = 1.0
        encoded[S:S + K] = self._scaled_levels()
        encoded[-1] = min(self._cycle / self.max_cycles, 1.0)
        return encoded

    def _infos(self) -> dict[str, dict[str, Any]]:
        return {agent: {"state": self._state, "discount": self.discount}
                for agent in self.possible_agents}

    def render(self) -> str | None:
        """The round as text (``"ansi"`` returns it, ``"human"`` prints it)."""
        if self.render_mode is None:
            logger.warn(f"render() called without a render_mode; pass one of {RENDER_MODES}.")
            return None
        economy = self.model
        levels = ", ".join(f"{name}={g:.3g}"
                           for name, g in zip(economy.instrument_names, self._levels, strict=True))
        text = (f"{economy.name} round {self._cycle}/{self.max_cycles}: "
                f"{economy.state_names[self._state]}; levels {levels}"
                + ("" if self._last is None else f"; last round {self._last}"))
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def _render_human(self) -> None:
        if self.render_mode == "human":
            self.render()

    def close(self) -> None:
        """Nothing to release."""


class EconomyParallelEnv(_EconomyDynamics, ParallelEnv):
    """Every agent moves at once (module docstring).

    Parameters
    ----------
    economy : IncentiveEconomy
        The exact economy; kept as ``self.model``.
    max_cycles, render_mode, observation, discount_as_termination, name
        As in :class:`games.env.StackelbergParallelEnv`.
    """

    metadata = {"name": "stackelberg-economy", "render_modes": list(RENDER_MODES),
                "is_parallelizable": True}

    def __init__(self, economy: IncentiveEconomy, max_cycles: int | None = None,
                 render_mode: str | None = None, observation: str = observations.ONEHOT,
                 discount_as_termination: bool = False, name: str | None = None) -> None:
        self._init_economy(economy, max_cycles, render_mode, observation,
                           discount_as_termination, name)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        self._reset_economy(seed)
        self._render_human()
        return {agent: self._encode(agent) for agent in self.agents}, self._infos()

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise RuntimeError("the episode is over (or never started): call reset() first")
        missing = [agent for agent in self.possible_agents if agent not in actions]
        if missing:
            raise ValueError(f"step() needs an action for every agent; missing {missing}")
        self._levels = self._checked_levels(actions[PLANNER])
        efforts = [self._checked_effort(agent, actions[agent]) for agent in self.agents[1:]]
        rewards = self._play_round(efforts)
        terminated, truncated = self._episode_end()
        agents = list(self.possible_agents)
        if terminated or truncated:
            self.agents = []
        self._render_human()
        return ({agent: self._encode(agent) for agent in agents}, rewards,
                dict.fromkeys(agents, terminated), dict.fromkeys(agents, truncated),
                self._infos())


class EconomyAECEnv(_EconomyDynamics, AECEnv):
    """The planner moves first, then the followers in turn (module docstring); the last
    follower's move plays the round. Parameters as :class:`EconomyParallelEnv`."""

    metadata = {"name": "stackelberg-economy", "render_modes": list(RENDER_MODES),
                "is_parallelizable": False}

    def __init__(self, economy: IncentiveEconomy, max_cycles: int | None = None,
                 render_mode: str | None = None, observation: str = observations.ONEHOT,
                 discount_as_termination: bool = False, name: str | None = None) -> None:
        self._init_economy(economy, max_cycles, render_mode, observation,
                           discount_as_termination, name)
        self._agent_selector = AgentSelector(self.possible_agents)
        self._efforts: list[int] = []

    def observe(self, agent: str) -> np.ndarray | np.int64:
        return self._encode(agent)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        self._reset_economy(seed)
        self._efforts = []
        self.rewards = dict.fromkeys(self.agents, 0.0)
        self._cumulative_rewards = dict.fromkeys(self.agents, 0.0)
        self.terminations = dict.fromkeys(self.agents, False)
        self.truncations = dict.fromkeys(self.agents, False)
        self.infos = self._infos()
        self.agent_selection = self._agent_selector.reset()
        self._render_human()

    def step(self, action: Any) -> None:
        if not self.agents:
            raise RuntimeError("the episode is over (or never started): call reset() first")
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        self._cumulative_rewards[agent] = 0.0
        if agent == PLANNER:
            self._levels = self._checked_levels(action)
            self._efforts = []
            self._clear_rewards()
        else:
            self._efforts.append(self._checked_effort(agent, action))
            if len(self._efforts) == self.model.n_followers:
                self.rewards = self._play_round(self._efforts)
                terminated, truncated = self._episode_end()
                self.terminations = dict.fromkeys(self.agents, terminated)
                self.truncations = dict.fromkeys(self.agents, truncated)
                self.infos = self._infos()
            else:
                self._clear_rewards()
        self.agent_selection = self._agent_selector.next()
        self._accumulate_rewards()
        self._render_human()
