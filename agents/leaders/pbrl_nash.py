"""``pbrl-nash``: PBRL with the Nikaido–Isoda penalty, a planner over n followers playing a game.

Shen, Yang & Chen, *Principled Penalty-based Methods for Bilevel Reinforcement Learning and
RLHF* (ICML 2024; JMLR 2025): when the lower level is a game, the constraint "``pi`` is a Nash
equilibrium of the followers at ``x``" is replaced by the Nikaido–Isoda penalty ``psi`` (the
paper states it for two zero-sum followers; the n-follower general-sum form is this project's),
and the planner solves (docs/theory.md §2, §7.3 and §7.4)

    min_{x, pi_1..pi_n}  F_lam(x, pi) = f(x, pi) + lam * psi(x, pi),
    psi(x, pi) = sum_i [ max_{pi_i'} V_i(x; pi_i', pi_-i) - V_i(x; pi) ].

Gradients by Danskin's theorem at the followers' soft best responses ``BR_i(pi_-i)`` (the inner
oracle: soft policy iteration, warm-started from the last ones), computed as weights on the
followers' model (:func:`stackelberg.nash.ni_penalty_gradient`) and carried to ``x`` by the
parameterization's ``vjp``
(:meth:`stackelberg.incentive_problem.IncentiveProblem.penalty_gradient`);
``f`` is the problem's upper objective, ``-(welfare - c payments)``
(:class:`stackelberg.economy.NetWelfare`).

Update [ours, the paper's single-loop joint step, docs/theory.md §4]: ``pi_steps`` gradient steps
on the penalized policies' logits ``theta_j <- theta_j - (alpha_pi / lam) G_theta_j``, then one
step on ``x <- x - (alpha_x / lam) G_x`` (the incentive parameters ``w``; both steps ``O(1/lam)``
since ``F_lam`` is ``lam``-smooth; a fixed ``x`` step oscillated on the commons once ``lam``
reached 20, measured), with ``lam`` ramping linearly
from ``penalty_start`` to ``penalty`` over ``ramp_iterations``. The penalized policies are the
leader's own (DESIGN "Who owns which policy"); the followers' actual play comes from their
learners and is what the exact metrics evaluate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stackelberg.incentive_problem import IncentiveProblem
from stackelberg.nash import best_response
from stackelberg.tabular import softmax
from stackelberg.validation import check_fields


@dataclass(frozen=True)
class PBRLNashConfig:
    """Settings of :class:`PBRLNashLeader` (module docstring for the update).

    Attributes
    ----------
    penalty : float
        The final penalty weight ``lam`` on the Nikaido–Isoda penalty.
    penalty_start : float
        ``lam`` at the first iteration; it ramps linearly to ``penalty``.
    ramp_iterations : int
        Iterations of the ramp (0: ``penalty`` from the start).
    alpha_x : float
        Step on the incentive parameters, divided by ``lam``.
    alpha_pi : float
        Step on the penalized policies' logits, divided by ``lam``.
    pi_steps : int
        Policy steps per incentive step.
    initial_x : float or None
        Start every entry of ``x`` here instead of at the parameterization's neutral point.
    """

    penalty: float = 20.0
    penalty_start: float = 1.0
    ramp_iterations: int = 100
    alpha_x: float = 0.5
    alpha_pi: float = 1.0
    pi_steps: int = 10
    #: Start every entry of ``x`` here instead of at the parameterization's neutral point (a
    #: budget's neutral point spends most of the budget; ``-4`` starts near zero incentives).
    initial_x: float | None = None

    section = "leader"

    def __post_init__(self) -> None:
        check_fields(self, positive=("penalty", "penalty_start", "alpha_x", "alpha_pi"),
                     positive_int=("pi_steps",), non_negative_int=("ramp_iterations",))


@dataclass(frozen=True)
class LeaderStep:
    """One leader step's diagnostics (the coordinator's metrics row takes them as floats)."""

    penalty_weight: float
    penalized_objective: float
    upper_objective: float
    ni_penalty: float
    grad_norm: float

    def as_dict(self) -> dict[str, float]:
        return {"penalty_weight": self.penalty_weight,
                "penalized_objective": self.penalized_objective,
                "leader_upper_objective": self.upper_objective, "ni_penalty": self.ni_penalty,
                "grad_norm": self.grad_norm}


class PBRLNashLeader:
    """The planner's PBRL on ``f + lam psi`` (module docstring)."""

    def __init__(self, config: PBRLNashConfig | None = None):
        self.config = config or PBRLNashConfig()
        self.samples = 0

    def reset(self, problem: IncentiveProblem, rng: np.random.Generator) -> None:
        """Start from the neutral incentive and uniform penalized policies (``rng`` unused: the
        algorithm is deterministic given the followers' play)."""
        if not isinstance(problem, IncentiveProblem):
            raise ValueError("pbrl-nash plays an incentive economy (a planner and n followers "
                             f"playing a game), not a {type(problem).__name__}")
        self.problem = problem
        start = self.config.initial_x
        self._x = (problem.initial_x() if start is None
                   else np.full(problem.x_shape, float(start)))
        self.theta = [np.zeros_like(pi) for pi in problem.uniform_profile()]
        self._responses: list[np.ndarray | None] = [None] * problem.n_followers
        self.k = 0

    @property
    def x(self) -> np.ndarray:
        return self._x

    @property
    def penalized_policy(self) -> None:
        """None: the penalized policies are the leader's own, the metrics evaluate the
        followers' play (:attr:`penalized_policies` holds them)."""
        return None

    @property
    def penalized_policies(self) -> tuple[np.ndarray, ...]:
        return tuple(softmax(t, axis=1) for t in self.theta)

    def penalty_weight(self, k: int) -> float:
        c = self.config
        if c.ramp_iterations == 0:
            return c.penalty
        return c.penalty_start + (c.penalty - c.penalty_start) * min(k / c.ramp_iterations, 1.0)

    def _gradient(self, lam: float):
        """``F``, its parts and its gradients at the current ``(x, theta)``."""
        problem, tau = self.problem, self.problem.tau
        model = problem.followers(self._x)
        profile = self.penalized_policies
        responses = []
        for i in range(model.n_followers):
            star = best_response(model, profile, i, tau, pi0=self._responses[i])
            responses.append(star.pi)
        self._responses = responses
        ni, ni_x = problem.penalty_gradient(self._x, profile, responses)
        upper = problem.upper_value(self._x, profile)
        grad_x = upper.grad_x + lam * ni_x
        grad_theta = [g + lam * p for g, p in zip(upper.grad_theta, ni.theta, strict=True)]
        return upper, ni, grad_x, grad_theta

    def step(self, responses: Sequence[np.ndarray]) -> dict[str, float]:
        """``pi_steps`` steps on the penalized policies, then one on ``x`` (the followers'
        play, ``responses``, is not read: the penalty measures the leader's own policies)."""
        c = self.config
        lam = self.penalty_weight(self.k)
        for _ in range(c.pi_steps):
            _, _, _, grad_theta = self._gradient(lam)
            step = c.alpha_pi / lam
            self.theta = [t - step * g for t, g in zip(self.theta, grad_theta, strict=True)]
        upper, ni, grad_x, grad_theta = self._gradient(lam)
        self._x = self._x - (c.alpha_x / lam) * grad_x
        self.k += 1
        norm = float(np.sqrt((grad_x**2).sum() + sum((g**2).sum() for g in grad_theta)))
        return LeaderStep(lam, upper.objective + lam * ni.value, upper.objective, ni.value,
                          norm).as_dict()
