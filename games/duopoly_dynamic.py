"""``stackelberg/duopoly-dynamic-v0``: the duopoly of :mod:`games.duopoly` over several periods
with a demand that drifts (docs/theory.md §9).

The demand intercept is a state that carries over: ``a_0 = a`` and
``a_{t+1} = a + rho (a_t - a) + sigma a eps_t`` with ``eps_t ~ N(0, 1)`` drawn from the
environment's generator, clipped to ``[a / 2, 3 a / 2]`` (so the closed forms stay interior).
Each period is one round of the static game at ``P = a_t - b (q_L + q_F)``; an episode has
``periods`` rounds, after which every agent is truncated, and its objective is the discounted
sum with ``gamma`` (``metadata["gamma"]``, ``infos[agent]["discount"]``). The quantities do not
move the state, so a firm that observes ``a_t`` maximizes each period on its own: the
Stackelberg answer of period ``t`` is the static one at ``a_t``
(:meth:`DuopolyDynamicParallelEnv.stackelberg_at`), the ground truth a learner is checked
against.

Observations: the leader ``[a_t / a]``; the follower ``[a_t / a, commitment...]`` (the leader's
declared commitment, :meth:`commit`, as in :class:`games.duopoly.DuopolyParallelEnv`). Actions
``Box(0, 3a/(2b))``, clipped if finite and refused if not, as in :mod:`games.duopoly`. The AEC
form is PettingZoo's conversion of the parallel one (the round is played when both have acted).

:meth:`DuopolyDynamicParallelEnv.fast_batch` is the vectorized fast path
(:mod:`stackelberg.simulator`): many copies stepped as arrays, each copy drawing its demand shocks
from its own generator seeded as :meth:`reset` seeds it, so the numbers are those of the
per-copy environments exactly (the tests check it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from games.duopoly import (
    AGENTS,
    FOLLOWER,
    LEADER,
    DuopolyMarket,
    DuopolyOutcome,
    checked_commitment,
    checked_quantity,
)

__all__ = ["DuopolyDynamicBatch", "DuopolyDynamicParallelEnv", "duopoly_dynamic_env"]


class DuopolyDynamicParallelEnv(ParallelEnv):
    """Several periods of the duopoly under a drifting demand intercept (module docstring)."""

    metadata = {"render_modes": ["human", "ansi"], "name": "stackelberg/duopoly-dynamic-v0",
                "is_parallelizable": True}

    def __init__(self, market: DuopolyMarket, periods: int = 8, gamma: float = 0.9,
                 rho: float = 0.8, sigma: float = 0.1, commitment_size: int = 2,
                 render_mode: str | None = None) -> None:
        if not (isinstance(periods, int) and periods >= 1):
            raise ValueError(f"duopoly-dynamic: periods must be an integer >= 1, got {periods!r}")
        for name, value, low, high in (("gamma", gamma, 0.0, 1.0), ("rho", rho, 0.0, 1.0),
                                       ("sigma", sigma, 0.0, 1.0)):
            if not (isinstance(value, (int, float)) and low <= value <= high):
                raise ValueError(f"duopoly-dynamic: {name} must be in [{low}, {high}], "
                                 f"got {value!r}")
        if render_mode not in (None, "human", "ansi"):
            raise ValueError(f"render_mode must be 'human', 'ansi' or None, got {render_mode!r}")
        self.market, self.periods, self.gamma = market, periods, float(gamma)
        self.rho, self.sigma, self.render_mode = float(rho), float(sigma), render_mode
        self.metadata = {**self.metadata, "gamma": self.gamma, "discount": self.gamma}
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        self.commitment = np.zeros(commitment_size, dtype=np.float32)
        self.q_max = 1.5 * market.a / market.b
        quantity = spaces.Box(0.0, np.float32(self.q_max), shape=(1,), dtype=np.float32)
        self.action_spaces = {a: quantity for a in AGENTS}
        self.observation_spaces = {
            LEADER: spaces.Box(0.5, 1.5, shape=(1,), dtype=np.float32),
            FOLLOWER: spaces.Box(-np.inf, np.inf, shape=(1 + commitment_size,),
                                 dtype=np.float32),
        }
        # state(): the demand level a_t / a and the share of the periods played
        self.state_space = spaces.Box(np.array([0.5, 0.0], dtype=np.float32),
                                      np.array([1.5, 1.0], dtype=np.float32), dtype=np.float32)
        self.intercept = market.a
        self.t = 0
        self.last_round: DuopolyOutcome | None = None

    def observation_space(self, agent: str) -> spaces.Box:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Box:
        return self.action_spaces[agent]

    def market_at(self, intercept: float) -> DuopolyMarket:
        """The static market of a period whose intercept is ``intercept``."""
        m = self.market
        return DuopolyMarket(intercept, m.b, m.cost_leader, m.cost_follower)

    def stackelberg_at(self, intercept: float) -> DuopolyOutcome:
        """The period's Stackelberg answer (the quantities do not move the state)."""
        return self.market_at(intercept).stackelberg()

    def commit(self, commitment: np.ndarray) -> None:
        """Declare the leader's commitment (shown to the follower from the next observation)."""
        self.commitment = checked_commitment(commitment, self.commitment.size)

    def _observations(self) -> dict[str, np.ndarray]:
        level = np.float32(self.intercept / self.market.a)
        return {LEADER: np.array([level], dtype=np.float32),
                FOLLOWER: np.concatenate([[level], self.commitment]).astype(np.float32)}

    def state(self) -> np.ndarray:
        return np.array([self.intercept / self.market.a, self.t / self.periods],
                        dtype=np.float32)

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None or not hasattr(self, "np_random"):
            self.np_random = np.random.default_rng(seed)
        self.agents = list(AGENTS)
        self.t, self.intercept, self.last_round = 0, self.market.a, None
        infos = {a: {"discount": self.gamma, "intercept": self.intercept} for a in AGENTS}
        return self._observations(), infos

    def step(self, actions: dict[str, Any]):
        market = self.market_at(self.intercept)
        q_leader = checked_quantity(market, LEADER, actions[LEADER])
        q_follower = checked_quantity(market, FOLLOWER, actions[FOLLOWER])
        self.last_round = market.outcome(q_leader, q_follower)
        rewards = {LEADER: self.last_round.profit_leader,
                   FOLLOWER: self.last_round.profit_follower}
        a = self.market.a
        drift = a + self.rho * (self.intercept - a) + self.sigma * a * self.np_random.normal()
        self.intercept = float(np.clip(drift, 0.5 * a, 1.5 * a))
        self.t += 1
        done = self.t >= self.periods
        observations = self._observations()
        infos = {ag: {"discount": self.gamma, "intercept": self.intercept} for ag in self.agents}
        terminations = {ag: False for ag in self.agents}
        truncations = {ag: done for ag in self.agents}
        if done:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return observations, rewards, terminations, truncations, infos

    def fast_batch(self, seeds) -> DuopolyDynamicBatch:
        """Copies of this environment (its market, periods and commitment), one per seed,
        stepped together (module docstring)."""
        return DuopolyDynamicBatch(self, seeds)

    def render(self) -> str | None:
        if self.render_mode is None:
            return None
        r = self.last_round
        text = (f"stackelberg/duopoly-dynamic-v0: period {self.t}/{self.periods}, "
                f"a_t = {self.intercept:.4g}")
        if r is not None:
            text += f"\nq = ({r.q_leader:.4g}, {r.q_follower:.4g}), price {r.price:.4g}"
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def close(self) -> None:
        pass


class DuopolyDynamicBatch:
    """Copies of a :class:`DuopolyDynamicParallelEnv` as arrays, each reset with its seed:
    ``observations()`` and ``step(actions)`` give what the copies' ``reset`` and ``step``
    give, stacked (a copy's demand shocks come from ``default_rng(seed)``, as in :meth:`reset`).
    """

    def __init__(self, env: DuopolyDynamicParallelEnv, seeds) -> None:
        self.env = env
        self.generators = [np.random.default_rng(int(s)) for s in seeds]
        self.intercept = np.full(len(self.generators), float(env.market.a))
        self.t = 0

    def observations(self) -> dict[str, np.ndarray]:
        level = (self.intercept / self.env.market.a).astype(np.float32)[:, None]
        shown = np.broadcast_to(self.env.commitment, (len(level), self.env.commitment.size))
        return {LEADER: level, FOLLOWER: np.concatenate([level, shown], axis=1)}

    def step(self, actions: dict[str, np.ndarray]
             ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], bool]:
        """One period in every copy: the next observations, the profits, and whether the
        episode ended (all copies end together, after ``periods`` periods)."""
        m = self.env.market
        quantities = {}
        for agent in AGENTS:
            q = np.asarray(actions[agent], dtype=np.float64).reshape(len(self.intercept), -1)
            if q.shape[1] != 1:
                raise ValueError(f"{agent}: a duopoly action is one quantity, got shape "
                                 f"{np.shape(actions[agent])[1:]}")
            if not np.all(np.isfinite(q)):
                bad = q[~np.isfinite(q)][0]
                raise ValueError(f"{agent}: a quantity must be finite, got {bad!r}")
            # the period's market sells at most a_t / b (checked_quantity's Box)
            quantities[agent] = np.clip(q[:, 0], 0.0, self.intercept / m.b)
        price = self.intercept - m.b * (quantities[LEADER] + quantities[FOLLOWER])
        rewards = {LEADER: (price - m.cost_leader) * quantities[LEADER],
                   FOLLOWER: (price - m.cost_follower) * quantities[FOLLOWER]}
        shocks = np.array([g.normal() for g in self.generators])
        a = m.a
        drift = a + self.env.rho * (self.intercept - a) + self.env.sigma * a * shocks
        self.intercept = np.clip(drift, 0.5 * a, 1.5 * a)
        self.t += 1
        return self.observations(), rewards, self.t >= self.env.periods


def duopoly_dynamic_env(kind: str = "parallel", max_cycles: int | None = None,
                        render_mode: str | None = None, *, a: float = 10.0, b: float = 1.0,
                        cost_leader: float = 2.0, cost_follower: float = 2.0,
                        gamma: float = 0.9, rho: float = 0.8, sigma: float = 0.1,
                        commitment_size: int = 2):
    """``stackelberg/duopoly-dynamic-v0`` in the environment-factory form of ``games.registry``;
    ``max_cycles`` is the number of periods (default 8)."""
    market = DuopolyMarket(a, b, cost_leader, cost_follower)
    env = DuopolyDynamicParallelEnv(market, 8 if max_cycles is None else max_cycles, gamma, rho,
                                    sigma, commitment_size, render_mode)
    if kind == "parallel":
        return env
    if kind == "aec":
        return parallel_to_aec(env)
    raise ValueError(f"kind must be 'parallel' or 'aec', got {kind!r}")

