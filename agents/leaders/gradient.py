"""Gradient-descent leaders that differentiate through (or around) the follower's response.

- ``hypergradient``: gradient descent on the exact hypergradient of ``Phi(x) = f(x, pi*_x)``
  by implicit differentiation of the soft Bellman fixed point (docs/theory.md §3). This is the
  second-order, implicit-differentiation baseline of both papers (e.g. PARL). The follower
  learner's current policy stands in for ``pi*_x``; with the ``best-response`` follower it is
  exact.
- ``partial-gradient``: the standard alternating update that ignores how the follower's policy
  depends on ``x``: ``x <- x - alpha grad_x f(x, pihat)`` (docs/theory.md §4, baselines).

Both exact leaders choose their step by a backtracking line search
(:mod:`agents.leaders.step_control`) on the objective they descend: the hyper-objective
``Phi(x)`` evaluated exactly (a best-response solve at each trial point), or ``f(., pihat)``
with the follower's policy held fixed. The objective then decreases monotonically, so the
iterates settle where a fixed step would overshoot the steep boundary of a follower-response
region (its slope grows like ``1 / tau``). The registry wraps both in the global search and tau
continuation of :mod:`agents.leaders.search`.
- ``partial-gradient-sampled``: the same update along an unbiased score-function estimate of
  ``grad_x f(x, pihat)`` from sampled episodes (:mod:`agents.leaders.score_function`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agents.leaders.score_function import EpisodeSettings, StateBaseline, sampled_estimate
from agents.leaders.search import SearchSettings
from agents.leaders.step_control import SettledStep, armijo
from stackelberg.problem import StackelbergProblem
from stackelberg.tabular import softmax
from stackelberg.validation import check_fields

#: Tolerance of the leader's own best-response solves (that of the exact follower learner, so
#: that the follower's answer at the same ``x`` is reused).
ORACLE_TOL = 1e-10


@dataclass(frozen=True)
class GradientLeaderConfig(SearchSettings):
    """Hyperparameters of an exact gradient-descent leader (and the search fields of
    :class:`agents.leaders.search.SearchSettings`).

    Attributes
    ----------
    alpha : float
        First trial step of the line search on the leader logits ``x`` (the line search
        doubles an accepted step for the next trial and halves a rejected one).
    """

    alpha: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fields(self, positive=("alpha",))


def mirror_direction(grad: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The mirror-descent (KL geometry) direction of a logit gradient: ``grad / mu`` row by row,
    ``mu = softmax(x)``.

    The logit gradient of ``g(mu_x)`` is ``mu * c`` with ``c`` the centred gradient in the
    direct parameters, so it vanishes with ``mu``: an action with little mass would take
    forever to lose the rest. ``c`` does not (see ``leader_logit_gradient``), and
    ``<grad, c> = sum mu c^2 >= 0`` keeps it a descent direction for the line search.
    """
    mu = softmax(x, axis=1)
    return np.divide(grad, mu, out=np.zeros_like(grad), where=mu > 0)


@dataclass(frozen=True)
class DescentState:
    """What a search needs to resume a descent: the iterate and the next trial step."""

    x: np.ndarray
    step: float


class ExactDescentLeader:
    """Shared loop of the exact descent leaders: ``x <- x - t g`` with ``g`` the gradient of
    :meth:`objective` (given the follower's policy) and ``t`` from a line search on it.
    Used on its own (``reset``/``step``) or inside :class:`agents.leaders.search.SearchLeader`
    (``begin``/``local_step``)."""

    samples = 0
    penalized_policy = None

    def __init__(self, config: GradientLeaderConfig | None = None):
        self.config = config or GradientLeaderConfig()

    def reset(self, problem: StackelbergProblem, rng: np.random.Generator) -> None:
        self.begin(problem, problem.initial_x())

    def begin(self, problem: StackelbergProblem, x0: np.ndarray) -> None:
        self.problem = problem
        self._x = x0
        self._step = self.config.alpha
        self._settled = SettledStep()

    def snapshot(self) -> DescentState:
        return DescentState(self._x.copy(), self._step)

    def restore(self, state: DescentState) -> None:
        self._x, self._step = state.x.copy(), state.step
        self._settled = SettledStep()

    @property
    def x(self) -> np.ndarray:
        return self._x

    def gradient(self, pihat: np.ndarray) -> tuple[float, np.ndarray]:
        """The objective at the current ``x`` and its gradient in ``x``."""
        raise NotImplementedError

    def objective(self, x: np.ndarray, pihat: np.ndarray) -> float:
        """The objective the line search evaluates at a trial point."""
        raise NotImplementedError

    def step(self, responses: Sequence[np.ndarray]) -> dict[str, float]:
        return self.local_step(responses[0])

    def local_step(self, pihat: np.ndarray) -> dict[str, float]:
        key = (self._x.tobytes(), self.problem.tau, pihat.tobytes(), self._step)
        replay = self._settled.replay(key)
        if replay is not None:
            return replay
        value, grad = self.gradient(pihat)
        # the mirror direction is that of softmax logits; a problem whose x is something else
        # (a reward model) says so, and steps along the plain gradient
        euclidean = self.problem.leader_geometry == "euclidean"
        direction = grad if euclidean else mirror_direction(grad, self._x)
        result = armijo(lambda x: self.objective(x, pihat), self._x, value, grad, direction,
                        self._step)
        self._x, self._step = result.x, result.step
        diagnostics = {"grad_norm": float(np.sqrt((grad**2).sum())),
                       "line_search_trials": result.trials}
        self._settled.record((self._x.tobytes(), self.problem.tau, pihat.tobytes(),
                              self._step), result, diagnostics)
        return diagnostics


class DescentLeader:
    """Shared loop: ``x <- x - alpha * direction(pihat)``; subclasses give the direction (and
    a sample-based one counts its transitions in ``samples``)."""

    samples = 0
    penalized_policy = None

    def __init__(self, config: GradientLeaderConfig | None = None):
        self.config = config or GradientLeaderConfig()

    def reset(self, problem: StackelbergProblem, rng: np.random.Generator) -> None:
        self.problem = problem
        self._x = problem.initial_x()
        self.k = 0

    @property
    def x(self) -> np.ndarray:
        return self._x

    def direction(self, pihat: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def step_size(self) -> float:
        """``alpha (k+1)^-step_decay`` (a config without ``step_decay`` keeps ``alpha``)."""
        return self.config.alpha * (self.k + 1.0) ** -getattr(self.config, "step_decay", 0.0)

    def step(self, responses: Sequence[np.ndarray]) -> dict[str, float]:
        grad = self.direction(responses[0])
        alpha = self.step_size()
        self._x = self._x - alpha * grad
        self.k += 1
        return {"grad_norm": float(np.sqrt((grad**2).sum()))}


class HypergradientLeader(ExactDescentLeader):
    """Gradient descent on the exact (implicit-differentiation) hypergradient, line-searched
    on the exact hyper-objective."""

    def begin(self, problem: StackelbergProblem, x0: np.ndarray) -> None:
        if problem.tau <= 0:
            raise ValueError(
                "leader 'hypergradient' needs follower.tau > 0: the implicit hypergradient "
                "exists only for a unique, smooth best response"
            )
        super().begin(problem, x0)

    def gradient(self, pihat: np.ndarray) -> tuple[float, np.ndarray]:
        hyper = self.problem.hypergradient(self._x, pi_star=pihat)
        return hyper.value, hyper.grad

    def objective(self, x: np.ndarray, pihat: np.ndarray) -> float:
        star = self.problem.best_response(x, pi0=pihat, tol=ORACLE_TOL)
        return self.problem.evaluate(x, star.pi).upper_objective


class PartialGradientLeader(ExactDescentLeader):
    """Ignores the follower's dependence on ``x``: descends ``grad_x f(x, pihat)``,
    line-searched on ``f(., pihat)``."""

    def gradient(self, pihat: np.ndarray) -> tuple[float, np.ndarray]:
        ev = self.problem.evaluate(self._x, pihat)
        return ev.upper_objective, ev.grad_upper_objective().x

    def objective(self, x: np.ndarray, pihat: np.ndarray) -> float:
        return self.problem.evaluate(x, pihat).upper_objective


@dataclass(frozen=True)
class SampledGradientConfig(EpisodeSettings):
    """Hyperparameters of the sample-based partial-gradient leader: the fields of
    :class:`agents.leaders.score_function.EpisodeSettings` (``episodes`` per step, ...), and

    Attributes
    ----------
    alpha : float
        Step size on the leader logits ``x``.
    step_decay : float
        ``c`` in the step size ``alpha (k+1)^-c`` at step ``k`` (0: constant; stochastic
        approximation converges for ``1/2 < c <= 1``).
    """

    alpha: float = 0.5
    step_decay: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fields(self, positive=("alpha",), non_negative=("step_decay",))


class SampledPartialGradientLeader(DescentLeader):
    """Partial gradient from samples: ``x <- x - alpha g``, ``g`` the score-function estimate
    of ``grad_x f(x, pihat)`` (:mod:`agents.leaders.score_function`), unbiased."""

    def __init__(self, config: SampledGradientConfig | None = None):
        self.config = config or SampledGradientConfig()

    def reset(self, problem: StackelbergProblem, rng: np.random.Generator) -> None:
        super().reset(problem, rng)
        self.rng = rng
        self.baseline = StateBaseline(problem.model.n_states, self.config.baseline_rate)
        self.samples = 0

    def direction(self, pihat: np.ndarray) -> np.ndarray:
        estimate, episodes = sampled_estimate(self.problem, self._x, pihat, self.config,
                                              self.rng, self.baseline)
        self.samples += episodes.n_transitions
        return estimate.grad_upper_objective.x
