"""What the coordinator records about a match's state: the metrics observers.

A match hands every recorded state (the leader's ``x``, the policy the leader optimizes jointly
with ``x`` if it has one, the follower learners' profile) to one observer chosen by
:func:`metrics_for` from the problem (DESIGN, "Exact or sampled"): :class:`ExactMetrics` where
the problem has an exact model and one follower, :class:`GameMetrics` where its lower level is
a game of n >= 2 followers, :class:`SampledMetrics` (Monte-Carlo values with standard errors)
where it has only a simulator; a problem may also name its own (``metrics_observer``). The
observer also says which of its row keys make the match's summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from stackelberg.equilibrium import (
    leader_value_against_best_response,
    matrix_payoffs,
    strong_stackelberg,
)
from stackelberg.incentive_problem import IncentiveProblem
from stackelberg.problem import BilevelProblem, StackelbergProblem
from stackelberg.simulated import SimulatedProblem


class MatchMetrics(Protocol):
    """An observer of a match's state (module docstring)."""

    #: The two-player game whose leader policy a match result keeps, or None.
    game: object | None

    def __call__(self, x: np.ndarray, played: np.ndarray | None,
                 profile: Sequence[np.ndarray]) -> dict[str, float]: ...

    def summarize(self, final: dict[str, float]) -> dict[str, float]: ...


def metrics_for(problem: BilevelProblem | SimulatedProblem) -> MatchMetrics:
    """The observer that fits ``problem`` (module docstring)."""
    if isinstance(problem, SimulatedProblem):
        return SampledMetrics(problem)
    if isinstance(problem, IncentiveProblem):
        return GameMetrics(problem)
    own = problem.metrics_observer()
    return ExactMetrics(problem) if own is None else own


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
        self.tau0 = problem.tau
        model = problem.model
        # the game-level metrics need a game and a leader committing to a policy in it
        self.game = model if isinstance(problem, StackelbergProblem) else None
        self.sse_value: float | None = None
        if self.game is not None and model.is_matrix_game:
            self.sse_value = strong_stackelberg(*matrix_payoffs(model)).leader_value
        # the last row, by the state it observed: once a leader has settled, successive rows
        # observe the same state (about half the rows of a 1500-iteration match on a random
        # Markov game), and a row is a function of that state alone
        self._last: tuple[tuple, dict[str, float]] | None = None

    def __call__(
        self, x: np.ndarray, played: np.ndarray | None, profile: Sequence[np.ndarray]
    ) -> dict[str, float]:
        """Metrics of leader variable ``x``, the policy the upper objective is evaluated at
        (``played``: the leader's penalized policy, or the follower learner's when None), and
        the follower learner's policy (``profile[0]``)."""
        key = (x.shape, x.tobytes(), None if played is None else played.tobytes(),
               tuple(policy.tobytes() for policy in profile), self.source.tau)
        if self._last is not None and self._last[0] == key:
            return dict(self._last[1])
        metrics = self._observe(x, played, profile)
        self._last = (key, metrics)
        return dict(metrics)

    def _observe(
        self, x: np.ndarray, played: np.ndarray | None, profile: Sequence[np.ndarray]
    ) -> dict[str, float]:
        follower = profile[0]
        played = follower if played is None else played
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
            # no game to commit in: the leader's value is -Phi(x) at the follower's configured
            # tau (the match's starting one), whatever tau_k a leader's schedule has reached
            at_start = metrics["hyper_objective"]
            if problem.tau != self.tau0:
                problem.set_tau(self.tau0)
                at_start = problem.hyper_objective(x, pi0=follower)
            metrics["leader_value"] = -at_start
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


class GameMetrics:
    """Exact diagnostics of a planner's ``x`` and the followers' profile in an incentive economy
    (docs/theory.md §5, §7).

    At the learners' profile: social welfare, payments, net welfare (``upper_objective`` is its
    negative) and the Nash gap, which is also the row's ``lower_level_gap`` (so reports and plots
    find the column they read for every problem). At the exact equilibrium of ``x`` (damped best
    responses from the uniform profile, on a detached copy of the problem): the same three, and
    ``hyper_objective = -equilibrium_net_welfare``. That net welfare is also the row's
    ``leader_value``, the planner's value against the followers' exact response (as a
    Stackelberg leader's is against an exact best response), which tournaments score on; here
    the response is the regularized equilibrium at the problem's ``tau``, since an
    unregularized one need not be unique. The no-incentive equilibrium's net welfare and
    welfare, what a planner must beat, are solved once and go to the summary.
    """

    game = None

    def __init__(self, problem: IncentiveProblem):
        self.source = problem
        baseline = problem.detached().outcome(None)
        self.baseline_net_welfare = -baseline.upper.objective
        self.baseline_welfare = baseline.upper.welfare

    def __call__(self, x: np.ndarray, played: np.ndarray | None,
                 profile: Sequence[np.ndarray]) -> dict[str, float]:
        """Metrics of ``x`` and the followers' ``profile`` (``played``, a leader's own
        policies, is not what the followers play and is not evaluated)."""
        problem = self.source.detached()
        at_play = problem.upper_value(x, profile, gradients=False)
        at_equilibrium = problem.outcome(x).upper
        gap = problem.nash_gap(x, profile).gap
        return {
            "upper_objective": at_play.objective,
            "hyper_objective": at_equilibrium.objective,
            "lower_level_gap": gap,
            "nash_gap": gap,
            "welfare": at_play.welfare,
            "payments": at_play.payments,
            "net_welfare": -at_play.objective,
            "equilibrium_welfare": at_equilibrium.welfare,
            "equilibrium_payments": at_equilibrium.payments,
            "equilibrium_net_welfare": -at_equilibrium.objective,
            "leader_value": -at_equilibrium.objective,
        }

    def summarize(self, final: dict[str, float]) -> dict[str, float]:
        """The summary entries of the match's last recorded row, with the baseline."""
        keys = ("leader_value", "hyper_objective", "upper_objective", "lower_level_gap",
                "nash_gap", "welfare", "payments", "net_welfare", "equilibrium_welfare",
                "equilibrium_payments", "equilibrium_net_welfare")
        summary = {key: final[key] for key in keys}
        summary["baseline_net_welfare"] = self.baseline_net_welfare
        summary["baseline_welfare"] = self.baseline_welfare
        summary["net_welfare_gain"] = (final["equilibrium_net_welfare"]
                                       - self.baseline_net_welfare)
        return summary


class SampledMetrics:
    """Monte-Carlo diagnostics of a :class:`~stackelberg.simulated.SimulatedProblem`.

    Each row plays ``episodes`` fresh episodes of the leader's commitment ``x`` against the
    follower learner's policy and records both players' mean discounted returns with their
    standard errors (``*_se``), ``upper_objective = -leader_value`` and whatever the problem
    adds (the duopoly's quantities against their closed forms). The episodes draw from a
    generator seeded by ``seed`` alone, so a row is a function of the state it observes, and
    recording changes no number of the match (as for :class:`ExactMetrics`).
    """

    #: No game-level leader policy to report (``MatchResult.leader_policy`` is None).
    game = None

    def __init__(self, problem: SimulatedProblem, episodes: int = 2000, seed: int = 0):
        self.source, self.episodes, self.seed = problem, episodes, seed

    def __call__(self, x: np.ndarray, played: np.ndarray | None,
                 profile: Sequence[np.ndarray]) -> dict[str, float]:
        """Sampled values of leader ``x`` against the follower learner's policy (``profile[0]``;
        ``played``, a leader's penalized actor, is not what the match is judged by: the
        follower plays his own policy)."""
        follower = profile[0]
        values = self.source.values(x, follower, self.episodes,
                                      np.random.default_rng(self.seed))
        return {"upper_objective": -values.leader_value,
                "leader_value": values.leader_value,
                "leader_value_se": values.leader_value_se,
                "follower_value": values.follower_value,
                "follower_value_se": values.follower_value_se,
                **values.extra}

    def summarize(self, final: dict[str, float]) -> dict[str, float | str]:
        """The last row's sampled values, their standard errors and extras, marked sampled."""
        skip = {"iteration", "tau", "samples", "wall_seconds", "grad_norm", "penalty_weight",
                "upper_objective"}
        return {"metrics": f"sampled ({self.episodes} episodes per row; *_se: standard errors)",
                **{k: v for k, v in final.items() if k not in skip}}
