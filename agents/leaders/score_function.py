"""Score-function (policy-gradient) estimates of the values and gradients of docs/theory.md §3.

From episodes of geometric length (:func:`stackelberg.sampling.sample_episodes`: round ``t``
is played with probability ``q**t`` and its rewards weighted by ``rho**t``, ``q rho = gamma``),
every quantity that :class:`stackelberg.problem.JointEvaluation` computes exactly for
``(x, pi)`` has an unbiased sample estimate (docs/theory.md §4, "Sample-based variants"; Williams'
REINFORCE with rewards-to-go, in the random-horizon form of Zhang, Koppel, Zhu, Basar, SIAM J.
Control Optim. 2020). With ``N`` episodes, transitions ``(s_t, b_t, a_t)`` and the rewards-to-go
within an episode

    G^L_t = sum_{t' >= t} rho**(t'-t) r_L(s_t', b_t', a_t')                                (leader)
    G^F_t = sum_{t' >= t} rho**(t'-t) [r_F(s_t', b_t', a_t') - tau log pi(a_t'|s_t')]   (soft)

the estimates are

    V_L(x, pi)         ~ (1/N) sum_i G^L_0(i)                 f = -V_L
    V(x, pi)           ~ (1/N) sum_i G^F_0(i)
    grad_x V_L         ~ (1/N) sum_{i,t} rho**t grad_x log mu_x(b_t|s_t) G^L_t
    grad_theta V_L     ~ (1/N) sum_{i,t} rho**t grad_theta log pi(a_t|s_t) G^L_t
    grad_x V           ~ (1/N) sum_{i,t} rho**t grad_x log mu_x(b_t|s_t) G^F_t
    grad_theta V       ~ (1/N) sum_{i,t} rho**t grad_theta log pi(a_t|s_t) G^F_t

with the softmax scores ``grad_x log mu_x(b|s) = e_b - mu_x(.|s)`` on ``x``'s row of ``s`` (row
0 for a shared commitment) and ``grad_theta log pi(a|s) = e_a - pi(.|s)`` on row ``s``. Why they
are unbiased: ``E[sum_t rho**t h(s_t, b_t, a_t)] = sum_t gamma**t E h = E_{d_pi} h / (1 - gamma)``,
and given round ``t`` the rest of the episode is again geometric, so ``E[G^L_t | s_t, b_t, a_t]``
is the leader's action value ``U_L(s, b, a)`` and ``E[G^F_t | ...]`` is ``U_F(s, b, a) - tau log
pi(a|s)``; these are the closed forms' weights (docs/theory.md §3: ``dV/dtheta = d_pi pi (Q - tau
log pi - V) / (1 - gamma)``; the ``-V(s)`` and, for ``x``, the ``-tau log pi(a|s)`` terms do
not depend on the scored action, and a score has mean zero). The policy-gradient theorem holds
for the leader's commitment in general: the transitions may depend on ``b`` (unlike RAC's
Hessian-free estimate, which needs them not to).

Variance and cost [ours]: ``q = gamma**kappa`` with ``kappa`` in (0, 1] (``rollout_exponent``
in the leaders' configs). ``kappa = 1`` plays episodes of mean length ``1 / (1 - gamma)`` with
unweighted returns, whose random lengths make them noisy when ``gamma`` is near 1; a smaller
``kappa`` costs about ``1 / kappa`` times the transitions and leaves less of the discount to
chance (Zhang et al. take ``kappa = 1/2``). A baseline ``b(s_t)`` subtracted from the
rewards-to-go (:class:`StateBaseline`) keeps every estimate unbiased (a score has mean zero
given ``s_t``) as long as it does not depend on the batch it is used with.

The ``x``-gradients have a second, lower-variance form (``x_estimator = "reward"``, the
default) for a leader who knows the reward tables ``r(s, b, a)`` (as RAC's does): since
``U(s, b, a) = r(s, b, a) + gamma E[V(s') | s, b, a]``, the expectation over ``b_t`` of the
immediate reward's share is taken exactly, and only the continuation is scored,

    grad_x V_L ~ (1/N) sum_{i,t} rho**t [grad_x rbar_L(s_t, a_t)
                                         + grad_x log mu_x(b_t|s_t) (G^L_t - r_L,t - b(s_t))]

with ``grad_x rbar(s, a) = grad_x sum_b mu_x(b|s) r(s, b, a)``
(:meth:`stackelberg.problem.StackelbergProblem.reward_gradients`), and likewise for ``V`` with
``r_F`` and the soft rewards. ``G_t - r_t`` estimates ``gamma E[V(s')|s_t, b_t, a_t]`` without
bias (the rest of the episode after round ``t``). When the transitions do not depend on ``b``
(``GameModel.leader_independent_transitions``) the continuation does not depend on ``b_t``
either: its scored term has mean zero and is left out, which leaves RAC's Hessian-free
estimate (docs/theory.md §4) with the visitation sampled by the episodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stackelberg.problem import Gradient, StackelbergProblem
from stackelberg.sampling import EpisodeBatch, sample_episodes
from stackelberg.tabular import safe_log, softmax
from stackelberg.validation import check_fields

X_ESTIMATORS = ("reward", "score")


@dataclass(frozen=True)
class PolicyGradientEstimate:
    """Sample estimates of ``f(x, pi)``, ``V(x, pi)`` and their gradients in ``(x, theta)``.

    The fields mirror :class:`stackelberg.problem.JointEvaluation`'s ``upper_objective``,
    ``follower_value``, ``grad_upper_objective()`` and ``grad_follower_value()``. Built with
    ``per_episode=True``, every field has a leading axis of one entry per episode (whose mean
    is the estimate), so that a caller can compute standard errors.
    """

    upper_objective: np.ndarray
    follower_value: np.ndarray
    grad_upper_objective: Gradient
    grad_follower_value: Gradient


@dataclass(frozen=True)
class EpisodeSettings:
    """How a leader draws its episodes and estimates from them (a base of leader configs).

    Attributes
    ----------
    episodes : int
        Episodes per batch (:func:`stackelberg.sampling.sample_episodes`).
    rollout_exponent : float
        ``kappa`` in (0, 1]: episodes continue with probability ``gamma**kappa`` (mean length
        about ``1 / (kappa (1 - gamma))``; module docstring).
    x_estimator : str
        ``"reward"`` (the immediate reward's share of the x-gradient in closed form over the
        leader's action, from the known reward tables) or ``"score"`` (pure score function);
        both unbiased (module docstring).
    baseline_rate : float
        In [0, 1]: weight of each batch in the per-state baseline subtracted from the returns
        (:class:`StateBaseline`, one per policy a leader plays); 0 disables it.
    """

    section = "leader"

    episodes: int = 64
    rollout_exponent: float = 0.5
    x_estimator: str = "reward"
    baseline_rate: float = 0.2

    def __post_init__(self) -> None:
        check_fields(self, positive_int=("episodes",), unit_interval=("baseline_rate",))
        if not 0 < self.rollout_exponent <= 1:
            raise ValueError(f"{self.section}.rollout_exponent must be in (0, 1], "
                             f"got {self.rollout_exponent!r}")
        if self.x_estimator not in X_ESTIMATORS:
            raise ValueError(f"{self.section}.x_estimator must be one of {X_ESTIMATORS}, "
                             f"got {self.x_estimator!r}")


class StateBaseline:
    """Per-state running means of the leader's and the follower's rewards-to-go.

    ``values[0, s]`` and ``values[1, s]`` estimate ``V_L(s)`` and the soft ``V(s)`` of the
    policy that played the batches so far; :func:`policy_gradient_estimate` subtracts them from
    the rewards-to-go of a new batch and only then updates them with it, so they never depend on
    the batch they are used with.

    Parameters
    ----------
    n_states : int
    rate : float in [0, 1]
        Weight of a new batch's per-state mean in the running mean (0: the baseline stays 0).
    """

    def __init__(self, n_states: int, rate: float):
        self.values = np.zeros((2, n_states))
        self.rate = rate

    def update(self, states: np.ndarray, leader_to_go: np.ndarray,
               follower_to_go: np.ndarray) -> None:
        """Move the values of the visited states towards this batch's mean rewards-to-go."""
        n_states = self.values.shape[1]
        counts = np.bincount(states, minlength=n_states)
        visited = counts > 0
        for row, to_go in enumerate((leader_to_go, follower_to_go)):
            means = np.bincount(states, weights=to_go, minlength=n_states)[visited]
            self.values[row, visited] += self.rate * (means / counts[visited]
                                                      - self.values[row, visited])


class _Accumulator:
    """Sums of per-transition quantities per group (one episode, or the whole batch) and row."""

    def __init__(self, groups: np.ndarray, n_groups: int):
        self.groups, self.n_groups = groups, n_groups

    def scores(self, rows: np.ndarray, actions: np.ndarray, weights: np.ndarray,
               probs: np.ndarray) -> np.ndarray:
        """``sum weights * (e_action - probs[row])``, shape ``(n_groups, R, K)``: the weighted
        count of every (group, row, action) minus ``probs`` times that of every (group, row)."""
        R, K = probs.shape
        cell = self.groups * R + rows
        by_action = np.bincount(cell * K + actions, weights=weights,
                                minlength=self.n_groups * R * K)
        by_row = np.bincount(cell, weights=weights, minlength=self.n_groups * R)
        return by_action.reshape(self.n_groups, R, K) - by_row.reshape(self.n_groups, R, 1) * probs

    def vectors(self, rows: np.ndarray, values: np.ndarray, n_rows: int) -> np.ndarray:
        """``sum values`` (shape ``(n, K)``) per group and row, shape ``(n_groups, n_rows, K)``."""
        cell = self.groups * n_rows + rows
        total = [np.bincount(cell, weights=column, minlength=self.n_groups * n_rows)
                 for column in values.T]  # one bincount per column: much faster than np.add.at
        return np.stack(total, axis=1).reshape(self.n_groups, n_rows, values.shape[1])


def policy_gradient_estimate(
    problem: StackelbergProblem,
    x: np.ndarray,
    pi: np.ndarray,
    episodes: EpisodeBatch,
    per_episode: bool = False,
    baseline: StateBaseline | None = None,
    x_estimator: str = "reward",
) -> PolicyGradientEstimate:
    """The estimates of the module docstring from ``episodes`` played under ``(mu_x, pi)``.

    Parameters
    ----------
    problem : StackelbergProblem
        Gives the commitment's parameterization, the entropy weight ``tau`` and (for
        ``x_estimator = "reward"``) the reward tables.
    x : array, ``problem.x_shape``
    pi : array (S, A)
        The policy the episodes were played with.
    episodes : EpisodeBatch
        From :func:`stackelberg.sampling.sample_episodes` with ``mu = problem.leader_policy(x)``.
    per_episode : bool
        Return one estimate per episode (leading axis) instead of their mean.
    baseline : StateBaseline, optional
        Subtracted from the rewards-to-go in the scored terms, then updated with this batch.
    x_estimator : str
        ``"reward"`` (default) or ``"score"`` (module docstring).
    """
    if x_estimator not in X_ESTIMATORS:
        raise ValueError(f"x_estimator must be one of {X_ESTIMATORS}, got {x_estimator!r}")
    model, batch = problem.model, episodes.transitions
    s, b, a = batch.states, batch.leader_actions, batch.follower_actions
    soft_rewards = batch.follower_rewards - problem.tau * safe_log(pi)[s, a]
    to_go = (episodes.returns_to_go(batch.leader_rewards), episodes.returns_to_go(soft_rewards))
    values = (episodes.returns(batch.leader_rewards), episodes.returns(soft_rewards))
    centred = to_go
    if baseline is not None:
        centred = (to_go[0] - baseline.values[0, s], to_go[1] - baseline.values[1, s])
        baseline.update(s, *to_go)
    weight = episodes.discount ** episodes.rounds

    n = episodes.n_episodes
    total = _Accumulator(episodes.episode, n) if per_episode else _Accumulator(np.zeros_like(s), 1)
    n_rows = problem.x_shape[0]
    x_rows = s if n_rows == model.n_states else np.zeros_like(s)
    mu_rows = softmax(x, axis=1)

    def x_gradient(tables: np.ndarray, rewards: np.ndarray, to_go: np.ndarray) -> np.ndarray:
        if x_estimator == "score":
            return total.scores(x_rows, b, weight * to_go, mu_rows)
        immediate = total.vectors(
            x_rows, weight[:, None] * problem.reward_gradients(x, tables, s, a), n_rows)
        if model.leader_independent_transitions:
            return immediate
        return immediate + total.scores(x_rows, b, weight * (to_go - rewards), mu_rows)

    def gradient(tables: np.ndarray, rewards: np.ndarray, to_go: np.ndarray) -> Gradient:
        gx = x_gradient(tables, rewards, to_go)
        gtheta = total.scores(s, a, weight * to_go, pi)
        return Gradient(gx, gtheta) if per_episode else Gradient(gx[0] / n, gtheta[0] / n)

    if not per_episode:
        values = tuple(v.mean() for v in values)
    return PolicyGradientEstimate(
        upper_objective=-values[0],
        follower_value=values[1],
        grad_upper_objective=-1.0 * gradient(model.leader_rewards, batch.leader_rewards,
                                             centred[0]),
        grad_follower_value=gradient(model.follower_rewards, soft_rewards, centred[1]),
    )


def sampled_estimate(
    problem: StackelbergProblem,
    x: np.ndarray,
    pi: np.ndarray,
    settings: EpisodeSettings,
    rng: np.random.Generator,
    baseline: StateBaseline | None = None,
) -> tuple[PolicyGradientEstimate, EpisodeBatch]:
    """Play ``settings.episodes`` episodes under ``(mu_x, pi)``, continuing with probability
    ``gamma**settings.rollout_exponent``, and estimate from them
    (:func:`policy_gradient_estimate`); returns the estimate and the episodes."""
    episodes = sample_episodes(problem.model, problem.leader_policy(x), pi, settings.episodes,
                               rng, continuation=problem.model.gamma ** settings.rollout_exponent)
    estimate = policy_gradient_estimate(problem, x, pi, episodes, baseline=baseline,
                                        x_estimator=settings.x_estimator)
    return estimate, episodes
