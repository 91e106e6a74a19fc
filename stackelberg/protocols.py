"""The protocols leaders and follower learners implement (DESIGN: "Who owns which policy").

A match has one leader and one follower learner per follower role (``problem.n_followers``; one
today, several in economies whose lower level is a game). Each follower learner keeps its
current policy, the estimate of its best response to the leader's current ``x``. The leader keeps
``x`` and whatever else its algorithm needs (PBRL's penalized policy ``pi``) and reads the
followers' policies each step; so every leader works with every follower learner.

A learner that works from samples alone draws them through :mod:`stackelberg.sampling` from the
problem's model (the environment's own source) and counts them in ``samples``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from stackelberg.problem import StackelbergProblem


@runtime_checkable
class FollowerLearner(Protocol):
    """Learns a best response to the leader's current commitment."""

    #: Environment transitions consumed so far (0 for learners that use the exact model).
    samples: int

    def reset(self, problem: StackelbergProblem, rng: np.random.Generator) -> None:
        """Start learning on ``problem``; all randomness comes from ``rng``."""

    def step(self, x: np.ndarray) -> None:
        """One learning step against the leader variable ``x``."""

    @property
    def policy(self) -> np.ndarray:
        """The current policy ``pi[s, a]`` (the best-response estimate)."""


@runtime_checkable
class Leader(Protocol):
    """Improves the leader variable ``x`` given the followers' best-response estimates."""

    samples: int

    def reset(self, problem: StackelbergProblem, rng: np.random.Generator) -> None:
        """Start from ``problem.initial_x()`` (or its own documented start)."""

    def step(self, responses: Sequence[np.ndarray]) -> dict[str, float]:
        """One leader update; ``responses[i]`` is follower ``i``'s current policy.

        Returns the algorithm's own per-iteration diagnostics (e.g. ``penalty_weight``,
        ``grad_norm``), which the coordinator records next to the exact metrics.
        """

    @property
    def x(self) -> np.ndarray:
        """The current leader variable."""

    @property
    def penalized_policy(self) -> np.ndarray | None:
        """The follower policy the leader optimizes jointly with ``x`` (PBRL's ``pi``), or None."""


def entropy_schedule(leader: Leader):
    """The leader's schedule of the follower's entropy weight, ``k -> tau_k``, or None.

    A leader may define ``entropy_weight(k)`` (RAC decays it, docs/theory.md §4); the coordinator
    then sets ``problem.tau`` before iteration ``k``, so the follower learners, the leader and
    the metrics all see the same ``tau_k``.
    """
    schedule = getattr(leader, "entropy_weight", None)
    return schedule if callable(schedule) else None


def announce_budget(leader: Leader, iterations: int) -> None:
    """Tell a leader how many iterations its match has, if it plans by them.

    A leader may define ``plan_budget(iterations)`` (the exact leaders' global search spends
    fixed shares of the match on its phases); the coordinator calls it right after ``reset``.
    """
    plan = getattr(leader, "plan_budget", None)
    if callable(plan):
        plan(iterations)
