"""Tabular RLHF (`stackelberg/rlhf-tabular-v0`): a random finite MDP with a hidden true reward,
a reward model as the leader's variable and a soft follower (docs/theory.md §8).

:func:`rlhf_tabular` draws the task (:class:`RLHFTask`); :class:`RLHFProblem` is the bilevel
problem on it: the parameterization is the reward model (tabular, or linear in the task's
features; :mod:`stackelberg.preferences`), the lower level one entropy-regularized follower
whose reward is ``r_x``, and the upper objective the exact Bradley-Terry preference NLL on pairs
of the follower's own one-step segments. What a reward model is worth is measured on the true
reward: :meth:`RLHFProblem.true_return` (the unregularized return of a policy under ``R*``) and
:meth:`RLHFProblem.accuracy` (held-out preference accuracy); :class:`RLHFMetrics` adds both to
the coordinator's exact metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from games._validate import discount, finite_float, nonnegative_int, positive_int
from stackelberg.metrics import ExactMetrics
from stackelberg.preferences import (
    LinearReward,
    PreferenceObjective,
    TabularReward,
    preference_accuracy,
)
from stackelberg.problem import BilevelProblem
from stackelberg.tabular import evaluate_policy, solve_mdp

REWARD_MODELS = ("tabular", "linear")
STARTS = ("single", "uniform")


@dataclass(frozen=True)
class RLHFTask:
    """A finite MDP ``(P, rho, gamma)`` with a hidden true reward ``true_reward[s, a]``, an
    annotator of inverse temperature ``beta``, and the reward model's features
    (``features[s, a, k]``, or None for a tabular reward model)."""

    P: np.ndarray
    rho: np.ndarray
    gamma: float
    true_reward: np.ndarray
    beta: float
    features: np.ndarray | None = None
    name: str = "rlhf-tabular"

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]


def rlhf_tabular(
    n_states: int = 12,
    n_actions: int = 4,
    gamma: float = 0.9,
    beta: float = 1.0,
    reward_model: str = "tabular",
    n_features: int = 4,
    misspecification: float = 0.5,
    concentration: float = 0.3,
    start: str = "single",
    seed: int = 0,
) -> RLHFTask:
    """Draw a tabular RLHF task. All randomness comes from ``numpy.random.default_rng(seed)``.

    Transition rows ``P[s, a, :]`` are Dirichlet(``concentration``) draws (below 1 they are
    sparse, so actions lead to different places and the policy decides which segments are
    seen). With ``reward_model = "linear"`` the features are standard normal and the true reward
    is ``R* = phi w* + misspecification * eps`` (``w*`` and ``eps`` standard normal): the part
    ``eps`` is outside the model's reach, so which pairs the model is fitted on matters. With
    ``"tabular"`` the true reward is standard normal and the model can express it exactly.

    Parameters
    ----------
    n_states, n_actions : int
        ``S`` and ``A`` (>= 1, and at least 2 segments in all).
    gamma : float
        Discount in [0, 1).
    beta : float
        The annotator's inverse temperature (> 0).
    reward_model : {"tabular", "linear"}
    n_features : int
        ``d`` of the linear reward model.
    misspecification : float
        Scale of the part of ``R*`` the linear model cannot express (>= 0).
    concentration : float
        Dirichlet concentration of the transition rows (> 0).
    start : {"single", "uniform"}
        ``rho``: all mass on state 0, or uniform.
    seed : int
    """
    S = positive_int("n_states", n_states)
    A = positive_int("n_actions", n_actions)
    if S * A < 2:
        raise ValueError("n_states * n_actions must be at least 2 (a pair needs two segments)")
    gamma = discount("gamma", gamma)
    beta = finite_float("beta", beta)
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta!r}")
    if reward_model not in REWARD_MODELS:
        raise ValueError(f"reward_model must be one of {REWARD_MODELS}, got {reward_model!r}")
    d = positive_int("n_features", n_features)
    noise = finite_float("misspecification", misspecification)
    alpha = finite_float("concentration", concentration)
    if noise < 0 or not alpha > 0:
        raise ValueError("misspecification must be >= 0 and concentration > 0")
    if start not in STARTS:
        raise ValueError(f"start must be one of {STARTS}, got {start!r}")
    seed = nonnegative_int("seed", seed)
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.full(S, alpha), size=(S, A))
    rho = np.zeros(S)
    if start == "single":
        rho[0] = 1.0
    else:
        rho[:] = 1.0 / S
    if reward_model == "tabular":
        return RLHFTask(P, rho, gamma, rng.normal(size=(S, A)), beta,
                        name=f"rlhf-tabular(seed={seed})")
    features = rng.normal(size=(S, A, d))
    true_reward = features @ rng.normal(size=d) + noise * rng.normal(size=(S, A))
    return RLHFTask(P, rho, gamma, true_reward, beta, features,
                    name=f"rlhf-linear(seed={seed})")


class RLHFProblem(BilevelProblem):
    """``min_x f(x, pi*_x)`` for RLHF on a finite task (docs/theory.md §8): the reward model is
    the follower's reward, the follower is soft-optimal for it with entropy weight ``tau``, and
    ``f`` is the exact preference NLL on the follower's own segments.

    Parameters
    ----------
    task : RLHFTask
    tau : float
        The follower's entropy weight (RLHF's KL term to the uniform policy).
    model_beta : float, optional
        The reward model's inverse temperature (default: the annotator's).
    excess : bool
        Use the excess NLL (the NLL minus the labels' entropy) as ``f``
        (:class:`stackelberg.preferences.PreferenceObjective`).
    """

    #: ``x`` is a reward model, not softmax logits: leaders step in the euclidean geometry.
    leader_geometry = "euclidean"

    def __init__(self, task: RLHFTask, tau: float, model_beta: float | None = None,
                 excess: bool = False):
        if task.features is None:
            model: LinearReward = TabularReward(task.P, task.rho, task.gamma)
        else:
            model = LinearReward(task.features, task.P, task.rho, task.gamma)
        super().__init__(model, PreferenceObjective(model, task.true_reward, task.beta,
                                                    model_beta, excess), tau)
        self.task = task
        self.reward_model = model
        self._optimal: np.ndarray | None = None

    def metrics_observer(self) -> RLHFMetrics:
        """The exact metrics plus the true return and held-out accuracies."""
        return RLHFMetrics(self)

    def true_return(self, pi: np.ndarray) -> float:
        """``rho . V^{R*}_pi``: the policy's discounted return under the true reward, without
        entropy."""
        t = self.task
        return float(t.rho @ evaluate_policy(t.P, t.true_reward, pi, t.gamma).V)

    def optimal_policy(self) -> np.ndarray:
        """A deterministic optimal policy of the true reward (unregularized)."""
        if self._optimal is None:
            t = self.task
            self._optimal = solve_mdp(t.P, t.true_reward, t.gamma, 0.0).pi
        return self._optimal

    def optimal_return(self) -> float:
        return self.true_return(self.optimal_policy())

    def segments(self, pi: np.ndarray) -> np.ndarray:
        """``q_pi(s, a) = d_pi(s) pi(a|s)`` in the task (no reward needed)."""
        t = self.task
        ev = evaluate_policy(t.P, np.zeros_like(pi), pi, t.gamma)
        return ev.visitation(t.rho, t.gamma)[:, None] * pi

    def accuracy(self, x: np.ndarray, pairs: str = "uniform") -> float:
        """Held-out preference accuracy of ``r_x``: the probability that it ranks a pair as
        ``R*`` does, pairs drawn from ``"uniform"`` segments (every ``(s, a)`` alike) or from
        the ``"optimal"`` policy of ``R*``'s occupancy (:func:`stackelberg.preferences.
        preference_accuracy`)."""
        t = self.task
        if pairs == "uniform":
            q = np.full(t.true_reward.shape, 1.0 / t.true_reward.size)
        elif pairs == "optimal":
            q = self.segments(self.optimal_policy())
        else:
            raise ValueError(f"pairs must be 'uniform' or 'optimal', got {pairs!r}")
        return preference_accuracy(self.reward_model.reward(x), t.true_reward, q)


class RLHFMetrics(ExactMetrics):
    """The coordinator's exact metrics (:class:`stackelberg.metrics.ExactMetrics`) plus what an
    RLHF reward model is worth on the true reward: the true return of the follower's exact soft
    best response to ``r_x`` (``true_return``, and ``normalized_return``: 0 for the uniform
    policy, 1 for an optimal policy of ``R*``) and the held-out accuracies
    (``accuracy_uniform``, ``accuracy_optimal``; :meth:`RLHFProblem.accuracy`)."""

    KEYS = ("true_return", "normalized_return", "accuracy_uniform", "accuracy_optimal")

    def __init__(self, problem: RLHFProblem):
        super().__init__(problem)
        S, A = problem.policy_shape
        self.uniform_return = problem.true_return(np.full((S, A), 1.0 / A))

    def __call__(self, x: np.ndarray, played: np.ndarray | None,
                 profile: Sequence[np.ndarray]) -> dict[str, float]:
        metrics = super().__call__(x, played, profile)
        follower = profile[0]
        problem = self.source.detached()
        J = problem.true_return(problem.best_response(x, pi0=follower).pi)
        span = problem.optimal_return() - self.uniform_return
        metrics.update(true_return=J, normalized_return=(J - self.uniform_return) / span,
                       accuracy_uniform=problem.accuracy(x, "uniform"),
                       accuracy_optimal=problem.accuracy(x, "optimal"))
        return metrics

    def summarize(self, final: dict[str, float]) -> dict[str, float]:
        return {**super().summarize(final), **{key: final[key] for key in self.KEYS}}


def rlhf_tabular_problem(
    tau: float,
    *,
    n_states: int = 12,
    n_actions: int = 4,
    gamma: float = 0.9,
    beta: float = 1.0,
    reward_model: str = "tabular",
    n_features: int = 4,
    misspecification: float = 0.5,
    concentration: float = 0.3,
    start: str = "single",
    seed: int = 0,
    model_beta: float | None = None,
    excess: bool = False,
) -> RLHFProblem:
    """The registry's builder of ``stackelberg/rlhf-tabular-v0``: :func:`rlhf_tabular`'s task
    as an :class:`RLHFProblem` at the follower's entropy weight ``tau``."""
    task = rlhf_tabular(n_states=n_states, n_actions=n_actions, gamma=gamma, beta=beta,
                        reward_model=reward_model, n_features=n_features,
                        misspecification=misspecification, concentration=concentration,
                        start=start, seed=seed)
    return RLHFProblem(task, tau, model_beta=model_beta, excess=excess)
