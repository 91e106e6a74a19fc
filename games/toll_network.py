"""``stackelberg/toll-network-v0``: a planner tolls a road network, driver populations route
(docs/theory.md §11). A repeated congestion game as a PettingZoo environment.

Agents:

- ``"planner_0"``: action ``Box(toll_lower, toll_upper)``, one toll per edge (an infinite bound is
  replaced by ``max_toll``); reward minus the round's total travel time ``sum_e f_e l_e(f_e)``
  (tolls are transfers);
- ``"drivers_k"``, one per OD pair ``k``: action ``Box(0, 1)`` with one weight per path of the
  pair; the pair's demand splits over its paths in proportion (all zero: evenly); reward minus
  the pair's mean tolled travel cost per trip.

Every agent observes the last round's ``[edge flows | tolls | rounds left / max_cycles]``
(flows and tolls zero before the first round); ``state()`` is the same vector. The rounds are
deterministic: what the agents choose is the only source of change. After ``max_cycles`` rounds
every agent is truncated. The exact model (``env.model``) is the
:class:`~stackelberg.congestion.network.Network`; ``env.paths`` the drivers' path set (all
simple paths, or for a large network the untolled Wardrop equilibrium's generated paths).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec_wrapper
from pettingzoo.utils.wrappers import OrderEnforcingWrapper

from stackelberg.congestion.instances import NAMED, named
from stackelberg.congestion.network import Network, NetworkError
from stackelberg.congestion.tntp import sioux_falls

__all__ = ["PLANNER", "TollNetworkParallelEnv", "toll_network_env"]

PLANNER = "planner_0"
NETWORKS = (*NAMED, "sioux-falls")


def _network(name: str) -> Network:
    if name == "sioux-falls":
        return sioux_falls()
    if name not in NAMED:
        raise NetworkError(f"network must be one of {', '.join(NETWORKS)}, got {name!r}")
    return named(name)


class TollNetworkParallelEnv(ParallelEnv):
    """The planner and the driver populations of one network move simultaneously."""

    metadata = {"render_modes": ["human", "ansi"], "name": "stackelberg/toll-network-v0",
                "is_parallelizable": True}

    def __init__(self, network: Network, max_cycles: int = 10, max_toll: float = 10.0,
                 render_mode: str | None = None) -> None:
        if not (isinstance(max_cycles, int) and max_cycles >= 1):
            raise ValueError(f"max_cycles must be an integer >= 1, got {max_cycles!r}")
        if not (math.isfinite(max_toll) and max_toll > 0):
            raise ValueError(f"max_toll must be a finite number > 0, got {max_toll!r}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or "
                             f"None, got {render_mode!r}")
        self.model = network
        self.max_cycles, self.render_mode = max_cycles, render_mode
        # imported here: scipy.sparse is for the networks, not for every `stackelberg` command
        from stackelberg.congestion.equilibrium import solve_equilibrium

        self.paths = solve_equilibrium(network, tol=1e-4).paths
        self.possible_agents = [PLANNER, *(f"drivers_{k}" for k in range(network.n_pairs))]
        self.agents: list[str] = []
        low = np.where(np.isfinite(network.toll_lower), network.toll_lower, -max_toll)
        high = np.where(np.isfinite(network.toll_upper), network.toll_upper, max_toll)
        self._toll_space = (low.astype(np.float32), np.maximum(high, low).astype(np.float32))
        counts = np.diff([*self.paths.starts, self.paths.n_paths])
        self._action_spaces = {PLANNER: spaces.Box(*self._toll_space, dtype=np.float32)}
        for k in range(network.n_pairs):
            self._action_spaces[f"drivers_{k}"] = spaces.Box(0.0, 1.0, (int(counts[k]),),
                                                             dtype=np.float32)
        obs_low = np.concatenate([np.zeros(network.n_edges), low, [0.0]]).astype(np.float32)
        obs_high = np.concatenate([np.full(network.n_edges, network.demand.sum()),
                                   np.maximum(high, low), [1.0]]).astype(np.float32)
        self.state_space = spaces.Box(obs_low, obs_high, dtype=np.float32)
        self._observation_spaces = {agent: self.state_space for agent in self.possible_agents}
        self._flows = np.zeros(network.n_edges)
        self._tolls = np.zeros(network.n_edges)
        self._round = 0

    def observation_space(self, agent: str) -> spaces.Space:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self._action_spaces[agent]

    def state(self) -> np.ndarray:
        left = 1.0 - self._round / self.max_cycles
        vector = np.concatenate([self._flows, self._tolls, [left]]).astype(np.float32)
        return np.clip(vector, self.state_space.low, self.state_space.high)

    def _observations(self) -> dict[str, np.ndarray]:
        state = self.state()
        return {agent: state.copy() for agent in self.agents}

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            for i, agent in enumerate(self.possible_agents):
                self._action_spaces[agent].seed(seed + i)
        self.agents = list(self.possible_agents)
        self._flows = np.zeros(self.model.n_edges)
        self._tolls = np.zeros(self.model.n_edges)
        self._round = 0
        return self._observations(), {agent: {"round": 0} for agent in self.agents}

    def step(self, actions: dict[str, Any]):
        net, paths = self.model, self.paths
        tolls = np.clip(np.asarray(actions.get(PLANNER, self._tolls), dtype=float),
                        *self._toll_space)
        h = np.zeros(paths.n_paths)
        ends = [*paths.starts[1:], paths.n_paths]
        for k, (start, end) in enumerate(zip(paths.starts, ends, strict=True)):
            weights = np.clip(np.asarray(actions.get(f"drivers_{k}", np.ones(end - start)),
                                         dtype=float), 0.0, None)
            total = weights.sum()
            shares = weights / total if total > 0 else np.full(end - start, 1 / (end - start))
            h[start:end] = net.demand[k] * shares
        f = paths.incidence.T @ h
        latency = net.latency(f)
        cost = paths.incidence @ (latency + tolls)
        pair_cost = np.add.reduceat(h * cost, paths.starts) / net.demand
        self._flows, self._tolls, self._round = f, tolls, self._round + 1
        rewards = {PLANNER: -float(f @ latency)}
        rewards.update({f"drivers_{k}": -float(pair_cost[k]) for k in range(net.n_pairs)})
        done = self._round >= self.max_cycles
        observations = self._observations()
        terminations = {agent: False for agent in self.agents}
        truncations = {agent: done for agent in self.agents}
        infos = {agent: {"round": self._round} for agent in self.agents}
        if done:
            self.agents = []
        if self.render_mode == "human":
            print(self.render_text())
        return observations, rewards, terminations, truncations, infos

    def render_text(self) -> str:
        lines = [f"{self.model.name} round {self._round}/{self.max_cycles}"]
        for e in range(self.model.n_edges):
            lines.append(f"  {self.model.edge_label(e)}: flow {self._flows[e]:.4g}, "
                         f"toll {self._tolls[e]:.4g}")
        return "\n".join(lines)

    def render(self) -> str | None:
        if self.render_mode is None:
            return None
        text = self.render_text()
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def close(self) -> None:
        pass


class _TollNetworkAEC(parallel_to_aec_wrapper):
    """PettingZoo's conversion, showing the network as ``model`` like every other game."""

    @property
    def model(self) -> Network:
        return self.env.model


def toll_network_env(kind: str = "parallel", max_cycles: int | None = None,
                     render_mode: str | None = None, *, network: str = "braess",
                     max_toll: float = 10.0):
    """The environment of a named network (``pigou``, ``braess``, ``braess-no-shortcut``,
    ``sioux-falls``), ``kind`` ``"parallel"`` or ``"aec"`` (PettingZoo's conversion: the agents
    act in turn and the round is played when the last has acted)."""
    env = TollNetworkParallelEnv(_network(network), max_cycles=10 if max_cycles is None
                                 else max_cycles, max_toll=max_toll, render_mode=render_mode)
    if kind == "parallel":
        return env
    if kind == "aec":
        return OrderEnforcingWrapper(_TollNetworkAEC(env))
    raise ValueError(f"kind must be 'parallel' or 'aec', got {kind!r}")
