"""Batched simulation of PettingZoo environments: the sampled side of DESIGN's "Exact or sampled".

A learner that has no exact model steps ``n`` copies of an environment at once and reads arrays:
``observations[agent]`` of shape ``(n, *obs_shape)``, ``rewards[agent]`` of shape ``(n,)``.
Every copy is seeded by its own integer drawn from the caller's ``numpy.random.Generator`` (no
global random state): same generator state, same rollouts. :class:`ParallelSimulator` steps
Parallel environments; :class:`AECSimulator` plays AEC environments in turn, asking a callback
for each agent's batch of actions (so the follower of ``stackelberg/duopoly-v0`` sees the
leader's quantities before he acts).

Copies run in lockstep over one episode: :meth:`ParallelSimulator.episode` resets all, steps
them until every copy is done (a copy that finished early is no longer stepped and reports
``alive = False``) and returns the whole batch of trajectories as a :class:`Rollout`.

The fast path: an environment that offers ``fast_round(leader_actions, follower_actions)``
(one-round games with no state, like the duopoly) can be evaluated for the whole batch by one
vectorized call; ``ParallelSimulator(..., fast=True)`` then skips the per-copy Python loop. Both
paths give the same rewards (the tests check it). An environment with several rounds may offer
``fast_episode(act, seeds, max_steps)`` instead, returning the whole batch's :class:`Rollout`
(e.g. :class:`games.commitment_parallel.CommitmentParallelEnv`), which must equal the per-copy
rollout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["AECSimulator", "ParallelSimulator", "Rollout", "copy_seeds"]


@dataclass(frozen=True)
class Rollout:
    """A batch of episodes of ``n`` copies over at most ``T`` steps.

    ``observations[agent]``: ``(T, n, *obs_shape)``, what each agent saw before acting;
    ``actions[agent]``: ``(T, n, *action_shape)``; ``rewards[agent]``: ``(T, n)``;
    ``next_observations[agent]``: ``(T, n, *obs_shape)``; ``alive``: ``(T, n)``, whether the copy
    was still playing at step ``t``; ``done``: ``(T, n)``, whether step ``t`` ended its episode.
    Steps of finished copies hold zeros.
    """

    observations: dict[str, np.ndarray]
    actions: dict[str, np.ndarray]
    rewards: dict[str, np.ndarray]
    next_observations: dict[str, np.ndarray]
    alive: np.ndarray
    done: np.ndarray

    @property
    def samples(self) -> int:
        """Environment transitions in the batch (one per live copy per step)."""
        return int(self.alive.sum())

    def discounted_returns(self, agent: str, gamma: float) -> np.ndarray:
        """``sum_t gamma^t r_t`` per copy, shape ``(n,)``."""
        weights = gamma ** np.arange(self.alive.shape[0])
        return weights @ self.rewards[agent]


def copy_seeds(rng: np.random.Generator, n: int, paired: bool = False) -> list[int]:
    """Seeds for ``n`` copies from ``rng``; ``paired`` gives copies ``i`` and ``n/2 + i`` the same
    seed (common random numbers for comparing two policies on the same draws of the game)."""
    if paired:
        if n % 2:
            raise ValueError(f"paired copies need an even number of copies, got {n}")
        half = [int(s) for s in rng.integers(0, 2**31 - 1, size=n // 2)]
        return half + half
    return [int(s) for s in rng.integers(0, 2**31 - 1, size=n)]


Act = Callable[[int, dict[str, np.ndarray]], dict[str, np.ndarray]]


class ParallelSimulator:
    """``n`` copies of a PettingZoo Parallel environment stepped in lockstep (module docstring).

    Parameters
    ----------
    make_env : callable
        Returns a fresh environment (every copy is its own object).
    n : int
        Number of copies.
    fast : bool
        Use the environment's vectorized ``fast_round`` when it has one (module docstring).
    """

    def __init__(self, make_env: Callable[[], object], n: int, fast: bool = False):
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(f"the simulator needs n >= 1 copies, got {n!r}")
        first = make_env()
        self.n = n
        self.agents: tuple[str, ...] = tuple(first.possible_agents)
        self.fast = fast and (callable(getattr(first, "fast_round", None))
                              or callable(getattr(first, "fast_episode", None)))
        # the fast path evaluates the whole batch with the first copy alone
        self.envs = [first] + ([] if self.fast else [make_env() for _ in range(n - 1)])

    def commit(self, commitment: np.ndarray) -> None:
        """Declare the leader's commitment in every copy (environments with ``commit``)."""
        for env in self.envs:
            env.commit(commitment)

    def _zeros(self, space, steps: int) -> np.ndarray:
        return np.zeros((steps, self.n, *space.shape), dtype=np.float64)

    def episode(self, act: Act, seeds: Sequence[int], max_steps: int = 1000) -> Rollout:
        """Play one episode in every copy; ``act(t, observations)`` returns each agent's batch of
        actions for the copies (it sees all ``n`` rows; rows of finished copies are ignored)."""
        if len(seeds) != self.n:
            raise ValueError(f"{self.n} copies need {self.n} seeds, got {len(seeds)}")
        first = self.envs[0]
        if self.fast and callable(getattr(first, "fast_episode", None)):
            return first.fast_episode(act, seeds, max_steps)
        if self.fast:
            return self._fast_episode(act, seeds)
        resets = [env.reset(seed=int(s)) for env, s in zip(self.envs, seeds, strict=True)]
        current = {a: np.stack([np.asarray(r[0][a], dtype=np.float64) for r in resets])
                   for a in self.agents}
        obs_space = {a: first.observation_space(a) for a in self.agents}
        act_space = {a: first.action_space(a) for a in self.agents}
        steps: list[tuple] = []
        live = np.ones(self.n, dtype=bool)
        for t in range(max_steps):
            if not live.any():
                break
            actions = act(t, current)
            rewards = {a: np.zeros(self.n) for a in self.agents}
            following = {a: current[a].copy() for a in self.agents}
            done = np.zeros(self.n, dtype=bool)
            for i in np.flatnonzero(live):
                env = self.envs[i]
                obs, rew, term, trunc, _ = env.step({a: actions[a][i] for a in self.agents})
                for a in self.agents:
                    rewards[a][i] = rew[a]
                    following[a][i] = obs[a]
                done[i] = all(term[a] or trunc[a] for a in self.agents)
            steps.append((current, actions, rewards, following, live.copy(), done))
            live &= ~done
            current = following
        return self._stack(steps, obs_space, act_space)

    def _fast_episode(self, act: Act, seeds: Sequence[int]) -> Rollout:
        # one round, no state: every copy's observation is the reset one, so one reset suffices
        first = self.envs[0]
        observations, _ = first.reset(seed=int(seeds[0]))
        current = {a: np.repeat(np.asarray(observations[a], dtype=np.float64)[None], self.n, 0)
                   for a in self.agents}
        actions = act(0, current)
        leader, follower = self.agents
        r_leader, r_follower = first.fast_round(actions[leader][:, 0], actions[follower][:, 0])
        rewards = {leader: r_leader, follower: r_follower}
        ones = np.ones(self.n, dtype=bool)
        return Rollout(
            observations={a: current[a][None] for a in self.agents},
            actions={a: np.asarray(actions[a], dtype=np.float64)[None] for a in self.agents},
            rewards={a: np.asarray(rewards[a], dtype=np.float64)[None] for a in self.agents},
            next_observations={a: current[a][None] for a in self.agents},
            alive=ones[None], done=ones[None],
        )

    def _stack(self, steps, obs_space, act_space) -> Rollout:
        T = len(steps)
        out = {"observations": {}, "actions": {}, "rewards": {}, "next_observations": {}}
        for a in self.agents:
            out["observations"][a] = np.stack([s[0][a] for s in steps]) if T else \
                self._zeros(obs_space[a], 0)
            out["actions"][a] = np.stack([np.asarray(s[1][a], dtype=np.float64).reshape(
                self.n, *act_space[a].shape) for s in steps])
            out["rewards"][a] = np.stack([s[2][a] for s in steps])
            out["next_observations"][a] = np.stack([s[3][a] for s in steps])
        alive = np.stack([s[4] for s in steps])
        for a in self.agents:  # finished copies hold zeros
            mask = alive.reshape(T, self.n, *([1] * (out["actions"][a].ndim - 2)))
            out["actions"][a] = out["actions"][a] * mask
            out["rewards"][a] = out["rewards"][a] * alive
        return Rollout(**out, alive=alive, done=np.stack([s[5] for s in steps]))


class AECSimulator:
    """``n`` copies of a PettingZoo AEC environment played in turn, in lockstep.

    The copies must select agents in the same order (true of games whose turn order does not
    depend on chance, as in ``stackelberg/duopoly-v0``). :meth:`episode` asks
    ``act(agent, observations)`` for each turn's batch of actions, with ``observations`` of shape
    ``(n, *obs_shape)`` (the acting agent's view: the follower's holds the leader's quantity).
    Rewards are summed per agent over the episode.
    """

    def __init__(self, make_env: Callable[[], object], n: int):
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(f"the simulator needs n >= 1 copies, got {n!r}")
        self.envs = [make_env() for _ in range(n)]
        self.n = n
        self.agents: tuple[str, ...] = tuple(self.envs[0].possible_agents)

    def episode(self, act: Callable[[str, np.ndarray], np.ndarray], seeds: Sequence[int],
                max_turns: int = 10_000) -> dict[str, np.ndarray]:
        """Total reward per agent and copy, ``{agent: (n,)}``, of one episode in every copy."""
        for env, s in zip(self.envs, seeds, strict=True):
            env.reset(seed=int(s))
        totals = {a: np.zeros(self.n) for a in self.agents}
        for _ in range(max_turns):
            if not self.envs[0].agents:
                break
            agent = self.envs[0].agent_selection
            # the reward an agent collects on its turn is what it earned since its last turn
            lasts = [env.last() for env in self.envs]
            totals[agent] += [last[1] for last in lasts]
            observations = np.stack([np.asarray(last[0], dtype=np.float64) for last in lasts])
            finished = [last[2] or last[3] for last in lasts]
            actions = None if all(finished) else act(agent, observations)
            for i, env in enumerate(self.envs):
                env.step(None if finished[i] else actions[i])
        return totals
