"""Neural leaders on a simulator: ``rac-neural`` and the ``partial-gradient-neural`` baseline.

``rac-neural`` is RAC (Zeng et al. 2026; docs/theory.md §4) with torch policies: the leader's
variable ``x`` is her policy's parameter vector (her commitment), the follower learner's actor is
the auxiliary actor ``theta'`` tracking the soft best response, and the leader keeps the
penalized actor ``theta`` with its TD(0) critic. Each iteration ``k``:

1. one batch of episodes in two groups that share every random number (:func:`play`): the
   leader against ``theta`` and the leader against ``theta'``;
2. a critic step (step ``beta_k``) and an actor step (``alpha_k``) of ``theta`` on the reward
   ``r_F + r_L / w_k`` with entropy weight ``tau_k``;
3. a leader step (``xi_k``, Adam) along the Hessian-free estimate
   ``g_x = grad_x f + w_k (grad_x r_x(s', a') - grad_x r_x(s, a)) / (1 - gamma)``, ``f = -V_L``,
   where ``grad_x r_x(s, a) = E_b[r_F(s, b, a) grad_x log mu_x(b|s)]`` (the follower's reward
   depends on ``x`` through the leader's action ``b``); the discounted visitation becomes a
   ``gamma^t``-weighted sum over each episode. ``grad_x f`` is the score-function estimate
   with the leader's discounted reward to go, from ``theta``'s group. The follower's
   observation of the commitment is held fixed in these gradients (as in the tabular RAC,
   where the follower's policy is a policy of the MDP ``M(x)``, not a function of ``x``) [ours].

Schedules (all ``base (k+1)^-exponent``): ``tau_k`` decays (:meth:`entropy_weight`, which the
coordinator applies to the problem), ``w_k`` grows, ``beta_k > alpha_k > xi_k``. Rewards are
divided by a scale fixed on the first batch (:func:`agents.neural.common.reward_scale`). For a
``Discrete`` follower the penalized actor's step 2 is the follower learner's (an LSTD critic and
a share of a soft policy-iteration step, docs/theory.md §15), so that the two actors of the
Hessian-free difference learn alike.

``partial-gradient-neural`` steps ``x`` along ``grad_x f(x, theta')`` alone: it treats the
follower's current policy as fixed (standard alternating training), so with a follower that
tracks his best response it heads to the simultaneous-move (Cournot-Nash) answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from agents.neural.common import (
    Adam,
    actor_critic_step,
    leader_action_size,
    power,
    require_simulated,
    reward_scale,
)
from agents.neural.configs import NeuralPartialGradientConfig, RACNeuralConfig, by_action_kind
from agents.neural.policies import (
    Critic,
    flat_parameters,
    load_parameters,
    make_policy,
    torch_generator,
)
from agents.neural.rollout import Episodes, discounted_to_go, play
from agents.neural.starts import StartPlan
from stackelberg.simulated import SimulatedProblem
from stackelberg.simulator import ParallelSimulator

__all__ = ["NeuralPartialGradientConfig", "NeuralPartialGradientLeader", "RACNeuralConfig",
           "RACNeuralLeader"]


def _residual(signal: torch.Tensor, features: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
    """``signal`` minus its least-squares fit on ``[1, features]`` at each step, over the live
    copies (zero elsewhere; ``features`` may be collinear with the constant).

    The leader's baseline [ours]: in a simultaneous round the follower's action is independent
    of the leader's given the state, so a baseline that depends on the state and on his action
    adds no bias to a score-function estimate of the leader's gradient (up to the fit's own
    O(1/n) dependence on the batch); it removes the follower's exploration noise and the
    spread between states from the leader's signal.
    """
    out = torch.zeros_like(signal)
    for t in range(signal.shape[0]):
        rows = alive[t] > 0
        design = torch.cat([torch.ones_like(signal[t, rows]).unsqueeze(1),
                            features[t, rows].reshape(int(rows.sum()), -1)], dim=1)
        if design.shape[0] <= design.shape[1]:
            out[t, rows] = signal[t, rows] - signal[t, rows].mean()
            continue
        # gelsd (SVD), not torch's CPU default gelsy: MKL's gelsy returns a different last
        # bit on some calls with the same input, which made same-seed matches differ (issue
        # 14; tests/test_neural.py checks the repeat)
        fit = torch.linalg.lstsq(design, signal[t, rows].unsqueeze(1), driver="gelsd").solution
        out[t, rows] = signal[t, rows] - (design @ fit).squeeze(1)
    return out


def _baseline_features(episodes: Episodes, follower_actions: int | None) -> torch.Tensor:
    """What the leader's baseline reads at each step: with categorical actions (a finite game)
    her observation (the state) and the follower's action one-hot; otherwise the follower's
    pre-action alone (the duopoly's observation carries nothing the constant does not)."""
    u = episodes.follower.u
    if follower_actions is None:
        return u
    actions = torch.nn.functional.one_hot(u.reshape(u.shape[:2]).long(), follower_actions)
    return torch.cat([episodes.leader.obs, actions.to(u.dtype)], dim=-1)


def _weighted_score(episodes: Episodes, leader, signal: torch.Tensor, gamma: float,
                    follower_actions: int | None = None) -> torch.Tensor:
    """``mean_copies sum_t gamma^t (signal_t - baseline_t) log mu_x(b_t|s_t)``, a surrogate
    whose gradient in the leader's parameters is the score-function estimate of
    ``grad_x E[sum_t gamma^t signal_t]`` when ``signal_t`` is a reward to go; the baseline is
    :func:`_residual`'s fit on :func:`_baseline_features`."""
    alive = episodes.alive
    centred = _residual(signal.detach(), _baseline_features(episodes, follower_actions), alive)
    discount = gamma ** torch.arange(alive.shape[0], dtype=signal.dtype).unsqueeze(1)
    log_prob = leader.log_prob(episodes.leader.obs, episodes.leader.u)
    return (discount * centred * log_prob).sum(0).mean()


def _categories(spec) -> int | None:
    """The follower's number of actions if they are categories (``Discrete``), else None."""
    n = getattr(spec.action_space, "n", None)
    return None if n is None else int(n)


class _NeuralLeader:
    """What both neural leaders share: the config resolved for the action kind, a torch
    generator seeded from the match's stream, the leader's policy (drawn from it first, so the
    draws that follow are the same in both) and ``x``, the policy's flat parameters; and the
    match's segments (:class:`agents.neural.starts.StartPlan`): a starting commitment per
    ``segment`` iterations, the first ``hold`` iterations of each without a leader step (the
    followers track the new commitment first), and the tail-averaged parameters of the segment
    with the best estimated return reported at the end (docs/theory.md §14)."""

    name: str
    config_class: type

    def __init__(self, config=None):
        self.config = self.config_class() if config is None else config
        self.samples = 0
        self.plan: StartPlan | None = None

    def _begin(self, problem: SimulatedProblem, rng: np.random.Generator) -> None:
        require_simulated(problem, self.name)
        self.config = by_action_kind(self.config, problem.leader_spec.action_space)
        self.problem, self.rng = problem, rng
        self.generator = torch_generator(rng)
        self.leader = make_policy(problem.leader_spec, self.generator)
        self.leader_opt = Adam(self.leader)
        self.k, self.t, self.samples, self.scale = 0, 0, 0, None
        self.follower_actions = _categories(problem.follower_spec)
        self.plan = None

    def plan_budget(self, iterations: int) -> None:
        """Split the match into segments of the config's length (the coordinator calls this
        after :meth:`reset`; without it the match is one segment of unknown length)."""
        length = self.config.segment
        starts = max(1, iterations // length) if length else 1
        self.plan = StartPlan(iterations, starts, self.config.tail)

    def _local(self, t: int) -> int:
        """Iteration ``t``'s index within its segment (every schedule restarts with it)."""
        return t if self.plan is None else t - self.plan.bounds[self.plan.segment(t)]

    def _maybe_restart(self) -> None:
        """At a segment's first iteration (after the first): a new random commitment, a fresh
        optimizer and the schedules from the start. The new logits are the uniform start's
        plus ``start_scale`` times standard normal draws from the leader's generator."""
        if self.plan is None or not self.plan.begins(self.t):
            return
        with torch.no_grad():
            for p in self.leader.parameters():
                p.zero_()
                p.add_(self.config.start_scale * torch.randn(p.shape, generator=self.generator,
                                                             dtype=p.dtype))
        self.leader_opt = Adam(self.leader)
        self.k = 0

    def _moves(self) -> bool:
        """Whether this iteration takes a leader step (not during a segment's hold)."""
        return self.k >= self.config.hold

    def _end_step(self, episodes: Episodes, leader_return: float) -> float:
        """Count the iteration and its samples, feed the plan (``leader_return``: the mean
        discounted return of the leader in this iteration's episodes against the follower's
        policy); at the match's end, load the best segment's parameters. Returns the norm of
        the leader's last gradient (infinite in a hold, which took none)."""
        moved = self._moves()
        grad = (float(torch.cat([p.grad.reshape(-1) for p in self.leader.parameters()]).norm())
                if moved else math.inf)
        if self.plan is not None:
            self.plan.record(self.t, self.x, leader_return)
            if self.plan.done():
                load_parameters(self.leader, self.plan.best().params)
        self.k += 1
        self.t += 1
        self.samples += episodes.samples
        return grad

    @property
    def x(self) -> np.ndarray:
        return flat_parameters(self.leader)


def _mean_return(reward: torch.Tensor, gamma: float) -> float:
    """The mean over copies of ``sum_t gamma^t reward_t`` (raw units)."""
    discount = gamma ** torch.arange(reward.shape[0], dtype=reward.dtype).unsqueeze(1)
    return float((discount * reward).sum(0).mean())


class NeuralPartialGradientLeader(_NeuralLeader):
    """``partial-gradient-neural`` (module docstring)."""

    name = "partial-gradient-neural"
    config_class = NeuralPartialGradientConfig
    config: NeuralPartialGradientConfig

    def reset(self, problem: SimulatedProblem, rng: np.random.Generator) -> None:
        self._begin(problem, rng)
        self.response = make_policy(problem.follower_spec, self.generator)
        self.simulator = ParallelSimulator(problem.make_env, self.config.batch, fast=problem.fast)

    def step(self, responses: Sequence[np.ndarray]) -> dict[str, float]:
        self._maybe_restart()
        load_parameters(self.response, responses[0])
        x = self.x
        episodes = play(self.problem, self.simulator, self.leader, [self.response], x, self.rng,
                        self.generator)
        reward = episodes.leader.reward
        if self.scale is None:
            self.scale = reward_scale(reward, episodes.alive)
        if self._moves():
            to_go = discounted_to_go(reward / self.scale, self.problem.gamma)
            # f = -V_L: descend -E[...]
            loss = -_weighted_score(episodes, self.leader, to_go, self.problem.gamma,
                                    self.follower_actions)
            self.leader_opt.step(loss, power(self.config.lr, self.config.decay, self.k))
        return {"grad_norm": self._end_step(episodes, _mean_return(reward, self.problem.gamma))}

    @property
    def penalized_policy(self) -> None:
        return None


class RACNeuralLeader(_NeuralLeader):
    """``rac-neural`` (module docstring)."""

    name = "rac-neural"
    config_class = RACNeuralConfig
    config: RACNeuralConfig

    def reset(self, problem: SimulatedProblem, rng: np.random.Generator) -> None:
        self._begin(problem, rng)
        self.actor = make_policy(problem.follower_spec, self.generator)       # theta
        self.auxiliary = make_policy(problem.follower_spec, self.generator)   # theta'
        self.critic = Critic(problem.follower_spec.observation_size + leader_action_size(problem),
                             (), self.generator)
        self.actor_opt, self.critic_opt = Adam(self.actor), Adam(self.critic)
        if self.config.explore:
            self.actor.explore = self.auxiliary.explore = self.config.explore
        self.simulator = ParallelSimulator(problem.make_env, 2 * self.config.batch,
                                           fast=problem.fast)

    def entropy_weight(self, k: int) -> float:
        """``tau_k``, which the coordinator sets on the problem before iteration ``k``."""
        return power(self.config.tau0, self.config.tau_decay, self._local(k))

    def penalty_weight(self, k: int) -> float:
        return min(self.config.w_max, power(self.config.w0, -self.config.w_growth, k))

    def step(self, responses: Sequence[np.ndarray]) -> dict[str, float]:
        self._maybe_restart()
        c, k, gamma = self.config, self.k, self.problem.gamma
        load_parameters(self.auxiliary, responses[0])
        episodes = play(self.problem, self.simulator, self.leader, [self.actor, self.auxiliary],
                        self.x, self.rng, self.generator)
        penalized, auxiliary = episodes.group(0, 2), episodes.group(1, 2)
        if self.scale is None:
            self.scale = reward_scale(penalized.follower.reward, penalized.alive)
        w = self.penalty_weight(k)
        r_leader = penalized.leader.reward / self.scale
        r_follower = penalized.follower.reward / self.scale
        # the penalized actor: reward r_F + r_L / w_k (docs/theory.md §4)
        actor_critic_step(self.actor, self.critic, self.actor_opt, self.critic_opt,
                          penalized.follower, penalized.leader, r_follower + r_leader / w,
                          penalized.alive, penalized.done, gamma, self.problem.tau,
                          power(c.alpha, c.alpha_decay, k), power(c.beta, c.beta_decay, k),
                          lstd=c.critic_fit == "lstd", natural=c.actor_update == "natural")
        estimate = _mean_return(auxiliary.leader.reward, gamma)  # against the follower
        if not self._moves():
            return {"grad_norm": self._end_step(episodes, estimate), "penalty_weight": w}
        # the leader: g_x = grad f + w (grad_x V_F(x, theta') - grad_x V_F(x, theta)), each
        # term a score-function estimate; with the follower's discounted reward to go it
        # carries x's effect on the transitions too (docs/theory.md §13)
        actions = self.follower_actions
        signal_aux, signal_pen = auxiliary.follower.reward / self.scale, r_follower
        if c.follower_signal == "to-go":
            signal_aux = discounted_to_go(signal_aux, gamma)
            signal_pen = discounted_to_go(signal_pen, gamma)
        same = torch.equal(auxiliary.leader.obs, penalized.leader.obs) and \
            torch.equal(auxiliary.leader.u, penalized.leader.u)
        if same or c.follower_signal == "reward":
            # both groups met the same states and leader actions (a one-round game), or the
            # leader's actions do not move the state: one log-probability serves both terms,
            # and one baseline fits their difference
            hessian_free = _weighted_score(penalized, self.leader, signal_aux - signal_pen,
                                           gamma, actions)
        else:
            hessian_free = (_weighted_score(auxiliary, self.leader, signal_aux, gamma, actions)
                            - _weighted_score(penalized, self.leader, signal_pen, gamma, actions))
        surrogate = (-_weighted_score(penalized, self.leader,
                                      discounted_to_go(r_leader, gamma), gamma, actions)
                     + w * hessian_free)
        eta = power(c.leader_tau0, c.leader_tau_decay, k)
        if eta > 0:  # the leader's own decaying entropy bonus: stay mixed while theta' learns
            weight = penalized.alive / penalized.alive.sum()
            surrogate = surrogate - eta * (weight * self.leader.entropy(penalized.leader.obs)).sum()
        self.leader_opt.step(surrogate, power(c.xi, c.xi_decay, k))
        return {"grad_norm": self._end_step(episodes, estimate), "penalty_weight": w}

    @property
    def penalized_policy(self) -> np.ndarray:
        return flat_parameters(self.actor)
