"""The ``actor-critic`` follower learner: a torch actor and a TD(0) critic trained on batched
rollouts against the leader's commitment (docs/theory.md §4).

Each step plays one episode in ``batch`` copies of the problem's environment, the leader acting
with the policy whose parameters are her commitment ``x`` (the follower knows it: he answers a
committed policy, as in the exact problems), then takes one critic step and one actor step on
the entropy-regularized objective ``E[sum_t gamma^t r_F] + tau H(pi)`` with ``tau`` the
problem's current weight. Step sizes follow ``lr (k+1)^-decay``.

A ``Discrete`` follower (by default) instead sets his linear critic to the batch's TD fixed
point (LSTD), draws a share of his actions uniformly, and moves his logits by a share of a
soft policy-iteration step toward ``softmax(Q / tau)``, his exact soft best response
(docs/theory.md §15): the gradient step let his softmax saturate on a wrong action and stay
there (``benchmarks/bench_neural_exact.py``).
"""

from __future__ import annotations

import numpy as np

from agents.neural.common import (
    Adam,
    actor_critic_step,
    leader_action_size,
    power,
    require_simulated,
    reward_scale,
)
from agents.neural.configs import ActorCriticConfig, by_action_kind
from agents.neural.policies import (
    Critic,
    flat_parameters,
    load_parameters,
    make_policy,
    torch_generator,
)
from agents.neural.rollout import play
from stackelberg.simulated import SimulatedProblem
from stackelberg.simulator import ParallelSimulator

__all__ = ["ActorCriticConfig", "ActorCriticFollower"]


class ActorCriticFollower:
    """Follower learner of a :class:`~stackelberg.simulated.SimulatedProblem` (module docstring)."""

    def __init__(self, config: ActorCriticConfig | None = None):
        self.config = ActorCriticConfig() if config is None else config
        self.samples = 0

    def reset(self, problem: SimulatedProblem, rng: np.random.Generator) -> None:
        require_simulated(problem, "actor-critic")
        self.config = by_action_kind(self.config, problem.follower_spec.action_space)
        self.problem, self.rng = problem, rng
        self.generator = torch_generator(rng)
        self.actor = make_policy(problem.follower_spec, self.generator)
        if self.config.explore:
            self.actor.explore = self.config.explore
        self.critic = Critic(problem.follower_spec.observation_size + leader_action_size(problem),
                             self.config.critic_hidden, self.generator)
        self.leader = make_policy(problem.leader_spec, self.generator)
        self.actor_opt, self.critic_opt = Adam(self.actor), Adam(self.critic)
        self.simulator = ParallelSimulator(problem.make_env, self.config.batch, fast=problem.fast)
        self.k, self.samples, self.scale = 0, 0, None

    def step(self, x: np.ndarray) -> None:
        load_parameters(self.leader, x)
        episodes = play(self.problem, self.simulator, self.leader, [self.actor], x, self.rng,
                        self.generator)
        reward = episodes.follower.reward
        if self.scale is None:
            self.scale = reward_scale(reward, episodes.alive)
        c = self.config
        actor_critic_step(self.actor, self.critic, self.actor_opt, self.critic_opt,
                          episodes.follower, episodes.leader, reward / self.scale,
                          episodes.alive, episodes.done,
                          self.problem.gamma, self.problem.tau,
                          power(c.actor_lr, c.actor_decay, self.k),
                          power(c.critic_lr, c.critic_decay, self.k),
                          lstd=c.critic_fit == "lstd", natural=c.actor_update == "natural")
        self.k += 1
        self.samples += episodes.samples

    @property
    def policy(self) -> np.ndarray:
        """The actor's parameters, flattened (:func:`agents.neural.policies.flat_parameters`)."""
        return flat_parameters(self.actor)
