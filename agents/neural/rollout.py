"""Batched rollouts of torch policies through :mod:`stackelberg.simulator`.

:func:`play` runs one episode in every copy of a :class:`~stackelberg.simulator.ParallelSimulator`
with the leader's policy and one or more follower policies, the copies split into equal groups,
one per follower policy. The groups share their random numbers (common random numbers): the
same environment seeds, the same leader noise and the same follower noise, so the groups differ
only by the follower policy. RAC's Hessian-free leader gradient compares two follower actors on
the leader's samples (docs/theory.md §4); with shared noise that difference has a small variance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from agents.neural.policies import DTYPE, Policy, draw_noise
from stackelberg.simulated import SimulatedProblem
from stackelberg.simulator import ParallelSimulator, copy_seeds

__all__ = ["RoleBatch", "Episodes", "play", "discounted_to_go", "td_errors"]


@dataclass(frozen=True)
class RoleBatch:
    """One role's side of a batch of episodes; tensors of shape ``(T, n, ...)``."""

    obs: torch.Tensor
    u: torch.Tensor            # pre-actions (what the policy's log-probability is of)
    reward: torch.Tensor
    next_obs: torch.Tensor


@dataclass(frozen=True)
class Episodes:
    """A batch of episodes: both roles, the live mask ``(T, n)`` and the end flags ``(T, n)``."""

    leader: RoleBatch
    follower: RoleBatch
    alive: torch.Tensor
    done: torch.Tensor
    samples: int

    def group(self, g: int, groups: int) -> Episodes:
        """The copies of group ``g`` of ``groups`` (see :func:`play`)."""
        n = self.alive.shape[1] // groups
        cut = slice(g * n, (g + 1) * n)

        def part(batch: RoleBatch) -> RoleBatch:
            return RoleBatch(batch.obs[:, cut], batch.u[:, cut], batch.reward[:, cut],
                             batch.next_obs[:, cut])

        alive = self.alive[:, cut]
        return Episodes(part(self.leader), part(self.follower), alive, self.done[:, cut],
                        int(alive.sum()))


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float64), dtype=DTYPE)


def play(problem: SimulatedProblem, simulator: ParallelSimulator, leader: Policy,
         followers: Sequence[Policy], x: np.ndarray, rng: np.random.Generator,
         generator: torch.Generator) -> Episodes:
    """One episode per copy; copies form ``len(followers)`` groups sharing their noise.

    ``x`` is the leader's commitment, declared to environments that take one.
    """
    groups = len(followers)
    if simulator.n % groups:
        raise ValueError(f"{simulator.n} copies do not split into {groups} groups")
    n = simulator.n // groups
    if callable(getattr(simulator.envs[0], "commit", None)):
        simulator.commit(x)
    half = copy_seeds(rng, n)
    seeds = half * groups
    L, F = problem.leader_agent, problem.follower_agent
    record: dict[str, list[torch.Tensor]] = {L: [], F: []}

    def act(t: int, observations: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        obs_l, obs_f = _tensor(observations[L]), _tensor(observations[F])
        noise_l = draw_noise(leader, n, generator).repeat(groups, 1)
        noise_f = draw_noise(followers[0], n, generator)
        u_l = leader.sample(obs_l, noise_l)
        u_f = torch.cat([f.sample(obs_f[g * n:(g + 1) * n], noise_f)
                         for g, f in enumerate(followers)])
        record[L].append(u_l)
        record[F].append(u_f)
        return {L: leader.to_env(u_l), F: followers[0].to_env(u_f)}

    rollout = simulator.episode(act, seeds)
    T = rollout.alive.shape[0]

    def role(agent: str) -> RoleBatch:
        return RoleBatch(_tensor(rollout.observations[agent]), torch.stack(record[agent][:T]),
                         _tensor(rollout.rewards[agent]), _tensor(rollout.next_observations[agent]))

    return Episodes(role(L), role(F), _tensor(rollout.alive), _tensor(rollout.done),
                    rollout.samples)


def discounted_to_go(reward: torch.Tensor, gamma: float) -> torch.Tensor:
    """``G_t = sum_{s >= t} gamma^(s-t) r_s`` along the first axis."""
    out = torch.zeros_like(reward)
    running = torch.zeros_like(reward[0])
    for t in range(reward.shape[0] - 1, -1, -1):
        running = reward[t] + gamma * running
        out[t] = running
    return out


def td_errors(critic: torch.nn.Module, obs: torch.Tensor, reward: torch.Tensor,
              next_obs: torch.Tensor, done: torch.Tensor, gamma: float
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """TD(0) errors ``r + gamma V(s') (1 - done) - V(s)`` (no gradient through the target) and
    the critic's values ``V(s)`` (with gradient), both ``(T, n)``."""
    values = critic(obs)
    with torch.no_grad():
        target = reward + gamma * critic(next_obs) * (1.0 - done)
    return target - values, values
