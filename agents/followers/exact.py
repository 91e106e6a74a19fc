"""Follower learners that use the game's exact model.

- ``best-response``: the exact (soft) best response by policy iteration, warm-started from the
  previous answer (docs/theory.md §1, soft optimality).
- ``mirror-descent``: policy mirror descent with exact Q-values (docs/theory.md §4, PBRL's inner
  oracle): ``pi' ∝ pi^{1/(1+eta tau)} exp(eta Q_pi / (1 + eta tau))``; it converges linearly to
  the soft optimum for ``tau > 0`` (Cen et al., 2022; Lan, 2022).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stackelberg.problem import StackelbergProblem
from stackelberg.tabular import evaluate_policy, safe_log, softmax
from stackelberg.validation import check_fields


@dataclass(frozen=True)
class BestResponseConfig:
    """Settings of the exact best response (its entropy weight is ``follower.tau``).

    Attributes
    ----------
    tol : float
        Policy iteration stops when an improvement step changes the policy by less than this
        (max-norm), or, for ``tau > 0``, when its quadratic convergence predicts the next change
        to be below it (``solve_mdp(predict=True)``; the policy returned is then the next one,
        not evaluated). Either way the policy's error is about ``tol``; 1e-10 is far below
        what any leader update can resolve and saves a factorization per step over 1e-12.
    """

    section = "follower"

    tol: float = 1e-10

    def __post_init__(self) -> None:
        check_fields(self, positive=("tol",))


class BestResponseFollower:
    """Exact soft best response to the leader's current commitment."""

    samples = 0

    def __init__(self, config: BestResponseConfig | None = None):
        self.config = config or BestResponseConfig()

    def reset(self, problem: StackelbergProblem, rng: np.random.Generator) -> None:
        self.problem = problem
        self._policy = np.full(problem.policy_shape, 1.0 / problem.policy_shape[1])

    def step(self, x: np.ndarray) -> None:
        self._policy = self.problem.best_response(x, pi0=self._policy, tol=self.config.tol).pi

    @property
    def policy(self) -> np.ndarray:
        return self._policy


@dataclass(frozen=True)
class MirrorDescentConfig:
    """Hyperparameters of policy mirror descent.

    Attributes
    ----------
    eta : float
        Mirror-descent step size; ``eta -> inf`` is soft policy iteration.
    """

    section = "follower"

    eta: float = 1.0

    def __post_init__(self) -> None:
        check_fields(self, positive=("eta",))


class MirrorDescentFollower:
    """Policy mirror descent with exact Q-values, one update per step."""

    samples = 0

    def __init__(self, config: MirrorDescentConfig | None = None):
        self.config = config or MirrorDescentConfig()

    def reset(self, problem: StackelbergProblem, rng: np.random.Generator) -> None:
        self.problem = problem
        self._policy = np.full(problem.policy_shape, 1.0 / problem.policy_shape[1])

    def step(self, x: np.ndarray) -> None:
        m = self.problem.follower_mdp(x)
        Q = evaluate_policy(m.P, m.r, self._policy, m.gamma, m.tau).Q
        eta, tau = self.config.eta, m.tau
        logits = (safe_log(self._policy) + eta * Q) / (1.0 + eta * tau)
        self._policy = softmax(logits, axis=1)

    @property
    def policy(self) -> np.ndarray:
        return self._policy
