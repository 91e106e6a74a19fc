"""PBRL: penalty-based bilevel RL with exact (closed-form) gradients.

Shen, Yang, Chen, *Principled Penalty-based Methods for Bilevel Reinforcement Learning and
RLHF* (ICML 2024; JMLR 26(114), 2025). The lower-level constraint ``pi in argmax V(x, .)`` is
replaced by a penalty, and the leader solves (docs/theory.md §2)

    min_{x, pi}  F_lam(x, pi) = f(x, pi) + lam * p(x, pi)

with either penalty:

- ``value``:   ``p = V*(x) - V(x, pi)``, whose x-gradient (Danskin) needs the best response
  ``pihat``: ``grad_x p = grad_x V(x, pihat) - grad_x V(x, pi)``. ``pihat`` is the follower
  learner's current policy (DESIGN, "Who owns which policy").
- ``bellman``: ``g = E_rho[max_q <Q_pi, q> - tau h(q) - V_pi]``, the one-step optimality gap of
  ``pi`` in its own Q-function; no ``pihat`` needed.

Two updates (``PBRLConfig.pi_update``):

- ``"exact"`` (default) [ours]: ``pi`` is the minimizer of ``F_lam(x, .)`` at each ``x``, and
  ``x`` descends ``F*_lam(x) = min_pi F_lam(x, pi)``, whose gradient is the ``x`` part of
  ``grad F_lam`` at that minimizer (Danskin). ``F*_lam`` is smooth independently of ``lam`` and
  the leader can evaluate it, so the step is chosen by a backtracking line search
  (:mod:`agents.leaders.step_control`): the penalized objective decreases monotonically and the
  iterates settle instead of chattering.
- ``"gradient"``: the paper's single-loop joint update (docs/theory.md §4),

      x <- x - (alpha_x / lam_k) G_x,     theta <- theta - (alpha_pi / lam_k) G_theta

  with steps scaling as ``1/lam_k`` because ``F_lam`` is ``lam``-smooth; ``pi_steps`` extra
  ``theta`` steps per ``x`` step keep ``pi`` near its minimizer.

Penalty continuation [ours]: ``lam_k = max(ramp_k, lam_tau / tau_k)``. The penalized optimum
differs from the bilevel one by a bias that shrinks with ``lam tau`` (the penalized policy is
the follower's soft best response to ``r_F + r_L / lam``, so ``lam`` is measured in units of
``1 / tau``); tying ``lam`` to the entropy weight keeps that product fixed while the search
(:mod:`agents.leaders.search`) lowers ``tau``. The stationarity measure is the norm of the logit
gradient of ``F_lam``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agents.leaders.lbfgs import minimize_lbfgs
from agents.leaders.search import SearchSettings
from agents.leaders.step_control import SettledStep, armijo
from stackelberg.problem import Gradient, JointEvaluation, StackelbergProblem
from stackelberg.tabular import row_max, safe_log, softmax
from stackelberg.upper_level import ValueObjective
from stackelberg.validation import check_fields

PENALTIES = ("value", "bellman")
GEOMETRIES = ("natural", "mirror", "euclidean")
PI_UPDATES = ("gradient", "exact")
#: Tolerance of the leader's own best-response solves (that of the exact follower learner, so
#: that the follower's answer at the same ``x`` is reused).
ORACLE_TOL = 1e-10
#: L-BFGS's gradient tolerance for the Bellman penalty's inner minimization.
BELLMAN_GTOL = 1e-8


@dataclass(frozen=True)
class PBRLConfig(SearchSettings):
    """Hyperparameters of the exact-gradient PBRL leader (and the search fields of
    :class:`agents.leaders.search.SearchSettings`).

    Attributes
    ----------
    penalty : str
        ``"value"`` or ``"bellman"`` (docs/theory.md §2).
    lam : float
        Smallest penalty weight (reached at the end of the ramp).
    lam_tau : float
        ``lam_k`` is at least ``lam_tau / tau_k`` (penalty continuation; 0 disables it).
    lam_init : float
        Penalty weight at the first iteration of the ramp.
    ramp_iterations : int
        Iterations over which the ramp grows linearly from ``lam_init`` to ``lam`` (0: none).
    alpha_x : float
        Leader step size: the first trial step of the line search (``"exact"``), or the step
        times ``lam_k`` (``"gradient"``).
    alpha_pi : float
        Penalized-policy step size, multiplied by ``1 / lam_k`` (``"gradient"`` only).
    pi_steps : int
        ``theta`` steps per ``x`` step (``"gradient"`` only; 1 is the plain joint update).
    geometry : str
        ``"natural"`` (default): the ``"mirror"`` step preconditioned per state by the
        occupancy ``d_pi(s) / (1 - gamma)``, i.e. natural-gradient / policy-mirror-descent steps
        whose size does not depend on how often a state is visited or on the reward scale
        ``1/(1-gamma)``. ``"mirror"``: mirror-descent steps on the simplex (the centred
        gradient in the direct parameters, which does not vanish near a vertex).
        ``"euclidean"``: plain gradient steps on the logits. A positive diagonal
        preconditioner leaves the stationary points unchanged, and each is a descent
        direction for the line search. [ours]
    pi_update : str
        ``"exact"`` (default): ``pi`` minimizes ``F_lam(x, .)`` (value penalty: a soft MDP
        solve with reward ``r_F + r_L / lam``, ``StackelbergProblem.penalized_response``;
        Bellman penalty: L-BFGS on ``theta``) and ``x`` takes line-searched steps on
        ``min_pi F_lam(x, pi)``. ``"gradient"``: the paper's joint first-order update.
    """

    penalty: str = "value"
    lam: float = 100.0
    lam_tau: float = 10.0
    lam_init: float = 1.0
    ramp_iterations: int = 0
    alpha_x: float = 1.0
    alpha_pi: float = 5.0
    pi_steps: int = 1
    geometry: str = "natural"
    pi_update: str = "exact"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.penalty not in PENALTIES:
            raise ValueError(f"leader.penalty must be one of {PENALTIES}, got {self.penalty!r}")
        check_fields(
            self,
            positive=("lam", "lam_init", "alpha_x", "alpha_pi"),
            non_negative=("lam_tau",),
            positive_int=("pi_steps",),
            non_negative_int=("ramp_iterations",),
        )
        if self.pi_update not in PI_UPDATES:
            raise ValueError(f"leader.pi_update must be one of {PI_UPDATES}, "
                             f"got {self.pi_update!r}")
        if self.geometry not in GEOMETRIES:
            raise ValueError(f"leader.geometry must be one of {GEOMETRIES}, got {self.geometry!r}")
        if self.lam_init > self.lam:
            raise ValueError(f"leader.lam_init ({self.lam_init}) must not exceed lam ({self.lam})")


def penalty_ramp(config, k: int) -> float:
    """``lam_k``, linear from ``config.lam_init`` at ``k = 0`` to ``config.lam`` at
    ``k = config.ramp_iterations``, then constant."""
    if config.ramp_iterations == 0:
        return config.lam
    fraction = min(1.0, k / config.ramp_iterations)
    return config.lam_init + fraction * (config.lam - config.lam_init)


@dataclass(frozen=True)
class PenalizedGradient:
    """``grad F_lam`` in the logits (``gradient``), the step ``direction`` in the configured
    geometry, and the penalty's value at the current point."""

    direction: Gradient
    gradient: Gradient
    penalty: float


@dataclass(frozen=True)
class PBRLState:
    """What a search needs to resume a PBRL run: the iterate, the step counter and step."""

    x: np.ndarray
    theta: np.ndarray
    k: int
    step: float


class PBRLLeader:
    """Penalty-based local method (value or Bellman penalty) with exact gradients.

    Used on its own (``reset``/``step``, from the uniform commitment) or inside
    :class:`agents.leaders.search.SearchLeader` (``begin``/``step``), which the registry does.

    Parameters
    ----------
    config : PBRLConfig
    """

    samples = 0

    def __init__(self, config: PBRLConfig | None = None):
        self.config = config or PBRLConfig()

    def reset(self, problem: StackelbergProblem, rng: np.random.Generator) -> None:
        self.begin(problem, problem.initial_x())

    def begin(self, problem: StackelbergProblem, x0: np.ndarray) -> None:
        """Start afresh from the logits ``x0``."""
        if (problem.leader_geometry == "euclidean"
                and self.config.geometry != "euclidean"):
            raise ValueError(f"leader.geometry = {self.config.geometry!r} is defined for softmax "
                             "logits; this problem's x is not logits: use 'euclidean'")
        self.problem = problem
        self._x = x0
        self.theta = np.zeros(problem.policy_shape)
        self.k = 0
        self._step = self.config.alpha_x
        self._inner: dict[tuple[bytes, float, float], tuple[float, np.ndarray]] = {}
        self._settled = SettledStep()

    def snapshot(self) -> PBRLState:
        return PBRLState(self._x.copy(), self.theta.copy(), self.k, self._step)

    def restore(self, state: PBRLState) -> None:
        self._x, self.theta = state.x.copy(), state.theta.copy()
        self.k, self._step = state.k, state.step
        self._inner = {}
        self._settled = SettledStep()

    @property
    def x(self) -> np.ndarray:
        return self._x

    @property
    def penalized_policy(self) -> np.ndarray:
        return softmax(self.theta, axis=1)

    def penalty_weight(self) -> float:
        """``lam_k = max(ramp_k, lam_tau / tau_k)`` (see the module docstring)."""
        lam = penalty_ramp(self.config, self.k)
        tau = self.problem.tau
        if self.config.lam_tau > 0 and tau > 0:
            lam = max(lam, self.config.lam_tau / tau)
        return lam

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
        if mirror:  # (mu = softmax(x): one row per row of x; a commitment has it)
            gradient = Gradient(ev.mu[: self._x.shape[0]] * direction.x, pi * direction.theta)
        else:
            gradient = direction
        if self.config.geometry == "natural":
            occupancy = (ev.visitation / (1.0 - self.problem.gamma))[:, None]
            direction = Gradient(direction.x / self.problem.reduce_x(occupancy),
                                 direction.theta / occupancy)
        return PenalizedGradient(direction=direction, gradient=gradient, penalty=penalty)

    def minimize_over_pi(self, lam: float) -> np.ndarray:
        """``theta`` minimizing ``F_lam(x, .)`` at the current ``x``."""
        return self._minimize_over_pi(self._x, lam, self.theta)

    def _minimize_over_pi(self, x: np.ndarray, lam: float, theta0: np.ndarray) -> np.ndarray:
        """Value penalty: closed form, a soft MDP solve (``StackelbergProblem.
        penalized_response``). Bellman penalty: L-BFGS on ``theta`` with the closed-form
        gradient, warm-started from the value penalty's minimizer (both tend to the best
        response as ``lam`` grows, and coincide when ``gamma = 0``: then no L-BFGS iteration
        is needed). An upper objective that is not a value (RLHF's preference NLL,
        docs/theory.md §8) has no closed form for either penalty: L-BFGS, warm-started from
        the best response (the minimizer's limit as ``lam`` grows)."""
        problem = self.problem
        mdp = problem.follower_mdp(x)
        value_objective = isinstance(problem.upper, ValueObjective)
        if value_objective:
            start = safe_log(problem.penalized_response(x, lam, pi0=softmax(theta0, axis=1)).pi)
            # gamma = 0: Q_pi = r_x whatever pi, and d_pi = rho, so g = tau E_rho KL(pi || pi*)
            # = p (docs/theory.md §2): the two penalized objectives are the same function of pi
            if self.config.penalty == "value" or mdp.gamma == 0:
                return start
        else:
            start = safe_log(problem.best_response(x, pi0=softmax(theta0, axis=1),
                                                   tol=ORACLE_TOL).pi)
        shape = theta0.shape
        bellman = self.config.penalty == "bellman"

        def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
            ev = problem.evaluate(x, softmax(flat.reshape(shape), axis=1), mdp)
            # x is fixed: the theta parts alone
            if bellman:
                grad = ev.grad_upper_objective_theta() + lam * ev.grad_bellman_penalty_theta()
                return ev.upper_objective + lam * ev.bellman_penalty(), grad.ravel()
            # f + lam (V* - V(x, pi)) without its constant V*
            grad = ev.grad_upper_objective_theta() - lam * problem.lower.value_theta(ev)
            return ev.upper_objective - lam * ev.follower_value, grad.ravel()

        first = objective(start.ravel())
        if np.abs(first[1]).max() <= BELLMAN_GTOL:
            return start
        # scipy's L-BFGS-B iterates, without minimize's wrapper and from the evaluation above
        return minimize_lbfgs(objective, start.ravel(), BELLMAN_GTOL, 200, first).reshape(shape)

    def _penalized_value(self, x: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
        """``F*_lam(x) = min_pi F_lam(x, pi)`` and its minimizing ``theta`` (remembered for the
        current step's line search, keyed by ``x``, ``lam`` and ``tau``)."""
        key = (x.tobytes(), lam, self.problem.tau)
        known = self._inner.get(key)
        if known is not None:
            return known
        problem = self.problem
        theta = self._minimize_over_pi(x, lam, self.theta)
        ev = problem.evaluate(x, softmax(theta, axis=1))
        if self.config.penalty == "value":
            star = problem.best_response(x, tol=ORACLE_TOL)
            penalty = float(problem.initial @ star.V) - ev.follower_value
        else:
            penalty = ev.bellman_penalty()
        answer = (ev.upper_objective + lam * penalty, theta)
        self._inner[key] = answer
        return answer

    def step(self, responses: Sequence[np.ndarray]) -> dict[str, float]:
        """One iteration as a leader on its own (the followers' policies)."""
        return self.local_step(responses[0])

    def local_step(self, pihat: np.ndarray) -> dict[str, float]:
        """One PBRL iteration against the follower's response ``pihat``."""
        lam = self.penalty_weight()
        if self.config.pi_update == "exact":
            diagnostics = self._exact_step(pihat, lam)
        else:
            diagnostics = self._joint_step(pihat, lam)
        self.k += 1
        return diagnostics

    def _exact_step(self, pihat: np.ndarray, lam: float) -> dict[str, float]:
        key = (self._x.tobytes(), self.problem.tau, lam, pihat.tobytes(), self._step)
        replay = self._settled.replay(key)
        if replay is not None:
            return replay
        value, self.theta = self._penalized_value(self._x, lam)
        step = self.penalized_gradient(pihat, lam)
        result = armijo(lambda x: self._penalized_value(x, lam)[0], self._x, value,
                        step.gradient.x, step.direction.x, self._step)
        if result.accepted:
            self._x = result.x
            self.theta = self._penalized_value(self._x, lam)[1]
        self._step = result.step
        # only the current point's answer can serve the next step
        self._inner = {k: v for k, v in self._inner.items() if k[0] == self._x.tobytes()}
        diagnostics = {"penalty_weight": lam, "penalty": step.penalty,
                       "grad_norm": float(np.sqrt((step.gradient.x**2).sum())),
                       "line_search_trials": result.trials}
        self._settled.record((self._x.tobytes(), self.problem.tau, lam, pihat.tobytes(),
                              self._step), result, diagnostics)
        return diagnostics

    def _joint_step(self, pihat: np.ndarray, lam: float) -> dict[str, float]:
        c = self.config
        for _ in range(c.pi_steps - 1):
            inner = self.penalized_gradient(pihat, lam)
            self.theta = self.theta - (c.alpha_pi / lam) * inner.direction.theta
        step = self.penalized_gradient(pihat, lam)
        self._x = self._x - (c.alpha_x / lam) * step.direction.x
        self.theta = self.theta - (c.alpha_pi / lam) * step.direction.theta
        self.theta -= row_max(self.theta)[:, None]  # softmax is shift-invariant
        return {"penalty_weight": lam, "penalty": step.penalty,
                "grad_norm": step.gradient.norm()}

