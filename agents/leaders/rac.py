"""RAC: the regularized actor-critic for bilevel RL, from samples alone.

Zeng, Bhatt, Ganesh, Koppel, *A Regularized Actor-Critic Algorithm for Bi-Level Reinforcement
Learning* (AISTATS 2026). A single-loop, first-order method on the value-penalty reformulation
(REFERENCE §2, §4) whose follower entropy weight ``tau_k`` decays, so that it converges to the
*unregularized* bilevel problem. Three time scales: critic (``beta_k``) fastest, actor
(``alpha_k``), then the leader (``xi_k``) slowest.

Who holds what (DESIGN, "Who owns which policy"): the auxiliary actor that tracks
``argmax V_{tau_k}(x_k, .)`` is the match's follower learner (its policy is ``pihat``; with
``soft-q`` it learns from samples too); RAC keeps the penalized actor ``theta``, its soft critic,
and ``x``. RAC sets ``tau_k`` through :meth:`RACLeader.entropy_weight`, which the coordinator
applies to the problem before each iteration, so the follower tracks the same ``tau_k``.

Per iteration ``k`` (details [ours], REFERENCE §4):

1. advance two sets of ``batch_size`` parallel chains one step, one following the penalized
   policy ``pi_theta`` and one following ``pihat``. Each chain restarts from ``rho`` with
   probability ``1 - gamma`` per step, so its states are distributed as the policy's
   discounted visitation ``d_pi``;
2. critic, TD(0) with step ``beta_k`` on ``pi_theta``'s transitions, for the soft Q-function of
   ``pi_theta`` under the reward ``r_F + r_L / w_k``. Minimizing ``f + w_k p`` over the policy is
   maximizing ``V_F + V_L / w_k`` (``StackelbergProblem.penalized_response``);
3. actor, a policy-mirror-descent step with step ``alpha_k`` on that critic:
   ``log pi' = (log pi + alpha_k Q) / (1 + alpha_k tau_k)``, the natural-gradient form of
   ``theta += alpha_k (delta grad log pi - (1/w_k) grad_theta f)``;
4. leader, a step ``xi_k`` along the Hessian-free estimate
   ``g_x = grad_x f + w_k (grad_x r_x(s', a') - grad_x r_x(s, a)) / (1 - gamma)``, with
   ``(s', a')`` from ``pihat``'s chains and ``(s, a)`` (and ``grad_x f``) from ``pi_theta``'s.
   This is unbiased only when the transitions do not depend on the leader's action, so RAC
   refuses other games.

Schedules: ``tau_k = tau_0 (k+1)^-c`` (``tau_0`` is ``follower.tau``), ``w_k = w_0 (k+1)^p``,
``alpha_k = alpha_0 (k+1)^-0.6``, ``beta_k = beta_0 (k+1)^-0.5``, ``xi_k = xi_0 (k+1)^-0.8``;
every constant and exponent is a config field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agents.leaders.actor_critic import PenalizedActorCritic
from stackelberg.problem import StackelbergProblem
from stackelberg.sampling import TransitionBatch, sample_categorical, sample_transitions
from stackelberg.validation import check_fields


@dataclass(frozen=True)
class RACConfig:
    """Hyperparameters of RAC (every schedule is ``value_0 (k+1)^exponent``).

    Attributes
    ----------
    tau_decay : float
        ``c`` in ``tau_k = tau_0 (k+1)^-c``; 0 keeps ``tau`` fixed (``rac-fixed-tau``).
    w0, w_growth : float
        Penalty weight ``w_k = w0 (k+1)^w_growth``.
    alpha0, alpha_decay : float
        Actor step ``alpha_k = alpha0 (k+1)^-alpha_decay``.
    beta0, beta_decay : float
        Critic step ``beta_k = beta0 (k+1)^-beta_decay`` (``beta_0 <= 1``).
    xi0, xi_decay : float
        Leader step ``xi_k = xi0 (k+1)^-xi_decay``.
    batch_size : int
        Parallel chains per policy: transitions per policy per iteration.
    """

    section = "leader"

    tau_decay: float = 0.15
    w0: float = 10.0
    w_growth: float = 0.15
    alpha0: float = 1.0
    alpha_decay: float = 0.6
    beta0: float = 0.5
    beta_decay: float = 0.5
    xi0: float = 0.5
    xi_decay: float = 0.8
    batch_size: int = 256

    def __post_init__(self) -> None:
        check_fields(
            self,
            positive=("w0", "alpha0", "beta0", "xi0"),
            non_negative=("tau_decay", "w_growth", "alpha_decay", "beta_decay", "xi_decay"),
            positive_int=("batch_size",),
        )
        if self.beta0 > 1:
            raise ValueError(f"leader.beta0 must be in (0, 1], got {self.beta0!r}")


class VisitationChains:
    """``n`` parallel chains whose states are distributed as a policy's discounted visitation:
    each step follows the game, or restarts from ``rho`` with probability ``1 - gamma``."""

    def __init__(self, problem: StackelbergProblem, n: int, rng: np.random.Generator):
        self.problem, self.rng = problem, rng
        self.states = self._restart_states(n)

    def _restart_states(self, n: int) -> np.ndarray:
        return sample_categorical(np.tile(self.problem.model.initial, (n, 1)), self.rng)

    def step(self, x: np.ndarray, pi: np.ndarray) -> TransitionBatch:
        """One transition per chain under ``(mu_x, pi)``; the chains move on (or restart)."""
        model, rng = self.problem.model, self.rng
        actions = sample_categorical(pi[self.states], rng)
        batch = sample_transitions(model, self.problem.leader_policy(x), self.states, actions,
                                   rng)
        restart = rng.random(len(self.states)) >= model.gamma
        self.states = np.where(restart, self._restart_states(len(self.states)),
                               batch.next_states)
        return batch


def hessian_free_x_gradient(
    problem: StackelbergProblem,
    x: np.ndarray,
    w: float,
    penalized: TransitionBatch,
    auxiliary: TransitionBatch,
) -> np.ndarray:
    """RAC's estimate of ``grad_x [f(x, pi) + w (V(x, pihat) - V(x, pi))]`` from samples of
    ``d_pi`` (``penalized``) and ``d_pihat`` (``auxiliary``); see the module docstring."""
    model = problem.model
    scale = 1.0 / (1.0 - model.gamma)
    grad_f = -problem.mean_reward_gradient(x, model.leader_rewards, penalized.states,
                                           penalized.follower_actions)
    grad_v = problem.mean_reward_gradient(x, model.follower_rewards, penalized.states,
                                          penalized.follower_actions)
    grad_v_hat = problem.mean_reward_gradient(x, model.follower_rewards, auxiliary.states,
                                              auxiliary.follower_actions)
    return scale * (grad_f + w * (grad_v_hat - grad_v))


class RACLeader:
    """Regularized actor-critic leader (sample-based, single loop)."""

    def __init__(self, config: RACConfig | None = None):
        self.config = config or RACConfig()

    def reset(self, problem: StackelbergProblem, rng: np.random.Generator) -> None:
        if not problem.model.leader_independent_transitions:
            raise ValueError(
                "rac needs transitions that do not depend on the leader's action (its "
                "Hessian-free x-gradient is biased otherwise); use a PBRL leader for this game"
            )
        if problem.tau <= 0:
            raise ValueError("rac needs follower.tau > 0 (tau_0 of its decaying schedule)")
        c = self.config
        self.problem, self.rng = problem, rng
        self.tau0 = problem.tau
        self._x = problem.initial_x()
        self.actor = PenalizedActorCritic(problem.policy_shape)
        self.penalized_chains = VisitationChains(problem, c.batch_size, rng)
        self.auxiliary_chains = VisitationChains(problem, c.batch_size, rng)
        self.k = 0
        self.samples = 0

    @property
    def x(self) -> np.ndarray:
        return self._x

    @property
    def penalized_policy(self) -> np.ndarray:
        return self.actor.policy

    def entropy_weight(self, k: int) -> float:
        """``tau_k = tau_0 (k+1)^-c``."""
        return self.tau0 * (k + 1.0) ** -self.config.tau_decay

    def _schedule(self, value0: float, exponent: float) -> float:
        return value0 * (self.k + 1.0) ** exponent

    def step(self, responses: Sequence[np.ndarray]) -> dict[str, float]:
        c, problem = self.config, self.problem
        tau, gamma = problem.tau, problem.model.gamma
        w = self._schedule(c.w0, c.w_growth)
        alpha = self._schedule(c.alpha0, -c.alpha_decay)
        beta = self._schedule(c.beta0, -c.beta_decay)
        xi = self._schedule(c.xi0, -c.xi_decay)
        pi, pihat = self.penalized_policy, responses[0]

        # 1. samples of both visitations
        penalized = self.penalized_chains.step(self._x, pi)
        auxiliary = self.auxiliary_chains.step(self._x, pihat)
        self.samples += len(penalized) + len(auxiliary)

        # 2-3. critic (soft TD(0) for pi under the reward r_F + r_L / w) and actor (mirror
        # descent on the critic)
        self.actor.step(penalized, w, tau, gamma, alpha, beta)

        # 4. leader: Hessian-free x-gradient
        g_x = hessian_free_x_gradient(problem, self._x, w, penalized, auxiliary)
        self._x = self._x - xi * g_x
        self.k += 1
        return {"penalty_weight": w, "grad_norm": float(np.sqrt((g_x**2).sum())),
                "alpha": alpha, "xi": xi}
