"""Certainty-equivalence (model-based) learning of the soft best response from samples.

Each step draws ``batch_size`` transitions from the game's model under the leader's current
commitment, at state-action pairs chosen uniformly (generative-model access, as ``soft-q``), and
sees of each what ``soft-q`` sees: the pair ``(s, a)``, the reward ``r_F`` received and the next
state ``s'`` (not the leader's action ``b``). From them it keeps

- transition counts ``N(s, a, s')``, discounted by ``transition_memory`` per step, so
  ``P_hat(s'|s, a) = N(s, a, s') / sum_s'' N(s, a, s'')`` (a pair not seen yet stays where it is);
- reward sums ``R(s, a)`` and counts ``W(s, a)``, discounted by ``reward_memory`` per step, so
  ``r_hat(s, a) = R / W`` is an exponentially weighted mean of the rewards received. The reward
  depends on the leader's commitment (``r_x(s, a) = sum_b mu_x(b|s) r_F(s, b, a)``), which moves,
  so old rewards are forgotten;

and then plays the exact soft best response of the estimated MDP ``(P_hat, r_hat)`` at the
current entropy weight (docs/theory.md §1, soft optimality), by policy iteration warm-started
from its previous policy (:func:`stackelberg.tabular.solve_mdp`). This is the certainty-
equivalence principle of model-based RL (e.g. Azar, Munos, Kappen, *Minimax PAC bounds on the
sample complexity of reinforcement learning with a generative model*, Mach. Learn. 2013): with
a generative model the plug-in solution converges to the optimal one as the counts grow. Unlike
soft Q-learning, no value has to propagate through the grid by bootstrapping, so the policy
follows the leader's commitment as fast as the reward estimates do.

When the transitions depend on the leader's action, ``P_hat`` estimates ``sum_b mu_x(b|s)
P(s'|s, b, a)`` under the commitments seen so far; set ``transition_memory < 1`` to track a
moving commitment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stackelberg.problem import StackelbergProblem
from stackelberg.sampling import TransitionBatch, sample_transitions
from stackelberg.tabular import solve_mdp
from stackelberg.validation import check_fields


def tally(shape: tuple[int, ...], indices: tuple[np.ndarray, ...],
          weights: np.ndarray | None = None) -> np.ndarray:
    """Per cell of an array of ``shape``, how many samples have the index ``indices`` there
    (or the sum of their ``weights``): e.g. ``tally((S, A, S), (s, a, s'))`` counts
    transitions."""
    key = np.ravel_multi_index(indices, shape)
    return np.bincount(key, weights=weights, minlength=math.prod(shape)).reshape(shape)


def empirical_transitions(counts: np.ndarray) -> np.ndarray:
    """``P_hat(s'|s, a) = N(s, a, s') / sum_s'' N(s, a, s'')`` from counts of shape ``(S, A, S)``;
    a pair never seen stays where it is."""
    totals = counts.sum(axis=2, keepdims=True)
    P = counts / np.maximum(totals, 1e-300)  # 0 where a pair was never seen
    states, actions = np.nonzero(totals[:, :, 0] == 0)
    P[states, actions, states] = 1.0  # stay put
    return P


def empirical_means(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``sums / counts`` where ``counts > 0``, else 0."""
    seen = counts > 0
    return np.where(seen, sums / np.where(seen, counts, 1.0), 0.0)


@dataclass(frozen=True)
class ModelBasedConfig:
    """Hyperparameters of the certainty-equivalence follower.

    Attributes
    ----------
    batch_size : int
        Transitions drawn per step, at uniformly chosen state-action pairs.
    reward_memory : float
        Factor in (0, 1] by which the reward statistics are discounted at every step: the reward
        estimate averages over about ``1 / (1 - reward_memory)`` steps (1: all of them, for a
        leader that does not move).
    transition_memory : float
        Same for the transition counts; 1 (keep every count) is right when the transitions do
        not depend on the leader's action.
    tol : float
        Tolerance of the policy iteration on the estimated MDP (max-norm policy change).
    observes_commitment : bool
        Also use what a Stackelberg follower may know but ``soft-q`` does not use: the leader's
        action ``b`` in every transition and her commitment ``mu_x``. The follower then
        estimates the stationary rewards ``r_F(s, b, a)`` by plain sample means and takes
        ``r_hat_x(s, a) = sum_b mu_x(b|s) r_hat_F(s, b, a)``, which follows ``x`` without the lag
        of a moving average (``reward_memory`` is unused). Off by default: with it the follower
        has more information than ``soft-q``.
    """

    section = "follower"

    batch_size: int = 1024
    reward_memory: float = 0.99
    transition_memory: float = 1.0
    tol: float = 1e-8
    observes_commitment: bool = False

    def __post_init__(self) -> None:
        check_fields(self, positive_int=("batch_size",), positive=("tol",),
                     unit_interval=("reward_memory", "transition_memory"))
        for name in ("reward_memory", "transition_memory"):
            if getattr(self, name) <= 0:
                raise ValueError(f"follower.{name} must be in (0, 1], got {getattr(self, name)!r}")


class ModelBasedFollower:
    """Soft best response to an estimated model of the follower's MDP (module docstring)."""

    def __init__(self, config: ModelBasedConfig | None = None):
        self.config = config or ModelBasedConfig()

    def reset(self, problem: StackelbergProblem, rng: np.random.Generator) -> None:
        self.problem = problem
        self.rng = rng
        S, A = problem.policy_shape
        B = problem.model.n_leader_actions
        reward_shape = (S, B, A) if self.config.observes_commitment else (S, A)
        self.transition_counts = np.zeros((S, A, S))
        self.reward_sums = np.zeros(reward_shape)
        self.reward_counts = np.zeros(reward_shape)
        self._policy = np.full((S, A), 1.0 / A)
        self._mu = problem.leader_policy(problem.initial_x())
        self.samples = 0

    def estimated_mdp(self) -> tuple[np.ndarray, np.ndarray]:
        """``(P_hat, r_hat)`` from the statistics so far (unseen pairs: stay put, reward 0),
        for the commitment of the last step when ``observes_commitment``."""
        r = empirical_means(self.reward_sums, self.reward_counts)
        if self.config.observes_commitment:
            r = np.einsum("sb,sba->sa", self._mu, r)
        return empirical_transitions(self.transition_counts), r

    def observe(self, batch: TransitionBatch) -> None:
        """Discount the statistics by the memories and add one batch of transitions."""
        c = self.config
        S, A = self._policy.shape
        self.transition_counts *= c.transition_memory
        self.transition_counts += tally((S, A, S), (batch.states, batch.follower_actions,
                                                    batch.next_states))
        if c.observes_commitment:  # (s, b, a), stationary: plain means
            cell = (batch.states, batch.leader_actions, batch.follower_actions)
        else:
            cell = (batch.states, batch.follower_actions)
            self.reward_counts *= c.reward_memory
            self.reward_sums *= c.reward_memory
        shape = self.reward_sums.shape
        self.reward_counts += tally(shape, cell)
        self.reward_sums += tally(shape, cell, batch.follower_rewards)

    def step(self, x: np.ndarray) -> None:
        problem, c = self.problem, self.config
        S, A = self._policy.shape
        states = self.rng.integers(S, size=c.batch_size)
        actions = self.rng.integers(A, size=c.batch_size)
        batch = sample_transitions(problem.model, problem.leader_policy(x), states, actions,
                                   self.rng)
        self.samples += c.batch_size
        self._mu = problem.leader_policy(x)
        self.observe(batch)
        P, r = self.estimated_mdp()
        self._policy = solve_mdp(P, r, problem.model.gamma, problem.tau, pi0=self._policy,
                                 tol=c.tol).pi

    @property
    def policy(self) -> np.ndarray:
        return self._policy
