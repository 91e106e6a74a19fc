"""What the coordinator records about a match's state: the metrics observers.

A match hands every recorded state (the leader's ``x``, the policy the upper objective is
evaluated at, the follower learners' policies) to one observer chosen by :func:`metrics_for`
from the problem (DESIGN, "Exact or sampled"): :class:`ExactMetrics` where the problem has an
exact model. The observer also says which of its row keys make the match's summary.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from stackelberg.equilibrium import (
    leader_value_against_best_response,
    matrix_payoffs,
    strong_stackelberg,
)
from stackelberg.problem import BilevelProblem, StackelbergProblem


class MatchMetrics(Protocol):
    """An observer of a match's state (module docstring)."""

    def __call__(self, x: np.ndarray, played: np.ndarray, follower: np.ndarray
                 ) -> dict[str, float]: ...

    def summarize(self, final: dict[str, float]) -> dict[str, float]: ...


def metrics_for(problem: BilevelProblem) -> MatchMetrics:
    """The observer that fits ``problem``."""
    return ExactMetrics(problem)


class ExactMetrics:
    """Exact diagnostics of a leader variable and the policies in play (docs/theory.md §5).

    An observer: every call solves on a fresh :meth:`StackelbergProblem.detached` copy of the
    match's problem (at its current ``tau``), warm-started from the follower learner's current
    policy, so each row is a function of the state it observes alone (not of which rows were
    recorded before), and nothing it computes reaches the leader's or the followers' remembered
    answers. Hence ``run.metrics_every`` and the progress bar change no number of a match.
    """

    def __init__(self, problem: BilevelProblem):
        self.source = problem
        model = problem.model
        # the game-level metrics need a game and a leader committing to a policy in it
        self.game = model if isinstance(problem, StackelbergProblem) else None
        self.sse_value: float | None = None
        if self.game is not None and model.is_matrix_game:
            self.sse_value = strong_stackelberg(*matrix_payoffs(model)).leader_value

    def __call__(
        self, x: np.ndarray, played: np.ndarray, follower: np.ndarray
    ) -> dict[str, float]:
        """Metrics of leader variable ``x``, the policy the upper objective is evaluated at
        (``played``), and the follower learner's policy."""
        problem = self.source.detached()
        star = problem.best_response(x, pi0=follower)
        v_star = float(problem.follower_mdp(x).rho @ star.V)
        ev_played = problem.evaluate(x, played)
        ev_follower = ev_played if follower is played else problem.evaluate(x, follower)
        metrics = {
            "upper_objective": ev_played.upper_objective,
            "hyper_objective": problem.evaluate(x, star.pi).upper_objective,
            "lower_level_gap": v_star - ev_played.follower_value,
            "follower_gap": v_star - ev_follower.follower_value,
        }
        if self.game is None:
            return metrics
        outcome = leader_value_against_best_response(self.game, problem.leader_policy(x))
        metrics["leader_value"] = outcome.leader_value
        if self.sse_value is not None:
            metrics["sse_gap"] = self.sse_value - outcome.leader_value
        return metrics

    def summarize(self, final: dict[str, float]) -> dict[str, float]:
        """The summary entries of the match's last recorded row."""
        keys = ("leader_value", "hyper_objective", "upper_objective", "lower_level_gap",
                "follower_gap")
        summary = {key: final[key] for key in keys if key in final}
        if self.sse_value is not None:
            summary["sse_leader_value"] = self.sse_value
            summary["sse_gap"] = final["sse_gap"]
        return summary
