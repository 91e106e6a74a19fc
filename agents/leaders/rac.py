"""RAC: the regularized actor-critic for bilevel RL, from samples alone.

Zeng, Bhatt, Ganesh, Koppel, *A Regularized Actor-Critic Algorithm for Bi-Level Reinforcement
Learning* (AISTATS 2026). A single-loop, first-order method on the value-penalty reformulation
(docs/theory.md §2, §4) whose follower entropy weight ``tau_k`` decays, so that it converges to the
*unregularized* bilevel problem. Three time scales: critic (``beta_k``) fastest, actor
(``alpha_k``), then the leader (``xi_k``) slowest.

Who holds what (DESIGN, "Who owns which policy"): the auxiliary actor that tracks
``argmax V_{tau_k}(x_k, .)`` is the match's follower learner (its policy is ``pihat``; with
``soft-q`` it learns from samples too); RAC keeps the penalized actor ``theta``, its soft critic,
and ``x``. RAC sets ``tau_k`` through :meth:`RACLeader.entropy_weight`, which the coordinator
applies to the problem before each iteration, so the follower tracks the same ``tau_k``.

Per iteration ``k`` (details [ours], docs/theory.md §4):

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
every constant and exponent is a config field. Five switches, all off by default
(:class:`RACConfig`): ``xi_per_penalty`` (step ``xi_k / w_k``), ``x_warmup`` (hold ``x`` while
the actor converges), ``critic_uniform_samples`` (critic transitions from uniform pairs),
``common_random_numbers`` (coupled chains for the two visitations in ``g_x``) and
``critic = "model"`` (a certainty-equivalence critic instead of TD(0)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agents.leaders.actor_critic import ModelBasedPenalizedActor, PenalizedActorCritic
from agents.leaders.rac_rlhf import SegmentChains, preference_step
from stackelberg.preferences import PreferenceObjective
from stackelberg.problem import StackelbergProblem
from stackelberg.sampling import (
    TransitionBatch,
    sample_categorical,
    sample_from_cdf,
    sample_transitions,
)
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
    xi_per_penalty : bool
        Divide the leader step by the penalty weight: ``x -= (xi_k / w_k) g_x``. ``g_x`` carries
        the factor ``w_k`` (docs/theory.md §4, RAC), so without this the leader's step, and the
        sampling noise it carries, grow with ``w_k``; PBRL likewise takes steps ``O(1/lam)``
        (docs/theory.md §4, PBRL). With it, ``xi0`` and ``xi_decay`` are those of the step on
        ``g_x / w_k = grad_x f / w_k + grad_x (V(x, pihat) - V(x, pi))``; it is the same as
        ``xi0 / w0`` and ``xi_decay + w_growth`` without it, a step of order ``xi_k / w_k``
        that the time-scale conditions of Zeng et al. allow.
    x_warmup : int
        Iterations during which ``x`` stays at its start while the critic and the penalized
        actor converge to ``x``'s penalized response (its samples are drawn and counted all the
        same). Before that, ``g_x`` is evaluated at a policy that is nowhere near the penalized
        response, and its steps throw ``x`` around; the time-scale separation of Zeng et al.
        assumes the actor tracks. The leader's step schedule starts when ``x`` starts to move:
        ``xi_k = xi0 (k - x_warmup + 1)^-xi_decay``.
    batch_size : int
        Parallel chains per policy: transitions per policy per iteration.
    critic_uniform_samples : int
        Extra transitions per iteration for the critic, drawn at uniformly chosen state-action
        pairs (generative-model access, as the ``soft-q`` follower draws them) and counted as
        samples. The critic's TD target averages over ``pi_theta`` at the next state, so it
        evaluates ``pi_theta`` from any state-action pair (off-policy, tabular). ``pi_theta``'s
        own chains rarely visit the states its actions avoid, so without these the critic
        there stays at its start, and the actor cannot learn that a far-away candidate pays
        (the GridWorld's target); the hypergradient's signal lives in exactly those states.
    critic : {"td", "model"}
        ``"td"``: the soft TD(0) critic of the paper (:class:`PenalizedActorCritic`).
        ``"model"``: a certainty-equivalence critic (:class:`ModelBasedPenalizedActor`) that
        evaluates the policy exactly on a model estimated from the same transitions (the
        leader sees its own action ``b`` and knows ``mu_x``); ``beta0`` and ``beta_decay``
        are then unused, and a large ``alpha0`` makes the actor soft policy iteration. The TD
        actor lags the penalized response as ``x`` moves, and ``w_k`` amplifies the lag in
        ``g_x`` into a drag towards where ``x`` was (measured on the GridWorld).
    common_random_numbers : bool
        Drive the chains of ``pi_theta`` and those of ``pihat`` with the same random numbers
        (two generators in the same state): chain ``i`` of both sets starts in the same state,
        restarts at the same steps to the same state, and takes the same action and next state
        wherever the two policies agree (inverse-CDF draws). Each set is still distributed as
        its policy's visitation, so ``g_x`` stays unbiased, but the two sample means in ``g_x``
        now share most of their noise, which cancels in their difference as ``pi_theta`` nears
        ``pihat`` (``w_k`` grows). Without it the difference carries the noise of two independent
        sets of chains, amplified by ``w_k``, and persistent: a chain forgets its state only at
        a restart, every ``1 / (1 - gamma)`` steps on average, so the noise of successive
        ``g_x`` does not average out. (GridWorld at ``x = 0``, ``w = 24``, 256 chains: the
        sampled ``|g_x| / w`` is 0.03-0.15 without, 0.010-0.022 with, exact 0.008-0.012.)
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
    xi_per_penalty: bool = False
    x_warmup: int = 0
    batch_size: int = 256
    critic_uniform_samples: int = 0
    common_random_numbers: bool = False
    critic: str = "td"

    def __post_init__(self) -> None:
        check_fields(
            self,
            positive=("w0", "alpha0", "beta0", "xi0"),
            non_negative=("tau_decay", "w_growth", "alpha_decay", "beta_decay", "xi_decay"),
            positive_int=("batch_size",),
            non_negative_int=("x_warmup", "critic_uniform_samples"),
        )
        if self.critic not in ("td", "model"):
            raise ValueError(f"leader.critic must be 'td' or 'model', got {self.critic!r}")
        if self.beta0 > 1:
            raise ValueError(f"leader.beta0 must be in (0, 1], got {self.beta0!r}")


class VisitationChains:
    """``n`` parallel chains whose states are distributed as a policy's discounted visitation:
    each step follows the game, or restarts from ``rho`` with probability ``1 - gamma``."""

    def __init__(self, problem: StackelbergProblem, n: int, rng: np.random.Generator):
        self.problem, self.rng = problem, rng
        self.states = self._restart_states(n)

    def _restart_states(self, n: int) -> np.ndarray:
        cdf = self.problem.model.initial_cdf
        return sample_from_cdf(np.broadcast_to(cdf, (n, cdf.size)), self.rng)

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
        # RLHF (docs/theory.md §8.1): labelled pairs of segments instead of game transitions
        self.preferences = isinstance(problem.upper, PreferenceObjective)
        if self.preferences:
            self._reset_preferences(problem, rng)
            return
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
        if c.critic == "model":
            self.actor = ModelBasedPenalizedActor(problem.policy_shape,
                                                  problem.model.n_leader_actions)
        else:
            self.actor = PenalizedActorCritic(problem.policy_shape)
        if c.common_random_numbers:
            state = rng.integers(2**63)
            streams = np.random.default_rng(state), np.random.default_rng(state)
        else:
            streams = rng, rng
        self.penalized_chains = VisitationChains(problem, c.batch_size, streams[0])
        self.auxiliary_chains = VisitationChains(problem, c.batch_size, streams[1])
        self.k = 0
        self.samples = 0

    def _reset_preferences(self, problem, rng: np.random.Generator) -> None:
        """Start on an RLHF problem (:mod:`agents.leaders.rac_rlhf`): TD critic only, chains of
        the task's MDP; the transitions never depend on ``x``."""
        c = self.config
        if c.critic != "td" or c.critic_uniform_samples:
            raise ValueError("rac on a preference problem supports only leader.critic = 'td' "
                             "and critic_uniform_samples = 0")
        if problem.tau <= 0:
            raise ValueError("rac needs follower.tau > 0 (tau_0 of its decaying schedule)")
        self.problem, self.rng = problem, rng
        self.tau0 = problem.tau
        self._x = problem.initial_x()
        self.actor = PenalizedActorCritic(problem.policy_shape)
        streams = rng, rng
        if c.common_random_numbers:  # as on a game: both chain sets driven by equal streams
            state = rng.integers(2**63)
            streams = np.random.default_rng(state), np.random.default_rng(state)
        self.penalized_chains = SegmentChains(problem.upper, c.batch_size, streams[0])
        self.auxiliary_chains = SegmentChains(problem.upper, c.batch_size, streams[1])
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

    def _critic_batch(self, penalized: TransitionBatch) -> TransitionBatch:
        """``penalized`` plus ``critic_uniform_samples`` transitions from uniform pairs."""
        n = self.config.critic_uniform_samples
        if n == 0:
            return penalized
        S, A = self.problem.policy_shape
        states, actions = self.rng.integers(S, size=n), self.rng.integers(A, size=n)
        uniform = sample_transitions(self.problem.model, self.problem.leader_policy(self._x),
                                     states, actions, self.rng)
        self.samples += n
        return TransitionBatch.concatenate([penalized, uniform])

    def step(self, responses: Sequence[np.ndarray]) -> dict[str, float]:
        c, problem = self.config, self.problem
        tau = problem.tau
        w = self._schedule(c.w0, c.w_growth)
        alpha = self._schedule(c.alpha0, -c.alpha_decay)
        beta = self._schedule(c.beta0, -c.beta_decay)
        moving = self.k >= c.x_warmup
        xi = c.xi0 * (self.k - c.x_warmup + 1.0) ** -c.xi_decay if moving else 0.0
        if c.xi_per_penalty:
            xi /= w
        pi, pihat = self.penalized_policy, responses[0]
        if self.preferences:
            return self._preference_step(pi, pihat, w, alpha, beta, xi)

        # 1. samples of both visitations
        gamma = problem.model.gamma
        penalized = self.penalized_chains.step(self._x, pi)
        auxiliary = self.auxiliary_chains.step(self._x, pihat)
        self.samples += len(penalized) + len(auxiliary)

        # 2-3. critic (soft TD(0) for pi under the reward r_F + r_L / w) and actor (mirror
        # descent on the critic)
        critic_batch = self._critic_batch(penalized)
        if c.critic == "model":
            self.actor.step(critic_batch, problem.leader_policy(self._x), w, tau, gamma, alpha)
        else:
            self.actor.step(critic_batch, w, tau, gamma, alpha, beta)

        # 4. leader: Hessian-free x-gradient
        g_x = hessian_free_x_gradient(problem, self._x, w, penalized, auxiliary)
        self._x = self._x - xi * g_x
        self.k += 1
        return {"penalty_weight": w, "grad_norm": float(np.sqrt((g_x**2).sum())),
                "alpha": alpha, "xi": xi}

    def _preference_step(self, pi: np.ndarray, pihat: np.ndarray, w: float, alpha: float,
                         beta: float, xi: float) -> dict[str, float]:
        """Steps 1-4 on an RLHF problem: both chains move, pairs of the penalized chains'
        segments are labelled, the actor follows ``r_x - (1 - gamma) c / w`` and ``x`` the
        Hessian-free ``g_x`` (:func:`agents.leaders.rac_rlhf.preference_step`)."""
        problem = self.problem
        drawn = preference_step(problem.upper, self._x, w, self.penalized_chains.step(pi),
                                self.auxiliary_chains.step(pihat), self.rng)
        self.samples += 2 * len(drawn.batch)
        self.actor.step(drawn.batch, w, problem.tau, problem.follower_mdp(self._x).gamma,
                        alpha, beta)
        self._x = self._x - xi * drawn.g_x
        self.k += 1
        return {"penalty_weight": w, "grad_norm": float(np.sqrt((drawn.g_x**2).sum())),
                "alpha": alpha, "xi": xi, "labels": float(drawn.labels)}
