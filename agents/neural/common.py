"""What the neural learners share: power-law step schedules, Adam at a scheduled step size, the
reward scale, the actor-critic step of one follower actor (docs/theory.md §4, RAC)."""

from __future__ import annotations

import numpy as np
import torch

from agents.neural.evaluation import install
from agents.neural.policies import Critic, Policy
from agents.neural.rollout import RoleBatch, td_errors
from stackelberg.simulated import SimulatedProblem

__all__ = ["Adam", "actor_critic_step", "critic_inputs", "power", "require_simulated",
           "reward_scale"]


def require_simulated(problem: object, name: str) -> None:
    """Refuse a problem with an exact model (the torch learners play through a simulator),
    install the torch policies' Monte-Carlo evaluation on the simulated one
    (:func:`agents.neural.evaluation.install`), and run torch on one thread.

    One thread, as every process that plays matches runs BLAS (:mod:`stackelberg.app.threads`):
    torch splits a reduction of more than 32768 numbers across its threads, so the last bits of
    a match with a large batch would depend on the machine's cores and on whether it ran in
    ``stackelberg run``, a tournament worker or the tournament's own process (issue 14:
    ``rac-neural`` with batch 40000 ended one ulp apart on 1 and 2 threads).
    """
    if getattr(problem, "model", None) is not None or not isinstance(problem, SimulatedProblem):
        raise ValueError(f"{name} learns through a simulator: it needs a game with no exact "
                         f"model (a SimulatedProblem)")
    install(problem)
    torch.set_num_threads(1)


def power(base: float, exponent: float, k: int) -> float:
    """``base * (k + 1)^-exponent`` (RAC's step sizes and entropy weight; a negative exponent
    makes it grow, as the penalty weight does)."""
    return base * (k + 1) ** -exponent


class Adam:
    """``torch.optim.Adam`` whose step size is set before each step (the schedules above)."""

    def __init__(self, module: torch.nn.Module):
        self.optimizer = torch.optim.Adam(module.parameters(), lr=1.0)

    def step(self, loss: torch.Tensor, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()


def reward_scale(rewards: torch.Tensor, alive: torch.Tensor) -> float:
    """The spread of the first batch's rewards, by which a learner divides every later reward,
    so that ``tau``, the penalty weight and the step sizes do not depend on the game's money
    units (profits of 8 or of 1250) [ours]. Fixed after the first batch (a moving scale would
    move the objective)."""
    values = rewards[alive > 0]
    spread = float(values.std()) if values.numel() > 1 else 0.0
    return spread if np.isfinite(spread) and spread > 1e-12 else 1.0


def critic_inputs(batch: RoleBatch, other: RoleBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """What the follower's critic reads at ``s_t`` and ``s_{t+1}``: his observation and the
    leader's pre-action of that step (zero after the last step).

    A centralized critic [ours]: in a simultaneous round the follower's action does not depend
    on the leader's (given his observation), so ``V(s, b)`` is still a baseline that adds no bias
    to ``delta grad log pi``, and it removes the leader's exploration noise from the follower's
    advantage (in the duopoly the follower's profit is linear in the leader's quantity).
    """
    now = torch.cat([batch.obs, other.u.reshape(*other.u.shape[:2], -1)], dim=-1)
    later_u = torch.cat([other.u[1:], torch.zeros_like(other.u[:1])])
    later = torch.cat([batch.next_obs, later_u.reshape(*later_u.shape[:2], -1)], dim=-1)
    return now, later


def actor_critic_step(actor: Policy, critic: Critic, actor_opt: Adam, critic_opt: Adam,
                      batch: RoleBatch, other: RoleBatch, reward: torch.Tensor,
                      alive: torch.Tensor, done: torch.Tensor, gamma: float, tau: float,
                      actor_lr: float, critic_lr: float) -> float:
    """One TD(0) critic step and one actor step ``delta grad log pi + tau grad H(pi)`` on
    ``reward`` (already scaled; ``other`` is the leader's side of the batch, read by the
    critic, :func:`critic_inputs`); returns the mean squared TD error."""
    weight = alive / alive.sum().clamp(min=1.0)
    now, later = critic_inputs(batch, other)
    delta, _ = td_errors(critic, now, reward, later, done, gamma)
    critic_opt.step((weight * delta.pow(2)).sum(), critic_lr)
    advantage = delta.detach()
    log_prob = actor.log_prob(batch.obs, batch.u)
    entropy = actor.entropy(batch.obs)
    actor_opt.step(-(weight * (advantage * log_prob + tau * entropy)).sum(), actor_lr)
    return float((weight * advantage.pow(2)).sum())


def leader_action_size(problem) -> int:
    """Length of the leader's pre-action (what the follower's critic reads besides his
    observation)."""
    space = problem.leader_spec.action_space
    return int(np.prod(space.shape)) if space.shape else 1
