"""What the neural learners share: power-law step schedules, Adam at a scheduled step size, the
reward scale, the actor-critic step of one follower actor (docs/theory.md §4, RAC)."""

from __future__ import annotations

import numpy as np
import torch

from agents.neural.evaluation import install
from agents.neural.policies import CategoricalPolicy, Critic, Policy
from agents.neural.rollout import RoleBatch, td_errors
from stackelberg.simulated import SimulatedProblem

__all__ = ["Adam", "actor_critic_step", "critic_inputs", "fit_linear_critic", "power",
           "require_simulated", "reward_scale", "soft_policy_step"]


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
                      actor_lr: float, critic_lr: float, lstd: bool = False,
                      natural: bool = False) -> float:
    """One TD(0) critic step and one actor step ``delta grad log pi + tau grad H(pi)`` on
    ``reward`` (already scaled; ``other`` is the leader's side of the batch, read by the
    critic, :func:`critic_inputs`); returns the mean squared TD error. With ``lstd`` the
    critic (linear) is instead set to this batch's TD fixed point (:func:`fit_linear_critic`)
    before the actor reads its TD errors; with ``natural`` the actor takes a soft policy
    iteration step instead (:func:`soft_policy_step`, ``actor_lr`` its share)."""
    weight = alive / alive.sum().clamp(min=1.0)
    now, later = critic_inputs(batch, other)
    if natural:  # the soft value's reward: the fixed point is then softmax(Q_soft / tau)
        with torch.no_grad():
            reward = reward + tau * actor.entropy(batch.obs)
    if lstd:
        # the actions were drawn from the actor's behaviour: reweight to the actor's own
        ratio = None
        if isinstance(actor, CategoricalPolicy) and actor.explore:
            with torch.no_grad():
                pi = torch.softmax(actor.logits(batch.obs), -1)
                chosen = batch.u.reshape(pi.shape[:-1]).long().unsqueeze(-1)
                ratio = (pi.gather(-1, chosen) / actor.behaviour(batch.obs).gather(-1, chosen)
                         ).squeeze(-1)
        fit_linear_critic(critic, now, reward, later, done, gamma, weight, ratio)
        delta, _ = td_errors(critic, now, reward, later, done, gamma)
    else:
        delta, _ = td_errors(critic, now, reward, later, done, gamma)
        critic_opt.step((weight * delta.pow(2)).sum(), critic_lr)
    advantage = delta.detach()
    if natural:
        soft_policy_step(actor, batch, advantage, weight, tau, actor_lr)
        return float((weight * advantage.pow(2)).sum())
    log_prob = actor.log_prob(batch.obs, batch.u)
    entropy = actor.entropy(batch.obs)
    actor_opt.step(-(weight * (advantage * log_prob + tau * entropy)).sum(), actor_lr)
    return float((weight * advantage.pow(2)).sum())


def fit_linear_critic(critic: Critic, now: torch.Tensor, reward: torch.Tensor,
                      later: torch.Tensor, done: torch.Tensor, gamma: float,
                      weight: torch.Tensor, ratio: torch.Tensor | None = None,
                      ridge: float = 1e-8) -> None:
    """Set a linear critic ``V(s) = w . phi(s) + c`` to the TD(0) fixed point of one batch:
    LSTD, ``(sum_t omega_t phi_t (phi_t - gamma (1 - d_t) phi_{t+1})^T + ridge I) w =
    sum_t omega_t phi_t r_t`` with ``phi`` the inputs and a 1 (docs/theory.md §15). With
    ``ratio`` (``pi(b_t | s_t) / mu(b_t | s_t)`` for actions drawn from a behaviour ``mu``)
    ``r_t`` and ``phi_{t+1}`` are weighted by it: the fixed point is then the value of ``pi``.

    Why not TD steps: a critic that lags the actor makes ``delta`` short-sighted (at ``V = 0``
    it is the round's reward alone), and the actor saturates on the myopic action before the
    critic catches up; from a near-deterministic softmax the policy gradient cannot bring it
    back (its size is ``pi(b)``). The fixed point of a batch of a few thousand rounds is
    exact up to sampling noise, at the cost of one small linear solve.
    """
    layers = [m for m in critic.net if isinstance(m, torch.nn.Linear)]
    if len(layers) != 1:
        raise ValueError("LSTD needs a linear critic (critic_hidden = ())")
    phi = torch.cat([now, torch.ones_like(now[..., :1])], -1).reshape(-1, now.shape[-1] + 1)
    nxt = torch.cat([later, torch.ones_like(later[..., :1])], -1).reshape(phi.shape)
    omega = weight.reshape(-1, 1)
    keep = (1.0 - done).reshape(-1, 1)
    rho = torch.ones_like(keep) if ratio is None else ratio.reshape(-1, 1)
    A = (omega * phi).T @ (phi - gamma * rho * keep * nxt)
    b = (omega * phi).T @ (rho * reward.reshape(-1, 1))
    w = torch.linalg.solve(A + ridge * torch.eye(A.shape[0], dtype=A.dtype), b).squeeze(-1)
    with torch.no_grad():
        layers[0].weight.copy_(w[:-1].reshape(1, -1))
        layers[0].bias.copy_(w[-1:])


def soft_policy_step(actor: CategoricalPolicy, batch: RoleBatch, advantage: torch.Tensor,
                     weight: torch.Tensor, tau: float, share: float, ridge: float = 1e-9
                     ) -> None:
    """A share of one soft policy-iteration step for a linear categorical actor
    (docs/theory.md §15): logits ``z(s, .) <- z + share (A(s, .) / tau - log pi(. | s))`` up to a
    constant per state, the exact soft best response ``softmax(Q / tau)`` being its fixed
    point (``share = 1``: the whole step).

    ``A`` is known only at the sampled actions (the TD errors ``advantage``), so the logit
    change is the weighted least-squares fit of ``A / tau - log pi(b | s)`` on the policy's
    score features ``(e_b - pi(s)) x(s)^T`` (compatible features: the fit is the natural
    gradient, Kakade 2001); ridge keeps it at zero in directions the batch does not see.
    Why not Adam on the policy gradient: its size is ``pi(b)``, so a softmax saturated on a
    wrong action hardly moves, and Adam's per-parameter scaling lets a parameter shared by
    every state (the bias) push against a state whose own gradient is small.
    """
    layers = [m for m in actor.logits if isinstance(m, torch.nn.Linear)]
    if len(layers) != 1:
        raise ValueError("the natural actor step needs a linear categorical policy (hidden=())")
    layer = layers[0]
    keep = weight.reshape(-1) > 0
    x = batch.obs.reshape(-1, batch.obs.shape[-1])[keep]
    x = torch.cat([x, torch.ones_like(x[:, :1])], -1)
    b = batch.u.reshape(-1)[keep].long()
    omega = weight.reshape(-1)[keep]
    with torch.no_grad():
        log_pi = torch.log_softmax(layer(x[:, :-1]), -1)
        target = advantage.reshape(-1)[keep] / tau - log_pi.gather(1, b[:, None])[:, 0]
        score = torch.nn.functional.one_hot(b, actor.n).to(x.dtype) - log_pi.exp()
        psi = (score[:, :, None] * x[:, None, :]).reshape(len(b), -1)   # (N, n (d + 1))
        # the inputs themselves as extra regressors: a constant per state, which the logits
        # cannot hold, is fitted apart (the target's mean over pi is tau H, not 0, and with
        # exploring actions the score's mean is not 0 either)
        features = torch.cat([psi, x], -1)
        gram = (omega[:, None] * features).T @ features
        scale = float(gram.diagonal().mean()) or 1.0
        step = torch.linalg.solve(gram + ridge * scale * torch.eye(len(gram), dtype=x.dtype),
                                  (omega[:, None] * features).T @ target)
        step = share * step[:psi.shape[1]].reshape(actor.n, -1)
        layer.weight += step[:, :-1]
        layer.bias += step[:, -1]


def leader_action_size(problem) -> int:
    """Length of the leader's pre-action (what the follower's critic reads besides his
    observation)."""
    space = problem.leader_spec.action_space
    return int(np.prod(space.shape)) if space.shape else 1
