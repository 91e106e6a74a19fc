"""A leader's own sample-based soft best-response oracle, warm-started from the follower learner.

Nested-loop leaders need the follower's response at points the follower learner never faces
(the zeroth-order leader's perturbed ``x +- radius u``) or a better best-response estimate than
the learner's current one (PBRL's inner oracle, docs/theory.md §4). The oracle is soft Q-learning on
transitions sampled from the model (:class:`agents.followers.soft_q.SoftQFollower`, the same
update as the ``soft-q`` follower), warm-started twice over [ours]:

- across outer iterations, its table ``Q`` persists, so its state values track ``V*(x_k)``;
- at every outer iteration, :meth:`SoftQOracle.anchor` takes the action preferences from the
  follower learner's policy ``pihat`` (the match's best-response estimate, DESIGN "Who owns
  which policy") and keeps the oracle's own state values:
  ``Q(s, a) <- tau logsumexp(Q(s, .) / tau) + tau log pihat(a|s)``, the soft-Q table whose
  soft-greedy policy is ``pihat`` and whose soft values are the oracle's. A better follower
  learner therefore makes the oracle better; with ``tau = 0`` there is no such table and the
  anchor is skipped.

Every transition the oracle and its probes draw is counted in ``samples``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.followers.soft_q import SoftQConfig, SoftQFollower
from stackelberg.problem import StackelbergProblem
from stackelberg.tabular import safe_log, soft_max_value
from stackelberg.validation import check_fields


@dataclass(frozen=True)
class OracleSettings:
    """The soft-Q steps of a leader's oracle (a base of leader configs).

    Attributes
    ----------
    oracle_batch_size : int
        Transitions per soft-Q step.
    oracle_alpha : float
        Soft-Q learning rate, in (0, 1].
    """

    section = "leader"

    oracle_batch_size: int = 256
    oracle_alpha: float = 0.5

    def __post_init__(self) -> None:
        check_fields(self, positive_int=("oracle_batch_size",))
        if not 0 < self.oracle_alpha <= 1:
            raise ValueError(f"{self.section}.oracle_alpha must be in (0, 1], "
                             f"got {self.oracle_alpha!r}")

    def soft_q_config(self) -> SoftQConfig:
        """The same settings as the ``soft-q`` follower's config."""
        return SoftQConfig(batch_size=self.oracle_batch_size, alpha=self.oracle_alpha)


class SoftQOracle:
    """Warm-started soft Q-learning owned by a leader.

    Parameters
    ----------
    settings : OracleSettings
        Batch size and learning rate of every soft-Q step.
    """

    def __init__(self, settings: OracleSettings):
        self.config = settings.soft_q_config()

    def reset(self, problem: StackelbergProblem, rng: np.random.Generator) -> None:
        self.problem = problem
        self.learner = SoftQFollower(self.config)
        self.learner.reset(problem, rng)
        self.probe_samples = 0

    @property
    def samples(self) -> int:
        """Transitions drawn by the oracle's own steps and by all its probes."""
        return self.learner.samples + self.probe_samples

    @property
    def policy(self) -> np.ndarray:
        return self.learner.policy

    def anchor(self, pihat: np.ndarray) -> None:
        """Take the action preferences from ``pihat``, keep the state values (module docstring)."""
        tau = self.problem.tau
        if tau > 0:
            values = soft_max_value(self.learner.Q, tau)
            self.learner.Q = values[:, None] + tau * safe_log(pihat)

    def improve(self, x: np.ndarray, steps: int) -> np.ndarray:
        """``steps`` soft-Q steps against ``x``; returns the oracle's policy."""
        for _ in range(steps):
            self.learner.step(x)
        return self.policy

    def probe(self, x: np.ndarray, steps: int, rng: np.random.Generator) -> np.ndarray:
        """The response to ``x`` of a copy of the oracle after ``steps`` soft-Q steps drawn from
        ``rng``; the oracle itself does not change. Two probes given generators in the same state
        see the same random numbers (common random numbers)."""
        copy = SoftQFollower(self.config)
        copy.reset(self.problem, rng)
        copy.Q = self.learner.Q.copy()
        for _ in range(steps):
            copy.step(x)
        self.probe_samples += copy.samples
        return copy.policy
