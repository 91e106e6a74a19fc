"""The protocols leaders and follower learners implement (DESIGN: "Who owns which policy").

A match has one leader and one follower learner per follower role (``problem.n_followers``: one
in a Stackelberg game, several in an economy whose lower level is a game, where the learners are
:class:`GameFollowerLearner`). Each follower learner keeps its
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

from stackelberg.problem import BilevelProblem, StackelbergProblem


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


@runtime_checkable
class GameFollowerLearner(FollowerLearner, Protocol):
    """A follower learner for a lower level that is a game (``problem.n_followers >= 2``):
    follower ``index`` of the profile. Before each round of follower steps the coordinator shows
    every learner the profile they all start from (:meth:`see_others`), so they move
    simultaneously, each against the others' policies of the same round."""

    #: Which follower this learner is (its position in the profile).
    index: int

    def reset(self, problem: BilevelProblem, rng: np.random.Generator) -> None:
        """Start learning on ``problem`` as follower ``index``."""

    def see_others(self, profile: Sequence[np.ndarray]) -> None:
        """The profile (one policy per follower) the next :meth:`step` plays against."""


# -- optional hooks: a leader implements them when it needs them ------------------------------


@runtime_checkable
class ScheduledLeader(Protocol):
    """A leader that schedules the followers' entropy weight (RAC decays it, docs/theory.md
    §4): the coordinator sets ``problem.tau = entropy_weight(k)`` before iteration ``k``, so the
    follower learners, the leader and the metrics all see the same ``tau_k``."""

    def entropy_weight(self, k: int) -> float: ...


@runtime_checkable
class BudgetedLeader(Protocol):
    """A leader that plans by its match's length (the exact leaders' global search spends
    fixed shares of the match on its phases): the coordinator calls ``plan_budget`` right after
    ``reset``."""

    def plan_budget(self, iterations: int) -> None: ...


def entropy_schedule(leader: Leader):
    """The leader's schedule of the follower's entropy weight, ``k -> tau_k``, or None
    (:class:`ScheduledLeader`)."""
    return leader.entropy_weight if isinstance(leader, ScheduledLeader) else None


def announce_budget(leader: Leader, iterations: int) -> None:
    """Tell a leader how many iterations its match has, if it plans by them
    (:class:`BudgetedLeader`)."""
    if isinstance(leader, BudgetedLeader):
        leader.plan_budget(iterations)
