"""PBRL: penalty-based bilevel RL with exact (closed-form) gradients.

Shen, Yang, Chen, *Principled Penalty-based Methods for Bilevel Reinforcement Learning and
RLHF* (ICML 2024; JMLR 26(114), 2025). The lower-level constraint ``pi in argmax V(x, .)`` is
replaced by a penalty, and the leader solves (REFERENCE §2)

    min_{x, pi}  F_lam(x, pi) = f(x, pi) + lam * p(x, pi)

with either penalty:

- ``value``:   ``p = V*(x) - V(x, pi)``, whose x-gradient (Danskin) needs the best response
  ``pihat``: ``grad_x p = grad_x V(x, pihat) - grad_x V(x, pi)``. ``pihat`` is the follower
  learner's current policy (DESIGN, "Who owns which policy").
- ``bellman``: ``g = E_rho[max_q <Q_pi, q> - tau h(q) - V_pi]``, the one-step optimality gap of
  ``pi`` in its own Q-function; no ``pihat`` needed.

Each step is one gradient step on ``(x, theta)``, ``pi = softmax(theta)`` (REFERENCE §4):

    G_x     = grad_x f + lam_k (grad_x V(x, pihat) - grad_x V(x, pi))     (value penalty)
    G_theta = grad_theta f - lam_k grad_theta V(x, pi)
    x      <- x - (alpha_x / lam_k) G_x,     theta <- theta - (alpha_pi / lam_k) G_theta

The step sizes scale as ``1/lam_k`` (the penalized objective is ``lam``-smooth); ``lam_k`` ramps
linearly from ``lam_init`` to ``lam`` over ``ramp_iterations`` steps. [ours] ``pi_steps`` extra
``theta`` steps per ``x`` step keep ``pi`` near the minimizer of ``F_lam(x, .)`` so that the
``x`` step can be larger; ``pi_steps = 1`` is the plain single-loop joint update. The
stationarity measure is the norm of the gradient (the logits are unconstrained, so the
gradient mapping is the gradient).

Multi-start [ours]. PBRL finds a stationary point of a nonconvex problem, and which one depends
on where ``x`` starts: in a matrix game each region of leader commitments with the same
follower response is a basin. With ``starts > 1`` the leader first runs ``start_iterations``
PBRL iterations from each of ``starts`` starting points (see :func:`starting_points`), scores
each end point by the upper objective ``f(x, pihat)`` at the follower learner's response
(what the leader observes), then resumes the best run and continues it to the end of the
match. Restarting is the standard way to add a global element to a local method; it does not
change the update itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.optimize

from stackelberg.problem import Gradient, JointEvaluation, StackelbergProblem
from stackelberg.tabular import row_max, safe_log, softmax
from stackelberg.validation import check_fields

PENALTIES = ("value", "bellman")
GEOMETRIES = ("natural", "mirror", "euclidean")
PI_UPDATES = ("gradient", "exact")


@dataclass(frozen=True)
class PBRLConfig:
    """Hyperparameters of the exact-gradient PBRL leader.

    Attributes
    ----------
    penalty : str
        ``"value"`` or ``"bellman"`` (REFERENCE §2).
    lam : float
        Final penalty weight ``lam``; larger means a smaller lower-level gap at the end.
    lam_init : float
        Penalty weight at the first iteration.
    ramp_iterations : int
        Iterations over which ``lam_k`` grows linearly from ``lam_init`` to ``lam``.
    alpha_x : float
        Leader step size, multiplied by ``1 / lam_k``.
    alpha_pi : float
        Penalized-policy step size, multiplied by ``1 / lam_k``.
    pi_steps : int
        ``theta`` steps per ``x`` step ([ours]; 1 is the plain joint update).
    geometry : str
        ``"natural"`` (default): the ``"mirror"`` step preconditioned per state by the
        occupancy ``d_pi(s) / (1 - gamma)``, i.e. natural-gradient / policy-mirror-descent steps
        whose size does not depend on how often a state is visited or on the reward scale
        ``1/(1-gamma)``. ``"mirror"``: mirror-descent steps on the simplex, i.e. the logits move
        along the centred gradient in the policy's direct parameters, which does not vanish
        near a vertex. ``"euclidean"``: plain gradient steps on the logits. A positive diagonal
        preconditioner leaves the stationary points unchanged. [ours]
    pi_update : str
        ``"gradient"`` (default): ``pi_steps`` gradient steps on ``theta`` per iteration, the
        paper's first-order joint update. ``"exact"``: ``pi`` is set to the minimizer of
        ``F_lam(x, .)`` (value penalty: a soft MDP solve with reward ``r_F + r_L / lam``, see
        ``StackelbergProblem.penalized_response``; Bellman penalty: L-BFGS on ``theta``); the
        ``x`` step then follows the gradient of ``min_pi F_lam(x, pi)`` (Danskin), which is
        smooth independently of ``lam``, so its step is ``alpha_x`` without the ``1/lam``
        factor. A double loop, like the inner oracle that produces ``pihat``. [ours]
    starts : int
        Number of starting points (1: the plain method from the uniform commitment). [ours]
    start_iterations : int
        Iterations run from each starting point before the best is resumed (used when
        ``starts > 1``). The penalty ramp restarts with each starting point.
    """

    section = "leader"

    penalty: str = "value"
    lam: float = 100.0
    lam_init: float = 1.0
    ramp_iterations: int = 300
    alpha_x: float = 1.0
    alpha_pi: float = 5.0
    pi_steps: int = 1
    geometry: str = "natural"
    pi_update: str = "gradient"
    starts: int = 1
    start_iterations: int = 300

    def __post_init__(self) -> None:
        if self.penalty not in PENALTIES:
            raise ValueError(f"leader.penalty must be one of {PENALTIES}, got {self.penalty!r}")
        check_fields(
            self,
            positive=("lam", "lam_init", "alpha_x", "alpha_pi"),
            positive_int=("pi_steps", "starts", "start_iterations"),
            non_negative_int=("ramp_iterations",),
        )
        if self.pi_update not in PI_UPDATES:
            raise ValueError(f"leader.pi_update must be one of {PI_UPDATES}, "
                             f"got {self.pi_update!r}")
        if self.geometry not in GEOMETRIES:
            raise ValueError(f"leader.geometry must be one of {GEOMETRIES}, got {self.geometry!r}")
        if self.lam_init > self.lam:
            raise ValueError(f"leader.lam_init ({self.lam_init}) must not exceed lam ({self.lam})")

    def minimum_iterations(self) -> int:
        """Iterations a match needs to try every start (each takes ``start_iterations`` steps
        and one to score it) and then take a step from the best."""
        return 1 if self.starts == 1 else self.starts * (self.start_iterations + 1) + 1


def penalty_ramp(config, k: int) -> float:
    """``lam_k``, linear from ``config.lam_init`` at ``k = 0`` to ``config.lam`` at
    ``k = config.ramp_iterations``, then constant."""
    if config.ramp_iterations == 0:
        return config.lam
    fraction = min(1.0, k / config.ramp_iterations)
    return config.lam_init + fraction * (config.lam - config.lam_init)


def starting_points(initial_x: np.ndarray, n: int, rng: np.random.Generator,
                    tilt: float = math.log(8.0)) -> list[np.ndarray]:
    """``n`` starting values of the leader's logits for a multi-start run.

    First ``initial_x`` (the uniform commitment), then ``initial_x`` with ``tilt`` added to one
    coordinate of the last axis (one leader action, in every state) in turn, which puts
    ``8 / (8 + m - 1)`` of the mass on that action for ``m`` actions; any further points are
    random commitments, rows of flat Dirichlet draws (``rng``), as logits.

    Parameters
    ----------
    initial_x : numpy.ndarray
        The problem's default start, shape ``(..., m)``.
    n : int
        Number of points (>= 1).
    rng : numpy.random.Generator
        Stream for the random points.
    tilt : float
        Logit added for the tilted points.

    Returns
    -------
    list of numpy.ndarray
        ``n`` arrays of ``initial_x``'s shape.
    """
    m = initial_x.shape[-1]
    points = [initial_x.copy()]
    for j in range(min(n - 1, m)):
        tilted = initial_x.copy()
        tilted[..., j] += tilt
        points.append(tilted)
    for _ in range(n - len(points)):
        points.append(np.log(rng.dirichlet(np.ones(m), size=initial_x.shape[:-1])))
    return points


@dataclass(frozen=True)
class StartRecord:
    """Where one start of a multi-start run ended: its score ``f(x, pihat)`` and the state
    to resume from."""

    index: int
    score: float
    x: np.ndarray
    theta: np.ndarray
    k: int


@dataclass(frozen=True)
class PenalizedGradient:
    """``grad F_lam`` in the logits (``gradient``), the step ``direction`` in the configured
    geometry, and the penalty's value at the current point."""

    direction: Gradient
    gradient: Gradient
    penalty: float


class PBRLLeader:
    """Penalty-based leader (value or Bellman penalty) with exact gradients.

    Parameters
    ----------
    config : PBRLConfig
    """

    samples = 0

    def __init__(self, config: PBRLConfig | None = None):
        self.config = config or PBRLConfig()

    def reset(self, problem: StackelbergProblem, rng: np.random.Generator) -> None:
        self.problem = problem
        self._starts = starting_points(problem.initial_x(), self.config.starts, rng)
        self._ended: list[StartRecord] = []
        self._begin(0)

    def _begin(self, index: int) -> None:
        """Start PBRL afresh from starting point ``index``."""
        self.start = index
        self._x = self._starts[index].copy()
        self.theta = np.zeros(self.problem.policy_shape)
        self.k = 0

    @property
    def exploring(self) -> bool:
        """Whether a multi-start run is still trying its starting points."""
        return len(self._ended) < len(self._starts) and len(self._starts) > 1

    @property
    def x(self) -> np.ndarray:
        return self._x

    @property
    def penalized_policy(self) -> np.ndarray:
        return softmax(self.theta, axis=1)

    def penalty_weight(self) -> float:
        """``lam_k``: linear ramp from ``lam_init`` to ``lam``."""
        return penalty_ramp(self.config, self.k)

    def penalized_gradient(self, pihat: np.ndarray, lam: float) -> PenalizedGradient:
        """``grad F_lam`` at the current ``(x, theta)``, its step direction in the configured
        geometry, and the penalty's value."""
        mirror = self.config.geometry in ("natural", "mirror")
        mdp = self.problem.follower_mdp(self._x)
        pi = self.penalized_policy
        ev = self.problem.evaluate(self._x, pi, mdp)
        if self.config.penalty == "value":
            ev_hat: JointEvaluation = self.problem.evaluate(self._x, pihat, mdp)
            penalty = ev_hat.follower_value - ev.follower_value
            # f - lam V(x, pi) in one backup; pihat is held fixed: only its x part enters
            # (Danskin)
            own = ev.grad_value_combination(-1.0, -lam, mirror)
            direction = Gradient(own.x + lam * ev_hat.grad_follower_value_x(mirror), own.theta)
        else:
            penalty = ev.bellman_penalty()
            direction = ev.grad_upper_objective(mirror) + lam * ev.grad_bellman_penalty(mirror)
        # the logit gradient is the mirror direction times the policy (leader_logit_gradient)
        mu_rows = ev.mu[: self._x.shape[0]]  # softmax(x): one row per row of x
        gradient = Gradient(mu_rows * direction.x, pi * direction.theta) if mirror else direction
        if self.config.geometry == "natural":
            occupancy = (ev.visitation / (1.0 - self.problem.model.gamma))[:, None]
            direction = Gradient(direction.x / self.problem.reduce_x(occupancy),
                                 direction.theta / occupancy)
        return PenalizedGradient(direction=direction, gradient=gradient, penalty=penalty)

    def minimize_over_pi(self, lam: float) -> np.ndarray:
        """``theta`` minimizing ``F_lam(x, .)`` at the current ``x`` (``pi_update = "exact"``).

        Value penalty: closed form, a soft MDP solve (``StackelbergProblem.penalized_response``).
        Bellman penalty: L-BFGS on ``theta`` with the closed-form gradient, warm-started from
        the current ``theta`` (a few iterations once the match is under way).
        """
        problem, x = self.problem, self._x
        if self.config.penalty == "value":
            return safe_log(problem.penalized_response(x, lam, pi0=self.penalized_policy).pi)
        mdp = problem.follower_mdp(x)
        shape = self.theta.shape

        def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
            ev = problem.evaluate(x, softmax(flat.reshape(shape), axis=1), mdp)
            grad = ev.grad_upper_objective().theta + lam * ev.grad_bellman_penalty().theta
            return ev.upper_objective + lam * ev.bellman_penalty(), grad.ravel()

        result = scipy.optimize.minimize(objective, self.theta.ravel(), jac=True,
                                         method="L-BFGS-B",
                                         options={"gtol": 1e-8, "maxiter": 200})
        return result.x.reshape(shape)

    def _end_start(self, pihat: np.ndarray) -> dict[str, float]:
        """Score the current start by ``f(x, pihat)``, then begin the next start or, after the
        last one, resume the best. Takes no gradient step: ``pihat`` answers the old ``x``."""
        score = self.problem.evaluate(self._x, pihat).upper_objective
        self._ended.append(StartRecord(self.start, score, self._x, self.theta, self.k))
        if self.exploring:
            self._begin(self.start + 1)
        else:
            best = min(self._ended, key=lambda record: record.score)
            self.start, self._x, self.theta, self.k = best.index, best.x, best.theta, best.k
        return {"penalty_weight": self.penalty_weight(), "penalty": math.nan,
                "grad_norm": math.inf, "start": self.start, "start_score": score}

    def step(self, responses: Sequence[np.ndarray]) -> dict[str, float]:
        c = self.config
        pihat = responses[0]
        if self.exploring and self.k == c.start_iterations:
            return self._end_start(pihat)
        lam = self.penalty_weight()
        if c.pi_update == "exact":
            self.theta = self.minimize_over_pi(lam)
            step = self.penalized_gradient(pihat, lam)
            self._x = self._x - c.alpha_x * step.direction.x
        else:
            for _ in range(c.pi_steps - 1):
                inner = self.penalized_gradient(pihat, lam)
                self.theta = self.theta - (c.alpha_pi / lam) * inner.direction.theta
            step = self.penalized_gradient(pihat, lam)
            self._x = self._x - (c.alpha_x / lam) * step.direction.x
            self.theta = self.theta - (c.alpha_pi / lam) * step.direction.theta
        self.theta -= row_max(self.theta)[:, None]  # softmax is shift-invariant
        self.k += 1
        # stationarity: the norm of the logit gradient of F_lam (unconstrained variables); while
        # other starts remain to be tried it is reported as inf, so that the coordinator's
        # tolerance rule cannot end the match early
        grad_norm = math.inf if self.exploring else step.gradient.norm()
        diagnostics = {"penalty_weight": lam, "penalty": step.penalty, "grad_norm": grad_norm}
        if len(self._starts) > 1:
            diagnostics["start"] = self.start
        return diagnostics
