"""Global search and tau continuation around any exact local leader.

Every exact gradient leader (PBRL with either penalty, the hypergradient and partial-gradient
baselines) finds a stationary point of a nonconvex problem, and which one depends on where it
starts: in a matrix game each region of leader commitments with the same follower response is a
basin, and the strong Stackelberg equilibrium (SSE) lies on the boundary of one of them. This
module adds, around a *local method* (:class:`LocalMethod`), the two things a local method
lacks [ours]:

1. **Multi-start.** Starting commitments that cover every follower response the leader can
   find and every leader action: the uniform one; the best commitment of each follower
   response met while screening the simplex's vertices and ``screen_points`` sparse random
   commitments (:func:`sparse_points`, :func:`one_per_response`); one tilted towards each
   leader action (in every state); in Markov games per-state vertices; and random interior
   points, all drawn from the leader's ``rng`` (:func:`starting_points`). The starts compete
   by successive halving (:func:`halving_rounds`): each runs a short while, the better half
   (the best of each follower response first) runs twice as long, until one is left, which
   the match resumes. A run is judged by :meth:`SearchLeader.assess`: the upper objective
   against the exact best response at the final entropy weight, on a detached copy of the
   problem (the leader's own model; nothing it computes reaches what the match sees). How many
   starts and how long the first round is are planned from the match's budget
   (:func:`plan_search`): a short match scales the search down rather than being refused.
2. **Tau continuation** (the idea of RAC, Zeng et al., applied to the exact leaders). The score
   of a commitment is the leader's value against an *exact, unregularized* best response, but a
   leader that optimizes the entropy-regularized problem stops inside the region of its
   follower response, at a distance of about ``tau log(1/tau)`` over the follower's payoff
   slope from the boundary where the SSE lies; with the default ``tau = 0.01`` that costs more
   than 0.01 of value on a quarter of random 2xA games even at the regularized problem's global
   optimum, and it makes a region whose optimum is on its boundary look worse than one whose
   optimum is a pure commitment. So the follower's entropy weight falls from the match's
   ``tau_0`` round by round during the search (round ``r`` of ``R`` at
   ``tau_0 (tau_final / tau_0)^(r/R)``), then on in stages to ``tau_final = tau_ratio * tau_0``
   (through the ``entropy_weight`` hook, so the follower learner, the leader and the metrics
   all see the same ``tau_k``), and is then held for the rest of the match while the local
   method converges.

Phases of a match of ``T`` iterations (``plan_search``): the search (at most
``explore_fraction T`` iterations), the continuation (``anneal_fraction T``), then convergence
at the final ``tau``. docs/theory.md §4 ("Global search") gives the reasons.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from agents.leaders.starts import (
    CORNER_TILT,
    Assessment,
    one_per_response,
    sparse_points,
    starting_points,
)
from stackelberg.problem import StackelbergProblem
from stackelberg.validation import check_fields

#: Budget assumed when the coordinator does not announce one (MatchConfig's default).
DEFAULT_BUDGET = 1000
#: Fewest iterations a start is worth running (fewer starts are planned below this).
MIN_START_ITERATIONS = 5
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
        uniform commitment, the best screened commitment of each follower response, one per
        leader action, and ``random_starts`` random ones, in this order, as many as the
        budget allows (see :func:`plan_search`). 1 is the plain local method from the uniform
        commitment (no screening).
    start_iterations : int
        Iterations of each start in the first round of the successive halving (the survivors
        of round ``r`` run ``2^r`` times as long); 0 (default) plans it from the budget. When
        both ``starts`` and ``start_iterations`` are given, a match shorter than
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
    screen_points : int
        Random commitments screened before the search (:func:`screen_responses`): the best of
        each follower response met among them becomes a start. 0 disables the screening.
    """

    section = "leader"

    starts: int = 0
    start_iterations: int = 0
    random_starts: int = 2
    explore_fraction: float = 0.4
    anneal_fraction: float = 0.4
    tau_ratio: float = 0.01
    anneal_stages: int = 8
    screen_points: int = 48

    def __post_init__(self) -> None:
        check_fields(self, non_negative_int=("starts", "start_iterations", "random_starts",
                                             "screen_points"),
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
        ``start_iterations`` given): every round of the halving, a scoring step after every
        run, and one step from the best. A planned search fits any budget, so it needs 1."""
        if self.starts > 1 and self.start_iterations > 0:
            return search_length(halving_rounds(self.starts, self.start_iterations)) + 1
        return 1


def halving_rounds(starts: int, first: int) -> tuple[tuple[int, int], ...]:
    """The rounds of a successive-halving search: ``(starts still in, iterations each)``.

    Every start runs ``first`` iterations; then the better half (rounded up) runs twice as
    many more, and so on until one is left (Jamieson & Talwalkar, *Non-stochastic best arm
    identification and hyperparameter optimization*, AISTATS 2016). A start that is slow to
    reach the optimum of its region is not judged on a short run alone, and the budget goes
    to the starts that look best. One start: no rounds.
    """
    rounds, survivors, length = [], starts, first
    while survivors > 1:
        rounds.append((survivors, length))
        survivors, length = (survivors + 1) // 2, 2 * length
    return tuple(rounds)


def search_length(rounds: Sequence[tuple[int, int]]) -> int:
    """Iterations of a search: every run of a round and its scoring step."""
    return sum(survivors * (length + 1) for survivors, length in rounds)


@dataclass(frozen=True)
class SearchPlan:
    """How a match's budget is spent.

    Attributes
    ----------
    starts : int
        Starting points tried (the first ``starts`` of the leader's list).
    start_iterations : int
        Local iterations from each start in the first round (:func:`halving_rounds`).
    rounds : tuple of (int, int)
        ``(starts still in, iterations each)`` per round.
    search_end : int
        Iteration at which the best start has been resumed (:func:`search_length`).
    anneal_iterations : int
        Iterations over which ``tau`` decays after ``search_end``.
    """

    starts: int
    start_iterations: int
    rounds: tuple[tuple[int, int], ...]
    search_end: int
    anneal_iterations: int


def plan_search(settings: SearchSettings, candidates: int, budget: int) -> SearchPlan:
    """Plan a search over ``candidates`` starting points in a match of ``budget`` iterations.

    The search takes ``explore_fraction`` of the budget; the number of starts is the number of
    candidates (or ``settings.starts``), reduced until the first round gives each start at
    least ``MIN_START_ITERATIONS``; the first round is as long as the budget allows (an
    explicit ``start_iterations`` is used as given).
    """
    starts = settings.starts or candidates
    explore = int(settings.explore_fraction * budget)
    if settings.start_iterations:
        first = settings.start_iterations
    else:
        while starts > 1:
            unit = halving_rounds(starts, 1)  # lengths 1, 2, 4, ...: the rounds scale by first
            scoring = sum(survivors for survivors, _ in unit)
            first = (explore - scoring) // (search_length(unit) - scoring)
            if first >= MIN_START_ITERATIONS:
                break
            starts -= 1
        else:
            first = MIN_START_ITERATIONS
    rounds = halving_rounds(starts, first)
    anneal = 0 if settings.tau_ratio == 1 else max(1, int(settings.anneal_fraction * budget))
    return SearchPlan(starts, first, rounds, search_length(rounds), anneal)


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
    """Where a run of one start ended: its score (:meth:`SearchLeader.assess`), the local
    state to resume, and the follower's response there."""

    index: int
    score: float
    state: object
    response: tuple[int, ...] = ()


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
        # a game's reward range; a problem without a game (e.g. an incentive design) reads
        # the follower's rewards at the neutral start
        rewards = (problem.follower_mdp(problem.initial_x()).r if problem.model is None
                   else problem.model.follower_rewards)
        floor = TAU_FLOOR * float(np.ptp(rewards))
        self.tau_final = max(self.settings.tau_ratio * self.tau0, min(self.tau0, floor))
        # the leader's own view of a commitment: the exact best response at the weight the
        # continuation ends at, on a copy whose memory is its own (it never warms up the
        # answers the match's leader and followers see)
        self._judge = problem.detached()
        self._judge.set_tau(self.tau_final)
        uniform, *others = starting_points(problem.initial_x(), self.settings.random_starts,
                                           rng)
        screened: list[np.ndarray] = []
        if self.settings.starts != 1 and self.settings.screen_points > 0:
            # the vertices (1e-4 on the other actions) and random sparse points
            corners = starting_points(uniform, 0, rng, tilt=CORNER_TILT)[1:]
            candidates = corners + sparse_points(uniform.shape, self.settings.screen_points,
                                                 rng)
            screened = one_per_response([self.assess(x) for x in candidates])
        self._points = [uniform, *screened, *others]
        self.plan_budget(DEFAULT_BUDGET)

    def assess(self, x: np.ndarray) -> Assessment:
        """The follower's response to ``x`` and the upper objective against it, with the
        exact best response at the final entropy weight (what the match converges to; at the
        starting weight the follower's hedging makes points near a region's boundary, where
        the optimum is, look worse than they are)."""
        star = self._judge.best_response(x)
        score = self._judge.evaluate(x, star.pi).upper_objective
        return Assessment(x, tuple(int(a) for a in star.pi.argmax(axis=1)), score)

    def plan_budget(self, iterations: int) -> None:
        """Plan the search for a match of ``iterations`` leader steps (the coordinator calls
        this after :meth:`reset`) and begin the first start."""
        self.plan = plan_search(self.settings, len(self._points), iterations)
        self.k = 0
        self._round = 0
        self._records: dict[int, StartRecord] = {}
        self._queue = list(range(self.plan.starts))
        self._begin(self._queue.pop(0))

    def _begin(self, index: int) -> None:
        """Run start ``index``: from its point in the first round, from where it stopped in
        later ones."""
        self.start = index
        self._local_steps = 0
        if index in self._records:
            self.local.restore(self._records[index].state)
        else:
            x0 = self._points[index] if index < len(self._points) else self._points[0]
            self.local.begin(self.problem, x0.copy())

    @property
    def exploring(self) -> bool:
        """Whether rounds of the search remain."""
        return self._round < len(self.plan.rounds)

    def survivors(self, count: int) -> list[int]:
        """The ``count`` starts that go on: the best of each follower response first (a
        region whose optimum is not reached yet keeps a run), then the best of the rest."""
        ranked = sorted(self._records.values(), key=lambda record: record.score)
        chosen: list[StartRecord] = []
        for record in ranked:
            if all(record.response != other.response for other in chosen):
                chosen.append(record)
        chosen += [record for record in ranked if record not in chosen]
        return sorted(record.index for record in chosen[:count])

    @property
    def x(self) -> np.ndarray:
        return self.local.x

    @property
    def penalized_policy(self) -> np.ndarray | None:
        return self.local.penalized_policy

    def decay_exponent(self, k: int) -> float:
        """``e_k`` in ``tau_k = tau_0 (tau_final / tau_0)^e_k``: ``r / R`` in round ``r`` of
        the search's ``R`` rounds (the finalists are compared nearer the final weight, where
        a region's optimum on its boundary is no longer hidden by the follower's hedging),
        then rising from the last round's in ``anneal_stages`` equal stages over
        ``anneal_iterations`` to 1, then 1."""
        plan, rounds = self.plan, len(self.plan.rounds)
        if k < plan.search_end:
            done = 0
            for r, (survivors, length) in enumerate(plan.rounds):
                done += survivors * (length + 1)
                if k < done:
                    return r / rounds
        last = (rounds - 1) / rounds if rounds else 0.0
        if plan.anneal_iterations == 0:
            return last
        progress = min(1.0, (k - plan.search_end) / plan.anneal_iterations)
        stage = min(self.settings.anneal_stages,
                    math.floor(progress * self.settings.anneal_stages) + 1)
        return last + (1.0 - last) * stage / self.settings.anneal_stages

    def entropy_weight(self, k: int) -> float:
        """``tau_k`` (:meth:`decay_exponent`); ``tau_0`` throughout when there is no
        continuation (``tau_ratio = 1``, or a starting weight at the floor)."""
        if self.plan.anneal_iterations == 0 or self.tau_final == self.tau0:
            return self.tau0
        return self.tau0 * (self.tau_final / self.tau0) ** self.decay_exponent(k)

    def _end_start(self) -> dict[str, float]:
        """Score the current run (:meth:`assess`), then begin the next one, or the next
        round, or after the last round resume the best. Takes no step."""
        assessment = self.assess(self.local.x)
        self._records[self.start] = StartRecord(self.start, assessment.score,
                                                self.local.snapshot(), assessment.response)
        if not self._queue:
            self._round += 1
            survivors = (self.survivors(self.plan.rounds[self._round][0]) if self.exploring
                         else self.survivors(1))
            self._records = {i: self._records[i] for i in survivors}
            self._queue = survivors
        if self.exploring:
            self._begin(self._queue.pop(0))
        else:
            best = self._records[self._queue[0]]
            self.start = best.index
            self.local.restore(best.state)
        return {"grad_norm": math.inf, "start": self.start, "start_score": assessment.score}

    def step(self, responses: Sequence[np.ndarray]) -> dict[str, float]:
        pihat = responses[0]
        self.k += 1
        if self.exploring and self._local_steps == self.plan.rounds[self._round][1]:
            return self._end_start()
        diagnostics = dict(self.local.local_step(pihat))
        self._local_steps += 1
        # the coordinator's tolerance rule may end the match only once the search and the
        # continuation are over
        if self.exploring or self.k <= self.plan.search_end + self.plan.anneal_iterations:
            diagnostics["grad_norm"] = math.inf
        if self.plan.starts > 1:
            diagnostics["start"] = self.start
        return diagnostics
