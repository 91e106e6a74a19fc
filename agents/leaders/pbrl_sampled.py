"""PBRL with the value penalty, from samples: policy-gradient estimates and an inner oracle.

Shen, Yang, Chen, *Principled Penalty-based Methods for Bilevel Reinforcement Learning and
RLHF* (ICML 2024; JMLR 26(114), 2025), the sample-based variant of the value-penalty
algorithm (docs/theory.md §4, "PBRL, value penalty" and "Sample-based variants"; the papers' full
text is not available here, so the equations are named by their sections of
docs/theory.md). The leader minimizes the penalized objective (docs/theory.md §2, value penalty)

    F_lam(x, pi) = f(x, pi) + lam (V*(x) - V(x, pi))

over ``x`` and the penalized policy ``pi = softmax(theta)``, which it keeps (DESIGN, "Who owns
which policy"). By Danskin (docs/theory.md §3), ``grad_x V*(x) = grad_x V(x, pi*_x)``; the
best-response estimate ``pihat`` stands in for ``pi*_x``, so each outer step needs

    G_x     = grad_x f(x, pi) + lam_k (grad_x V(x, pihat) - grad_x V(x, pi))
    G_theta = grad_theta f(x, pi) - lam_k grad_theta V(x, pi)
    x <- x - (alpha_x / lam_k) G_x,        theta <- theta - (alpha_pi / lam_k) G_theta,

as in :mod:`agents.leaders.pbrl` (exact gradients, ``geometry = "euclidean"``), but with every
gradient replaced by its unbiased score-function estimate from sampled episodes
(:mod:`agents.leaders.score_function`), and ``lam_k`` ramping linearly from ``lam_init`` to
``lam`` (:func:`agents.leaders.pbrl.penalty_ramp`). That is ``theta_update = "gradient"``.

``theta_update = "natural"`` (default) [ours] replaces the ``theta`` step by its natural-gradient
form, as PBRL's default geometry does with exact gradients: a soft TD(0) critic of ``pi`` under
the reward ``r_F + r_L / lam_k`` (step ``critic_step``) learned from the same episodes, and a
policy-mirror-descent step ``alpha_pi`` on it (:class:`agents.leaders.actor_critic.
PenalizedActorCritic`, RAC's actor and critic). The critic makes it biased while it learns, but
plain gradient steps on ``theta`` barely move the policy in states that are rarely visited
or where it is nearly greedy: on the grid world even exact Euclidean PBRL stalls (``Phi``
0.12 after 300 iterations), where the natural one reaches -5.28.

The nested loop. The inner oracle produces ``pihat`` and the sample estimates of ``V*(x)``
and its gradient at each outer iteration:

1. ``oracle_steps`` soft-Q steps at ``x`` of the leader's own oracle, anchored to the follower
   learner's policy (:class:`agents.leaders.oracle.SoftQOracle`); with ``oracle_steps = 0``
   ``pihat`` is the follower learner's policy as it is, and the inner loop is the follower
   learner's ``run.follower_steps`` steps per leader step (the coordinator's nested loop);
2. ``episodes`` episodes under ``(mu_x, pihat)``: ``V*(x) ~ V_hat(x, pihat)`` and
   ``grad_x V_hat(x, pihat)``.

Then ``episodes`` episodes under ``(mu_x, pi)`` give the other estimates. [ours] The penalty
floor: ``V*(x) >= V(x, pi)`` for every ``pi``, so where the sampled ``V(x, pi)`` exceeds
``V(x, pihat)`` (a noisy or lagging ``pihat``; with ``soft-q`` at small ``tau`` this happens),
``pi`` is the better best-response estimate and takes ``pihat``'s place in ``G_x`` (whose
penalty part then vanishes). Without it, a ``pihat`` worse than ``pi`` turns the penalty
gradient around, towards raising the follower's reward wherever ``pi`` goes (on the grid
world, a run to the nearest goal cell). The two batches
are drawn with common random numbers (generators in the same state): each estimate stays
unbiased, and the penalty gradient ``grad_x V(x, pihat) - grad_x V(x, pi)``, whose noise the
``lam_k`` multiplies, has far less variance as ``pi`` approaches ``pihat``. Every transition
(oracle and episodes) is counted in ``samples``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agents.leaders.actor_critic import PenalizedActorCritic
from agents.leaders.oracle import OracleSettings, SoftQOracle
from agents.leaders.pbrl import penalty_ramp
from agents.leaders.score_function import EpisodeSettings, StateBaseline, sampled_estimate
from stackelberg.problem import Gradient, StackelbergProblem
from stackelberg.tabular import log_softmax
from stackelberg.validation import check_fields

THETA_UPDATES = ("natural", "gradient")


@dataclass(frozen=True)
class SampledPBRLConfig(EpisodeSettings, OracleSettings):
    """Hyperparameters of the sample-based value-penalty PBRL leader: the fields of
    :class:`agents.leaders.score_function.EpisodeSettings` (``episodes`` per policy per step,
    ...) and of :class:`agents.leaders.oracle.OracleSettings`, and

    Attributes
    ----------
    lam : float
        Final penalty weight ``lam``.
    lam_init : float
        Penalty weight at the first iteration.
    ramp_iterations : int
        Iterations over which ``lam_k`` grows linearly from ``lam_init`` to ``lam``.
    alpha_x : float
        Leader step size, multiplied by ``1 / lam_k`` and by ``(k+1)^-step_decay``.
    step_decay : float
        ``c`` in the leader's step-size factor ``(k+1)^-c`` at step ``k`` (0: constant).
    alpha_pi : float
        Penalized-policy step size: multiplied by ``1 / lam_k`` for ``theta_update =
        "gradient"``; the mirror-descent step for ``"natural"`` (whose critic's reward carries
        the ``1 / lam_k``).
    theta_update : str
        ``"natural"`` (default) or ``"gradient"`` (module docstring).
    critic_step : float
        In (0, 1]: TD step of the critic (``theta_update = "natural"``).
    oracle_steps : int
        Soft-Q steps of the inner oracle per outer step (0: use the follower learner's policy).
    penalty_floor : bool
        Where the sampled ``V(x, pi)`` exceeds ``V(x, pihat)``, let ``pi`` stand in for the
        best response (module docstring).
    """

    lam: float = 20.0
    lam_init: float = 1.0
    ramp_iterations: int = 100
    alpha_x: float = 1.0
    step_decay: float = 0.0
    alpha_pi: float = 1.0
    theta_update: str = "natural"
    critic_step: float = 0.5
    oracle_steps: int = 0
    penalty_floor: bool = True

    def __post_init__(self) -> None:
        EpisodeSettings.__post_init__(self)
        OracleSettings.__post_init__(self)
        check_fields(
            self,
            positive=("lam", "lam_init", "alpha_x", "alpha_pi"),
            non_negative=("step_decay",),
            non_negative_int=("ramp_iterations", "oracle_steps"),
        )
        if self.lam_init > self.lam:
            raise ValueError(f"leader.lam_init ({self.lam_init}) must not exceed lam ({self.lam})")
        if not 0 < self.critic_step <= 1:
            raise ValueError(f"leader.critic_step must be in (0, 1], got {self.critic_step!r}")
        if self.theta_update not in THETA_UPDATES:
            raise ValueError(f"leader.theta_update must be one of {THETA_UPDATES}, "
                             f"got {self.theta_update!r}")


class SampledPBRLLeader:
    """Value-penalty PBRL from sampled episodes with an inner soft-Q oracle (module docstring)."""

    def __init__(self, config: SampledPBRLConfig | None = None):
        self.config = config or SampledPBRLConfig()

    def reset(self, problem: StackelbergProblem, rng: np.random.Generator) -> None:
        c = self.config
        self.problem, self.rng = problem, rng
        self._x = problem.initial_x()
        self.actor = PenalizedActorCritic(problem.policy_shape)
        self.oracle = SoftQOracle(c)
        self.oracle.reset(problem, rng)
        S = problem.model.n_states
        self.baselines = (StateBaseline(S, c.baseline_rate), StateBaseline(S, c.baseline_rate))
        self.episode_samples = 0
        self.k = 0

    @property
    def x(self) -> np.ndarray:
        return self._x

    @property
    def penalized_policy(self) -> np.ndarray:
        return self.actor.policy

    @property
    def samples(self) -> int:
        return self.episode_samples + self.oracle.samples

    def best_response_estimate(self, pihat: np.ndarray) -> np.ndarray:
        """The inner oracle's ``pihat`` (step 1 of the module docstring)."""
        steps = self.config.oracle_steps
        if steps == 0:
            return pihat
        self.oracle.anchor(pihat)
        return self.oracle.improve(self._x, steps)

    def step(self, responses: Sequence[np.ndarray]) -> dict[str, float]:
        c, problem = self.config, self.problem
        lam = penalty_ramp(c, self.k)
        pihat = self.best_response_estimate(responses[0])
        seed = int(self.rng.integers(2**63))  # common random numbers for the two batches
        best, best_episodes = sampled_estimate(problem, self._x, pihat, c,
                                               np.random.default_rng(seed), self.baselines[0])
        own, own_episodes = sampled_estimate(problem, self._x, self.penalized_policy, c,
                                             np.random.default_rng(seed), self.baselines[1])
        self.episode_samples += best_episodes.n_transitions + own_episodes.n_transitions
        if c.penalty_floor and own.follower_value > best.follower_value:
            best = own  # pi is the better estimate of the best response (module docstring)
        grad_p = (Gradient(best.grad_follower_value.x, np.zeros(problem.policy_shape))
                  - own.grad_follower_value)
        grad = own.grad_upper_objective + lam * grad_p
        alpha_x = c.alpha_x * (self.k + 1.0) ** -c.step_decay
        self._x = self._x - (alpha_x / lam) * grad.x
        if c.theta_update == "natural":
            self.actor.step(own_episodes.transitions, lam, problem.tau, problem.model.gamma,
                            c.alpha_pi, c.critic_step)
        else:
            self.actor.log_pi = log_softmax(self.actor.log_pi - (c.alpha_pi / lam) * grad.theta,
                                            axis=1)
        self.k += 1
        return {"penalty_weight": lam, "penalty": float(best.follower_value - own.follower_value),
                "grad_norm": grad.norm()}
