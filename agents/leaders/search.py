"""Global search and tau continuation around any exact local leader.

Every exact gradient leader (PBRL with either penalty, the hypergradient and partial-gradient
baselines) finds a stationary point of a nonconvex problem, and which one depends on where it
starts: in a matrix game each region of leader commitments with the same follower response is a
basin, and the strong Stackelberg equilibrium (SSE) lies on the boundary of one of them. This
module adds, around a *local method* (:class:`LocalMethod`), the two things a local method
lacks [ours]:

1. **Multi-start.** Starting commitments that cover every leader action: the uniform one, one
   tilted towards each leader action (in every state), in Markov games per-state vertices (a
   random leader action per state) and random interior points, all drawn from the leader's
   ``rng`` (:func:`starting_points`). Each is run for ``start_iterations`` iterations; its end
   point is scored by the upper objective ``f(x, pihat)`` at the follower learner's response
   (what the leader observes); the best is resumed. How many starts and how long each runs is
   planned from the match's budget and the game's size (:func:`plan_search`): a short match
   scales the search down rather than being refused.
2. **Tau continuation** (the idea of RAC, Zeng et al., applied to the exact leaders). The score
   of a commitment is the leader's value against an *exact, unregularized* best response, but a
   leader that optimizes the entropy-regularized problem stops inside the region of its
   follower response, at a distance of about ``tau log(1/tau)`` over the follower's payoff
   slope from the boundary where the SSE lies; with the default ``tau = 0.01`` that costs more
   than 0.01 of value on a quarter of random 2xA games even at the regularized problem's global
   optimum. So after the search the follower's entropy weight decays geometrically from the
   match's ``tau_0`` to ``tau_ratio * tau_0`` (through the ``entropy_weight`` hook, so the
   follower learner, the leader and the metrics all see the same ``tau_k``), and is then held
   for the rest of the match while the local method converges.

Phases of a match of ``T`` iterations (``plan_search``): the search (about ``explore_fraction T``
iterations), the continuation (``anneal_fraction T``), then convergence at the final ``tau``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from stackelberg.problem import StackelbergProblem
from stackelberg.validation import check_fields

#: Budget assumed when the coordinator does not announce one (MatchConfig's default).
DEFAULT_BUDGET = 1000
#: Fewest iterations a start is worth running (fewer starts are planned below this).
MIN_START_ITERATIONS = 10
#: The continuation stops at this fraction of the follower's reward range: below it the bias
#: it removes is negligible, and solves get harder. A smaller starting ``tau`` is kept as is.
TAU_FLOOR = 1e-4


@dataclass(frozen=True)
class SearchSettings:
    """The global-search and continuation fields every exact leader's config has.

    Attributes
    ----------
    starts : int
        Number of starting points; 0 (default) plans it from the game and the budget: the
        uniform commitment, one per leader action, and ``random_starts`` random ones (see
        :func:`plan_search`). 1 is the plain local method from the uniform commitment.
    start_iterations : int
        Iterations from each start before the best is resumed; 0 (default) plans it from the
        budget. When both ``starts`` and ``start_iterations`` are given, a match shorter than
        :meth:`minimum_iterations` is refused.
    random_starts : int
        Random starting points on top of the uniform and tilted ones (in Markov games half
        are per-state vertices, half interior points).
    explore_fraction : float
        Share of the match spent on the search (when planned automatically).
    anneal_fraction : float
        Share of the match over which ``tau`` decays after the search.
    tau_ratio : float
        Final entropy weight over the match's starting one; 1 disables the continuation. The
        final weight is never below ``TAU_FLOOR`` times the follower's reward range, unless the
        starting one is (then ``tau`` stays where it starts).
    anneal_stages : int
        ``tau`` decays in this many equal geometric stages, constant within each, so that the
        local method converges (and settles, see :class:`agents.leaders.step_control.
        SettledStep`) at each before the next.
    """

    section = "leader"

    starts: int = 0
    start_iterations: int = 0
    random_starts: int = 2
    explore_fraction: float = 0.4
    anneal_fraction: float = 0.4
    tau_ratio: float = 0.01
    anneal_stages: int = 8

    def __post_init__(self) -> None:
        check_fields(self, non_negative_int=("starts", "start_iterations", "random_starts"),
                     positive_int=("anneal_stages",),
                     unit_interval=("explore_fraction", "anneal_fraction"))
        if not (isinstance(self.tau_ratio, (int, float)) and 0 < self.tau_ratio <= 1):
            raise ValueError(f"leader.tau_ratio must be a number in (0, 1], "
                             f"got {self.tau_ratio!r}")
        if self.explore_fraction + self.anneal_fraction > 1:
            raise ValueError("leader.explore_fraction + leader.anneal_fraction must not exceed "
                             f"1, got {self.explore_fraction} + {self.anneal_fraction}")

    def minimum_iterations(self) -> int:
        """Iterations a match needs for an explicitly configured search (both ``starts`` and
        ``start_iterations`` given): every start, its scoring step, and one step from the
        best. A planned search fits any budget, so it needs 1."""
        if self.starts > 1 and self.start_iterations > 0:
            return self.starts * (self.start_iterations + 1) + 1
        return 1


def starting_points(initial_x: np.ndarray, n_random: int, rng: np.random.Generator,
                    tilt: float = math.log(8.0)) -> list[np.ndarray]:
    """Candidate starting logits, in the order a search tries them.

    First ``initial_x`` (the uniform commitment); then, for each leader action ``b``,
    ``initial_x`` with ``tilt`` added to ``b`` in every state (``8 / (8 + m - 1)`` of the mass
    on ``b`` for ``m`` actions); then ``n_random`` random points from ``rng``: when ``x`` has
    several rows (a Markov game), the first half are per-state vertices (an independent random
    action tilted in each state), the rest interior points (rows of flat Dirichlet draws, as
    logits).

    Parameters
    ----------
    initial_x : numpy.ndarray
        The problem's default start, shape ``(rows, m)``.
    n_random : int
        Number of random points.
    rng : numpy.random.Generator
        The leader's stream.
    tilt : float
        Logit added for a tilted point.
    """
    rows, m = initial_x.shape
    points = [initial_x.copy()]
    for b in range(m):
        tilted = initial_x.copy()
        tilted[:, b] += tilt
        points.append(tilted)
    vertices = n_random // 2 if rows > 1 else 0
    for _ in range(vertices):
        tilted = initial_x.copy()
        tilted[np.arange(rows), rng.integers(m, size=rows)] += tilt
        points.append(tilted)
    for _ in range(n_random - vertices):
        points.append(np.log(rng.dirichlet(np.ones(m), size=rows)))
    return points


@dataclass(frozen=True)
class SearchPlan:
    """How a match's budget is spent.

    Attributes
    ----------
    starts : int
        Starting points tried (the first ``starts`` of :func:`starting_points`).
    start_iterations : int
        Local iterations from each start.
    search_end : int
        Iteration at which the best start has been resumed (every start took
        ``start_iterations`` steps and one scoring step).
    anneal_iterations : int
        Iterations over which ``tau`` decays after ``search_end``.
    """

    starts: int
    start_iterations: int
    search_end: int
    anneal_iterations: int


def plan_search(settings: SearchSettings, candidates: int, budget: int) -> SearchPlan:
    """Plan a search over ``candidates`` starting points in a match of ``budget`` iterations.

    The search takes ``explore_fraction`` of the budget; the number of starts is the number of
    candidates (or ``settings.starts``), reduced until each start gets at least
    ``MIN_START_ITERATIONS``; an explicit ``start_iterations`` is used as given.
    """
    starts = settings.starts or candidates
    explore = int(settings.explore_fraction * budget)
    if settings.start_iterations:
        per_start = settings.start_iterations
    else:
        starts = max(1, min(starts, explore // (MIN_START_ITERATIONS + 1)))
        per_start = max(MIN_START_ITERATIONS, explore // starts - 1)
    search_end = starts * (per_start + 1) if starts > 1 else 0
    anneal = 0 if settings.tau_ratio == 1 else max(1, int(settings.anneal_fraction * budget))
    return SearchPlan(starts, per_start, search_end, anneal)


class LocalMethod(Protocol):
    """A local leader method the search drives: it restarts from a point, takes steps, and
    hands its state out and back so that the best start can be resumed."""

    def begin(self, problem: StackelbergProblem, x0: np.ndarray) -> None:
        """Start afresh from the logits ``x0``."""

    def local_step(self, pihat: np.ndarray) -> dict[str, float]:
        """One local iteration against the follower's response ``pihat`` (at
        ``problem.tau``); returns its diagnostics, including ``grad_norm``."""

    @property
    def x(self) -> np.ndarray: ...

    @property
    def penalized_policy(self) -> np.ndarray | None: ...

    def snapshot(self) -> object:
        """An immutable record of the state, for :meth:`restore`."""

    def restore(self, state: object) -> None: ...


@dataclass(frozen=True)
class StartRecord:
    """Where one start ended: its score ``f(x, pihat)`` and the local state to resume."""

    index: int
    score: float
    state: object


class SearchLeader:
    """A leader: a local method inside a multi-start search and a tau continuation.

    Parameters
    ----------
    local : LocalMethod
    settings : SearchSettings
        Usually the local method's own config (which inherits the fields).
    """

    samples = 0

    def __init__(self, local: LocalMethod, settings: SearchSettings):
        self.local = local
        self.settings = settings

    @property
    def config(self):
        return self.settings

    def reset(self, problem: StackelbergProblem, rng: np.random.Generator) -> None:
        self.problem = problem
        self.tau0 = problem.tau
        floor = TAU_FLOOR * float(np.ptp(problem.model.follower_rewards))
        self.tau_final = max(self.settings.tau_ratio * self.tau0, min(self.tau0, floor))
        self._points = starting_points(problem.initial_x(), self.settings.random_starts, rng)
        self.plan_budget(DEFAULT_BUDGET)

    def plan_budget(self, iterations: int) -> None:
        """Plan the search for a match of ``iterations`` leader steps (the coordinator calls
        this after :meth:`reset`) and begin the first start."""
        self.plan = plan_search(self.settings, len(self._points), iterations)
        self.k = 0
        self._ended: list[StartRecord] = []
        self._begin(0)

    def _begin(self, index: int) -> None:
        self.start = index
        self._local_steps = 0
        x0 = self._points[index] if index < len(self._points) else self._points[0]
        self.local.begin(self.problem, x0.copy())

    @property
    def exploring(self) -> bool:
        """Whether starts remain to be tried or scored."""
        return self.plan.starts > 1 and len(self._ended) < self.plan.starts

    @property
    def x(self) -> np.ndarray:
        return self.local.x

    @property
    def penalized_policy(self) -> np.ndarray | None:
        return self.local.penalized_policy

    def entropy_weight(self, k: int) -> float:
        """``tau_k``: ``tau_0`` during the search, then a geometric decay to the final weight
        (``tau_ratio * tau_0``, see ``SearchSettings.tau_ratio``) in ``anneal_stages`` stages
        over ``anneal_iterations``, then constant."""
        plan, stages = self.plan, self.settings.anneal_stages
        if k < plan.search_end or plan.anneal_iterations == 0 or self.tau_final == self.tau0:
            return self.tau0
        progress = min(1.0, (k - plan.search_end) / plan.anneal_iterations)
        stage = min(stages, math.floor(progress * stages) + 1)
        return self.tau0 * (self.tau_final / self.tau0) ** (stage / stages)

    def _end_start(self, pihat: np.ndarray) -> dict[str, float]:
        """Score the current start by ``f(x, pihat)``, then begin the next start or, after the
        last one, resume the best. Takes no step: ``pihat`` answers the old ``x``."""
        score = self.problem.evaluate(self.local.x, pihat).upper_objective
        self._ended.append(StartRecord(self.start, score, self.local.snapshot()))
        if self.exploring:
            self._begin(self.start + 1)
        else:
            best = min(self._ended, key=lambda record: record.score)
            self.start = best.index
            self.local.restore(best.state)
        return {"grad_norm": math.inf, "start": self.start, "start_score": score}

    def step(self, responses: Sequence[np.ndarray]) -> dict[str, float]:
        pihat = responses[0]
        self.k += 1
        if self.exploring and self._local_steps == self.plan.start_iterations:
            return self._end_start(pihat)
        diagnostics = dict(self.local.local_step(pihat))
        self._local_steps += 1
        # the coordinator's tolerance rule may end the match only once the search and the
        # continuation are over
        if self.exploring or self.k <= self.plan.search_end + self.plan.anneal_iterations:
            diagnostics["grad_norm"] = math.inf
        if self.plan.starts > 1:
            diagnostics["start"] = self.start
        return diagnostics
