"""RLHF's upper level: a reward model fitted to Bradley-Terry preferences on the follower's own
segments (docs/theory.md §8).

The leader's variable ``x`` is a reward model ``r_x(s, a)`` and it *is* the follower's reward
(the follower's kernel ``P`` does not depend on ``x``):

- :class:`TabularReward`: ``r_x = x``, one entry per ``(s, a)``;
- :class:`LinearReward`: ``r_x(s, a) = phi(s, a) . x``, features ``phi`` of dimension ``d``.

Both are :class:`stackelberg.bilevel.Parameterization` s with a closed-form vjp.

:class:`PreferenceObjective` is the upper objective ``f(x, pi)``: the expected Bradley-Terry
negative log-likelihood of ``r_x`` on pairs of one-step segments ``z = (s, a)`` drawn
independently from the current policy's discounted occupancy ``q_pi(s, a) = d_pi(s) pi(a|s)``,
with labels from a hidden true reward ``R*`` and an annotator of temperature ``beta``. The
expectation over pairs is a quadratic form in ``q_pi`` and is computed exactly, with its
gradients in ``x`` and in the follower's logits (docs/theory.md §8). :func:`sample_pairs` and
:func:`sampled_loss` are the same objective from sampled pairs and labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from stackelberg.bilevel import FollowerModel, Gradient
from stackelberg.lower_level import follower_logit_gradient
from stackelberg.scipy_functions import scipy_functions as sf
from stackelberg.tabular import row_sum

if TYPE_CHECKING:
    from stackelberg.evaluation import JointEvaluation


def softplus(z: np.ndarray) -> np.ndarray:
    """``log(1 + e^z)``, stable for large ``|z|`` (``-log sigmoid(-z)``)."""
    return np.logaddexp(0.0, z)


class LinearReward:
    """The reward model ``r_x(s, a) = sum_k features[s, a, k] x[0, k]`` as the follower's reward
    (a :class:`stackelberg.bilevel.Parameterization`; the kernel ``P`` is fixed).

    ``x`` has shape ``(1, d)`` (one row of weights: the leaders' search utilities read 2-D
    variables). Zero weights, the neutral start, give the follower a zero reward.
    """

    def __init__(self, features: np.ndarray, P: np.ndarray, rho: np.ndarray, gamma: float):
        self.features = np.asarray(features, dtype=float)
        self._set_model(P, rho, gamma)

    def _set_model(self, P: np.ndarray, rho: np.ndarray, gamma: float) -> None:
        self.P, self.rho = np.array(P, dtype=float), np.array(rho, dtype=float)
        self.gamma = float(gamma)
        for array in (self.P, self.rho):
            array.flags.writeable = False  # shared with every FollowerModel

    @property
    def x_shape(self) -> tuple[int, ...]:
        return (1, self.features.shape[2])

    def initial_x(self) -> np.ndarray:
        return np.zeros(self.x_shape)

    def reward(self, x: np.ndarray) -> np.ndarray:
        """``r_x[s, a]``."""
        if x.shape != self.x_shape:
            raise ValueError(f"reward-model weights must have shape {self.x_shape}, "
                             f"got {x.shape}")
        return self.features @ x[0]

    def reward_vjp(self, weights: np.ndarray) -> np.ndarray:
        """The gradient in ``x`` of ``sum_{s,a} weights[s, a] r_x(s, a)``: ``phi^T weights``."""
        return np.einsum("sa,sak->k", weights, self.features)[None, :]

    def followers(self, x: np.ndarray) -> FollowerModel:
        r = self.reward(x)[None]
        r.flags.writeable = False
        return FollowerModel(P=self.P, r=r, rho=self.rho, gamma=self.gamma,
                             action_sizes=(self.P.shape[1],))

    def vjp(self, x: np.ndarray, dP: np.ndarray | None, dr: np.ndarray | None) -> np.ndarray:
        """Only ``dr`` reaches ``x`` (``P`` does not depend on it)."""
        if dr is None:
            return np.zeros(self.x_shape)
        return self.reward_vjp(dr[0])


class TabularReward(LinearReward):
    """The tabular reward model ``r_x = x``, shape ``(S, A)`` (one-hot features, without
    forming them)."""

    def __init__(self, P: np.ndarray, rho: np.ndarray, gamma: float):
        self._set_model(P, rho, gamma)
        self._shape = self.P.shape[:2]

    @property
    def x_shape(self) -> tuple[int, ...]:
        return tuple(self._shape)

    def reward(self, x: np.ndarray) -> np.ndarray:
        if x.shape != self.x_shape:
            raise ValueError(f"a tabular reward model must have shape {self.x_shape}, "
                             f"got {x.shape}")
        return x.copy()

    def reward_vjp(self, weights: np.ndarray) -> np.ndarray:
        return np.array(weights, dtype=float)


@dataclass(frozen=True)
class PairTerms:
    """The exact pair expectation's ingredients on flat segments ``z = s * A + a``:
    ``q[z]`` (the segment distribution), ``loss[i, j]`` (the expected NLL of the pair
    ``(z0, z1) = (i, j)``) and ``slope[i, j]`` (its derivative in ``r_x(z1) - r_x(z0)``)."""

    q: np.ndarray
    loss: np.ndarray
    slope: np.ndarray


class PreferenceObjective:
    """The Bradley-Terry preference NLL on the follower's own one-step segments
    (docs/theory.md §8), an :class:`stackelberg.upper_level.UpperObjective`.

    ``f(x, pi) = sum_{i,j} q_pi(i) q_pi(j) l_x(i, j)`` with ``q_pi(s, a) = d_pi(s) pi(a|s)`` and
    ``l_x(i, j) = -p*_ij log sigmoid(b D_ij) - (1 - p*_ij) log sigmoid(-b D_ij)``,
    ``D_ij = r_x(j) - r_x(i)``, ``p*_ij = sigmoid(beta (R*(j) - R*(i)))``.

    Parameters
    ----------
    model : LinearReward
        The reward model (the problem's parameterization): ``r_x`` and its vjp.
    true_reward : array (S, A)
        ``R*``, which only the annotator sees.
    beta : float
        The annotator's inverse temperature.
    model_beta : float, optional
        ``b``, the reward model's own inverse temperature (default ``beta``: then, for a fixed
        policy, ``r_x = R* + const`` minimizes ``f`` in ``x`` when the model can express it).
    excess : bool
        Subtract the annotator's label entropy ``H(p*_ij)`` from every pair's loss [ours]: ``f``
        is then the expected KL from the annotator's labels to the model's, zero at a perfect
        model whatever the policy. The NLL itself (default) is what sampled labels estimate;
        its label-entropy part depends on the policy alone, so it pulls a bilevel leader
        towards policies whose pairs are easy to label. Same ``x`` gradient either way.
    """

    def __init__(self, model: LinearReward, true_reward: np.ndarray, beta: float,
                 model_beta: float | None = None, excess: bool = False):
        if not beta > 0:
            raise ValueError(f"the annotator's beta must be > 0, got {beta!r}")
        self.model = model
        self.true_reward = np.asarray(true_reward, dtype=float)
        self.beta = float(beta)
        self.model_beta = self.beta if model_beta is None else float(model_beta)
        if not self.model_beta > 0:
            raise ValueError(f"the reward model's beta must be > 0, got {model_beta!r}")
        R = self.true_reward.reshape(-1)
        #: p*_ij, the annotator's probability of preferring segment j to segment i
        self.preference = sf.expit(self.beta * (R[None, :] - R[:, None]))
        p = self.preference
        #: H(p*_ij), the entropy of the annotator's label on each pair
        self.entropy = -(p * np.log(p) + (1.0 - p) * np.log1p(-p))
        self.excess = bool(excess)

    def pair_terms(self, x: np.ndarray, q: np.ndarray) -> PairTerms:
        """:class:`PairTerms` at ``x`` for the segment distribution ``q`` (shape ``(S, A)``)."""
        r = self.model.reward(x).reshape(-1)
        bD = self.model_beta * (r[None, :] - r[:, None])
        p = self.preference
        loss = p * softplus(-bD) + (1.0 - p) * softplus(bD)
        if self.excess:
            loss = loss - self.entropy
        slope = self.model_beta * (sf.expit(bD) - p)
        return PairTerms(q.reshape(-1), loss, slope)

    @staticmethod
    def segments(ev: JointEvaluation) -> np.ndarray:
        """``q_pi(s, a) = d_pi(s) pi(a|s)``, the one-step segment distribution."""
        return ev.visitation[:, None] * ev.pi

    def value(self, ev: JointEvaluation) -> float:
        t = self.pair_terms(ev.x, self.segments(ev))
        return float(t.q @ t.loss @ t.q)

    def gradient(self, ev: JointEvaluation, mirror: bool = False) -> Gradient:
        """``grad f`` in ``x`` and ``theta`` (docs/theory.md §8).

        ``x``: ``l`` depends on ``r_x`` through ``D``; the slope matrix is antisymmetric, so
        ``df/dr_x(z) = 2 q(z) sum_i q(i) slope(i, z)``, pulled back by the reward model's vjp.
        ``theta``: ``f`` is quadratic in ``q_pi`` with the symmetric ``l``, so at a fixed ``x``
        its derivative in ``q`` is the frozen reward ``c = 2 l q``, and
        ``sum_z c(z) q_pi(z) = (1 - gamma) rho . V_c`` is a value: its policy gradient is
        ``d_pi(s) pi(a|s) (Q_c - V_c)(s, a)`` on the follower's own chain (``V_c`` by one solve
        with the evaluation's factorization).
        """
        if mirror:
            raise ValueError("the preference objective has no mirror geometry (x is a reward "
                             "model, not logits): use the euclidean one")
        m, pi = ev.mdp, ev.pi
        S, A = pi.shape
        t = self.pair_terms(ev.x, self.segments(ev))
        dr = 2.0 * t.q * (t.q @ t.slope)
        grad_x = self.model.reward_vjp(dr.reshape(S, A))
        c = (2.0 * (t.loss @ t.q)).reshape(S, A)
        V_c = ev.follower.solve(row_sum(pi * c))
        Q_c = c + m.gamma * (m.P.reshape(S * A, S) @ V_c).reshape(S, A)
        theta = follower_logit_gradient(ev.visitation, pi, Q_c - V_c[:, None])
        return Gradient(x=grad_x, theta=theta)

    def combination(self, ev: JointEvaluation, leader: float, follower: float,
                    mirror: bool = False) -> Gradient:
        """Gradient of ``-leader * f + follower * V(x, pi)`` (the convention of
        :meth:`stackelberg.upper_level.ValueObjective.combination`, where ``f = -V_u``): the
        penalized leader's direction with ``leader = -1``, ``follower = -lam``."""
        total = Gradient(np.zeros(ev.x.shape), np.zeros(ev.pi.shape))
        if leader != 0:
            total = total + (-leader) * self.gradient(ev, mirror)
        if follower != 0:
            total = total + follower * ev.grad_follower_value(mirror)
        return total

    def label_entropy(self, q: np.ndarray) -> float:
        """``sum_{i,j} q(i) q(j) H(p*_ij)``: the least ``f`` any reward model reaches on the
        pairs of ``q`` (the NLL is this plus the expected KL from the annotator's labels)."""
        flat = q.reshape(-1)
        return float(flat @ self.entropy @ flat)


def preference_accuracy(model_reward: np.ndarray, true_reward: np.ndarray,
                        q: np.ndarray) -> float:
    """The probability that the reward model ranks a pair as ``R*`` does, for two segments drawn
    independently from ``q`` (pairs that ``R*`` ties are left out; a tie of the model counts
    one half)."""
    r, R, w = model_reward.reshape(-1), true_reward.reshape(-1), q.reshape(-1)
    truth = np.sign(R[None, :] - R[:, None])
    guess = np.sign(r[None, :] - r[:, None])
    weight = np.outer(w, w) * (truth != 0)
    agree = np.where(guess == 0, 0.5, (guess == truth).astype(float))
    return float((weight * agree).sum() / weight.sum())


@dataclass(frozen=True)
class PreferencePairs:
    """Sampled pairs of one-step segments and their labels: ``first`` and ``second`` are flat
    segment indices ``s * A + a``; ``label`` is 1 where the annotator preferred ``second``."""

    first: np.ndarray
    second: np.ndarray
    label: np.ndarray

    def __len__(self) -> int:
        return len(self.label)


def sample_segments(P: np.ndarray, rho: np.ndarray, gamma: float, pi: np.ndarray, n: int,
                    rng: np.random.Generator) -> np.ndarray:
    """``n`` flat segments ``s * A + a`` distributed as ``q_pi = d_pi pi``, from rollouts: each
    episode starts from ``rho`` and stops after every step with probability ``1 - gamma``; the
    state where it stops is distributed as ``d_pi`` (a geometric stopping time), and the
    segment is that state with the policy's action there."""
    S, A = pi.shape
    states = rng.choice(S, size=n, p=rho)
    running = rng.random(n) < gamma
    while running.any():
        idx = np.flatnonzero(running)
        s = states[idx]
        a = (rng.random((idx.size, 1)) > np.cumsum(pi[s], axis=1)).sum(axis=1)
        a = np.minimum(a, A - 1)
        u = rng.random((idx.size, 1))
        states[idx] = np.minimum((u > np.cumsum(P[s, a], axis=1)).sum(axis=1), S - 1)
        running[idx] = rng.random(idx.size) < gamma
    actions = np.minimum((rng.random((n, 1)) > np.cumsum(pi[states], axis=1)).sum(axis=1),
                         A - 1)
    return states * A + actions


def sample_pairs(objective: PreferenceObjective, pi: np.ndarray, n: int,
                 rng: np.random.Generator) -> PreferencePairs:
    """``n`` independent pairs of segments from the policy's rollouts, labelled by the
    Bradley-Terry annotator (``P(second preferred) = sigmoid(beta (R*(second) - R*(first)))``)."""
    m = objective.model
    first = sample_segments(m.P, m.rho, m.gamma, pi, n, rng)
    second = sample_segments(m.P, m.rho, m.gamma, pi, n, rng)
    label = (rng.random(n) < objective.preference[first, second]).astype(float)
    return PreferencePairs(first, second, label)


@dataclass(frozen=True)
class SampledLoss:
    """The mean NLL of a batch of labelled pairs and its gradient in ``x`` (an unbiased estimate
    of ``f(x, pi)`` and ``grad_x f(x, pi)`` for pairs from ``pi``)."""

    value: float
    grad_x: np.ndarray


def sampled_loss(objective: PreferenceObjective, x: np.ndarray,
                 pairs: PreferencePairs) -> SampledLoss:
    """The Bradley-Terry NLL of ``r_x`` on sampled pairs: ``mean(-y log sigmoid(b D) - (1 - y)
    log sigmoid(-b D))`` and its gradient ``mean(b (sigmoid(b D) - y) (phi(second) -
    phi(first)))``."""
    r = objective.model.reward(x)
    S, A = r.shape
    flat = r.reshape(-1)
    bD = objective.model_beta * (flat[pairs.second] - flat[pairs.first])
    y = pairs.label
    value = float(np.mean(y * softplus(-bD) + (1.0 - y) * softplus(bD)))
    slope = objective.model_beta * (sf.expit(bD) - y) / len(pairs)
    dr = np.zeros(S * A)
    np.add.at(dr, pairs.second, slope)
    np.add.at(dr, pairs.first, -slope)
    return SampledLoss(value, objective.model.reward_vjp(dr.reshape(S, A)))
