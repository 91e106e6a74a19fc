"""The Stackelberg duopoly: quantity competition with continuous actions (docs/theory.md §9).

Two firms sell one good. The leader commits to a quantity ``q_L``, the follower answers with
``q_F``; the price is the linear inverse demand ``P = a - b (q_L + q_F)`` and a firm with
marginal cost ``c`` earns ``(P - c) q``. Closed forms (von Stackelberg's textbook solution,
derived in docs/theory.md §9; the tests check them against brute force):

- the follower's best response   ``q_F(q_L) = (a - c_F - b q_L) / (2b)``;
- Stackelberg                    ``q_L = (a - 2 c_L + c_F) / (2b)``,
                                 ``q_F = (a + 2 c_L - 3 c_F) / (4b)``,
  profits                        ``(a - 2 c_L + c_F)^2 / (8b)``,
                                 ``(a + 2 c_L - 3 c_F)^2 / (16b)``;
- Cournot-Nash (simultaneous)    ``q_i = (a - 2 c_i + c_j) / (3b)``.

With ``a = 10, b = 1, c_L = c_F = 2`` (the defaults) Stackelberg is ``(4, 2)`` with profits
``(8, 4)`` and Cournot ``8/3`` each; with ``a = 100, b = 1, c_L = 10, c_F = 20`` Stackelberg is
``(50, 15)`` at price 35 with profits ``(1250, 225)``.

Environments (PettingZoo; agents ``"leader_0"`` and ``"follower_0"`` as in :mod:`games.env`):

- :class:`DuopolyAECEnv` - the leader moves first and the follower *observes her quantity*;
- :class:`DuopolyParallelEnv` - both move at once and the follower observes the leader's
  *commitment*: a vector the leader declares with :meth:`DuopolyParallelEnv.commit` (her policy's
  parameters), as in the exact problems where the follower answers a committed mixed strategy.

Both take quantities in ``Box(0, q_max)`` with ``q_max = a / b`` (beyond it the price is negative
whatever the other firm does). A finite action outside the Box is *clipped* to it (the firm sells
what it can: nothing below 0, ``q_max`` at most); a non-finite action (NaN, inf) is *refused*
with ``ValueError`` - so no reward is ever NaN. Each cycle is one market round (the static game
repeated ``max_cycles`` times, default 1: the one-shot game), after which every agent is
truncated. :func:`round_profits` is the vectorized fast path: the same rewards for arrays of
quantities, which :mod:`stackelberg.simulator` uses when an environment offers it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils import AgentSelector

LEADER, FOLLOWER = "leader_0", "follower_0"
AGENTS = (LEADER, FOLLOWER)
RENDER_MODES = ("human", "ansi")

__all__ = ["AGENTS", "FOLLOWER", "LEADER", "DuopolyAECEnv", "DuopolyMarket", "DuopolyOutcome",
           "DuopolyParallelEnv", "duopoly_env", "round_profits"]


@dataclass(frozen=True)
class DuopolyOutcome:
    """Quantities, price and profits of one round."""

    q_leader: float
    q_follower: float
    price: float
    profit_leader: float
    profit_follower: float


@dataclass(frozen=True)
class DuopolyMarket:
    """Inverse demand ``P = a - b Q`` and the firms' marginal costs (module docstring)."""

    a: float = 10.0
    b: float = 1.0
    cost_leader: float = 2.0
    cost_follower: float = 2.0

    def __post_init__(self) -> None:
        for name in ("a", "b", "cost_leader", "cost_follower"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise ValueError(f"duopoly: {name} must be a finite number, got {value!r}")
        if self.b <= 0:
            raise ValueError(f"duopoly: b must be > 0, got {self.b!r}")
        if min(self.cost_leader, self.cost_follower) < 0:
            raise ValueError("duopoly: cost_leader and cost_follower must be >= 0")
        # both firms produce at the Stackelberg point (the closed forms assume interior answers)
        if self.a - 2 * self.cost_leader + self.cost_follower <= 0 \
                or self.a + 2 * self.cost_leader - 3 * self.cost_follower <= 0:
            raise ValueError(
                f"duopoly: costs ({self.cost_leader}, {self.cost_follower}) too high for a = "
                f"{self.a}: need a - 2 c_L + c_F > 0 and a + 2 c_L - 3 c_F > 0")

    @property
    def q_max(self) -> float:
        """The upper end of the quantity Box: the price is <= 0 past it."""
        return self.a / self.b

    def outcome(self, q_leader: float, q_follower: float) -> DuopolyOutcome:
        """Price and profits of quantities already in the Box."""
        price = self.a - self.b * (q_leader + q_follower)
        return DuopolyOutcome(q_leader, q_follower, price, (price - self.cost_leader) * q_leader,
                              (price - self.cost_follower) * q_follower)

    def best_response(self, q_leader: float) -> float:
        """The follower's profit-maximizing quantity against ``q_leader`` (0 if it pays none)."""
        return max(0.0, (self.a - self.cost_follower - self.b * q_leader) / (2 * self.b))

    def stackelberg(self) -> DuopolyOutcome:
        """The leader maximizes her profit along the follower's best response."""
        q_leader = (self.a - 2 * self.cost_leader + self.cost_follower) / (2 * self.b)
        return self.outcome(q_leader, self.best_response(q_leader))

    def cournot(self) -> DuopolyOutcome:
        """The simultaneous-move (Cournot-Nash) equilibrium: each a best response to the other."""
        q_leader = (self.a - 2 * self.cost_leader + self.cost_follower) / (3 * self.b)
        q_follower = (self.a - 2 * self.cost_follower + self.cost_leader) / (3 * self.b)
        return self.outcome(q_leader, q_follower)


def round_profits(market: DuopolyMarket, q_leader: np.ndarray, q_follower: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Both profits for arrays of quantities (clipped to the Box as the environments do)."""
    q_leader = np.clip(q_leader, 0.0, market.q_max)
    q_follower = np.clip(q_follower, 0.0, market.q_max)
    price = market.a - market.b * (q_leader + q_follower)
    return (price - market.cost_leader) * q_leader, (price - market.cost_follower) * q_follower


def checked_quantity(market: DuopolyMarket, agent: str, action: Any) -> float:
    """The action as a quantity in the Box: clipped if finite, refused if not (module docstring)."""
    value = np.asarray(action, dtype=np.float64).reshape(-1)
    if value.size != 1:
        raise ValueError(f"{agent}: a duopoly action is one quantity, got shape "
                         f"{np.shape(action)}")
    if not np.isfinite(value[0]):
        raise ValueError(f"{agent}: a quantity must be finite, got {value[0]!r}")
    return float(np.clip(value[0], 0.0, market.q_max))


def checked_commitment(commitment: np.ndarray, size: int) -> np.ndarray:
    """A leader's commitment as ``size`` finite float32 numbers, or a ValueError."""
    value = np.asarray(commitment, dtype=np.float32).reshape(-1)
    if value.shape != (size,) or not np.all(np.isfinite(value)):
        raise ValueError(f"a commitment is {size} finite numbers, got {commitment!r}")
    return value


def _check_common(max_cycles: int, render_mode: str | None) -> None:
    if not (isinstance(max_cycles, int) and not isinstance(max_cycles, bool) and max_cycles >= 1):
        raise ValueError(f"max_cycles must be an integer >= 1, got {max_cycles!r}")
    if render_mode not in (None, *RENDER_MODES):
        raise ValueError(f"render_mode must be one of {RENDER_MODES} or None, got {render_mode!r}")


class _DuopolyBase:
    """What both environments share: the market, spaces, text rendering."""

    market: DuopolyMarket
    render_mode: str | None
    last_round: DuopolyOutcome | None

    def _quantity_space(self) -> spaces.Box:
        return spaces.Box(0.0, np.float32(self.market.q_max), shape=(1,), dtype=np.float32)

    def _state_space(self) -> spaces.Box:
        """``state()``: the last quantities of both firms."""
        return spaces.Box(0.0, np.float32(self.market.q_max), shape=(2,), dtype=np.float32)

    def _text(self) -> str:
        m = self.market
        head = (f"stackelberg/duopoly-v0: P = {m.a:g} - {m.b:g} Q, costs "
                f"({m.cost_leader:g}, {m.cost_follower:g})")
        r = self.last_round
        if r is None:
            return head + "\n(no round played)"
        return (head + f"\nq = ({r.q_leader:.4g}, {r.q_follower:.4g}), price {r.price:.4g}, "
                f"profits ({r.profit_leader:.4g}, {r.profit_follower:.4g})")

    def render(self) -> str | None:
        if self.render_mode is None:
            return None
        text = self._text()
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def close(self) -> None:
        pass


class DuopolyAECEnv(_DuopolyBase, AECEnv):
    """Leader then follower; the follower observes the leader's quantity (module docstring).

    Observations are ``Box(0, q_max, (1,))``: the leader sees the previous round's leader
    quantity (0 before the first), the follower the quantity the leader has just chosen.
    """

    metadata = {"render_modes": list(RENDER_MODES), "name": "stackelberg/duopoly-v0",
                "is_parallelizable": False}

    def __init__(self, market: DuopolyMarket, max_cycles: int = 1,
                 render_mode: str | None = None) -> None:
        super().__init__()
        _check_common(max_cycles, render_mode)
        self.market, self.max_cycles, self.render_mode = market, max_cycles, render_mode
        self.possible_agents = list(AGENTS)
        self.observation_spaces = {a: self._quantity_space() for a in AGENTS}
        self.action_spaces = {a: self._quantity_space() for a in AGENTS}
        self.state_space = self._state_space()
        self.last_round = None

    def observation_space(self, agent: str) -> spaces.Box:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Box:
        return self.action_spaces[agent]

    def observe(self, agent: str) -> np.ndarray:
        return np.array([self._shown[agent]], dtype=np.float32)

    def state(self) -> np.ndarray:
        return np.array([self._shown[LEADER], self._shown[FOLLOWER]], dtype=np.float32)

    def reset(self, seed: int | None = None, options: dict | None = None) -> None:
        # the market has no randomness; the generator exists for the API's sake
        self.np_random = np.random.default_rng(seed)
        self.agents = list(AGENTS)
        self.rewards = {a: 0.0 for a in AGENTS}
        self._cumulative_rewards = {a: 0.0 for a in AGENTS}
        self.terminations = {a: False for a in AGENTS}
        self.truncations = {a: False for a in AGENTS}
        self.infos = {a: {} for a in AGENTS}
        self._shown = {LEADER: 0.0, FOLLOWER: 0.0}
        self._selector = AgentSelector(self.agents)
        self.agent_selection = self._selector.reset()
        self.rounds, self.last_round = 0, None

    def step(self, action: Any) -> None:
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        self._cumulative_rewards[agent] = 0.0
        q = checked_quantity(self.market, agent, action)
        if agent == LEADER:
            self._q_leader = q
            self._shown[FOLLOWER] = q
            self._clear_rewards()
        else:
            self.last_round = self.market.outcome(self._q_leader, q)
            self.rewards = {LEADER: self.last_round.profit_leader,
                            FOLLOWER: self.last_round.profit_follower}
            self._shown[LEADER] = self._q_leader
            self.rounds += 1
            if self.rounds >= self.max_cycles:
                self.truncations = {a: True for a in self.agents}
            if self.render_mode == "human":
                self.render()
        self.agent_selection = self._selector.next()
        self._accumulate_rewards()


class DuopolyParallelEnv(_DuopolyBase, ParallelEnv):
    """Simultaneous quantities; the follower observes the leader's commitment (module docstring).

    The leader observes a constant ``[0.]``; the follower the commitment vector of length
    ``commitment_size`` last passed to :meth:`commit` (zeros until then), unbounded Box.
    """

    metadata = {"render_modes": list(RENDER_MODES), "name": "stackelberg/duopoly-v0",
                "is_parallelizable": True}

    def __init__(self, market: DuopolyMarket, max_cycles: int = 1,
                 render_mode: str | None = None, commitment_size: int = 2) -> None:
        _check_common(max_cycles, render_mode)
        if not (isinstance(commitment_size, int) and commitment_size >= 1):
            raise ValueError(f"commitment_size must be an integer >= 1, got {commitment_size!r}")
        self.market, self.max_cycles, self.render_mode = market, max_cycles, render_mode
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        self.commitment = np.zeros(commitment_size, dtype=np.float32)
        self.observation_spaces = {
            LEADER: spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32),
            FOLLOWER: spaces.Box(-np.inf, np.inf, shape=(commitment_size,), dtype=np.float32),
        }
        self.action_spaces = {a: self._quantity_space() for a in AGENTS}
        self.state_space = self._state_space()
        self.last_round = None

    def observation_space(self, agent: str) -> spaces.Box:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Box:
        return self.action_spaces[agent]

    def commit(self, commitment: np.ndarray) -> None:
        """Declare the leader's commitment (shown to the follower from the next observation)."""
        self.commitment = checked_commitment(commitment, self.commitment.size)

    def _observations(self) -> dict[str, np.ndarray]:
        return {LEADER: np.zeros(1, dtype=np.float32), FOLLOWER: self.commitment.copy()}

    def state(self) -> np.ndarray:
        r = self.last_round
        return np.array([0.0, 0.0] if r is None else [r.q_leader, r.q_follower], dtype=np.float32)

    def reset(self, seed: int | None = None, options: dict | None = None):
        self.np_random = np.random.default_rng(seed)
        self.agents = list(AGENTS)
        self.rounds, self.last_round = 0, None
        return self._observations(), {a: {} for a in AGENTS}

    def step(self, actions: dict[str, Any]):
        q_leader = checked_quantity(self.market, LEADER, actions[LEADER])
        q_follower = checked_quantity(self.market, FOLLOWER, actions[FOLLOWER])
        self.last_round = self.market.outcome(q_leader, q_follower)
        self.rounds += 1
        done = self.rounds >= self.max_cycles
        rewards = {LEADER: self.last_round.profit_leader,
                   FOLLOWER: self.last_round.profit_follower}
        observations = self._observations()
        terminations = {a: False for a in self.agents}
        truncations = {a: done for a in self.agents}
        infos = {a: {} for a in self.agents}
        if done:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return observations, rewards, terminations, truncations, infos

    def fast_round(self, q_leader: np.ndarray, q_follower: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
        """The vectorized fast path: rewards of many one-round copies at once."""
        return round_profits(self.market, q_leader, q_follower)


def duopoly_env(kind: str = "parallel", max_cycles: int | None = None,
                render_mode: str | None = None, *, a: float = 10.0, b: float = 1.0,
                cost_leader: float = 2.0, cost_follower: float = 2.0,
                commitment_size: int = 2) -> DuopolyAECEnv | DuopolyParallelEnv:
    """``stackelberg/duopoly-v0`` in the environment-factory form of ``games.registry``:
    ``kind`` ``"aec"`` (the follower sees the leader's quantity) or ``"parallel"`` (he sees her
    commitment)."""
    market = DuopolyMarket(a, b, cost_leader, cost_follower)
    cycles = 1 if max_cycles is None else max_cycles
    if kind == "aec":
        return DuopolyAECEnv(market, cycles, render_mode)
    if kind == "parallel":
        return DuopolyParallelEnv(market, cycles, render_mode, commitment_size)
    raise ValueError(f"kind must be 'parallel' or 'aec', got {kind!r}")
