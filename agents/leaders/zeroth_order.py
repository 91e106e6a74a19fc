"""Zeroth-order leader: two-point finite-difference hypergradients from sampled evaluations.

The finite-difference baseline of both papers (docs/theory.md §4, "Baselines"). Each step draws
``directions`` directions ``u`` uniform on the unit sphere of ``R^d`` (``d = x.size``) and
averages the two-point estimates (Flaxman, Kalai, McMahan, SODA 2005; Shamir, JMLR 2017)

    g = (d / (2 radius)) [Phi_hat(x + radius u) - Phi_hat(x - radius u)] u,

then steps ``x <- x - alpha g``. With exact evaluations, ``E_u g = grad Phi_radius(x)``, the
gradient of the smoothed objective ``Phi_radius(x) = E_{v uniform in the unit ball}
Phi(x + radius v)``, which differs from ``grad Phi(x)`` by ``O(radius**2)`` for a smooth
``Phi`` (the central difference cancels the odd terms of Taylor's expansion). A sphere rather
than a Gaussian direction [ours]: ``|u| = 1`` bounds every probe's distance from ``x``.

``Phi_hat(z) = -(1/N) sum_i G^L_0(i)`` is the mean leader return of ``episodes`` episodes of
geometric length (unbiased for ``f(z, pi)``, :func:`stackelberg.sampling.sample_episodes`)
played against a response ``pi`` to ``z`` that itself comes from samples ([ours], config
``response``):

- ``"soft-q"`` (default): ``response_steps`` soft-Q steps at ``z`` of a copy of the leader's
  oracle (:class:`agents.leaders.oracle.SoftQOracle`), which is anchored to the follower
  learner's policy and takes ``base_steps`` steps at ``x`` first. Bias: the probe is not
  ``pi*_z``. Started near ``pi*_x``, a few steps move it only part of the way towards
  ``pi*_z``, so the response term ``(df/dpi)(dpi*/dx)`` of the hypergradient is shrunk
  towards zero: the estimate lies between the partial gradient and the hypergradient.
- ``"follower"``: every probe is played against ``pihat`` itself. Cheap, but then ``E g`` is
  the smoothed gradient of ``f(., pihat)``: the partial gradient, blind to the response.

Common random numbers: both evaluations of a pair use generators in the same state, so their
soft-Q steps and episodes see the same uniform numbers and their noise largely cancels in the
difference. Every transition drawn (the oracle's, the probes' and the episodes') is counted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from agents.leaders.gradient import DescentLeader
from agents.leaders.oracle import OracleSettings, SoftQOracle
from stackelberg.problem import StackelbergProblem
from stackelberg.sampling import sample_episodes
from stackelberg.validation import check_fields

RESPONSES = ("soft-q", "follower")


@dataclass(frozen=True)
class ZerothOrderConfig(OracleSettings):
    """Hyperparameters of the zeroth-order leader: the soft-Q steps of its oracle
    (:class:`agents.leaders.oracle.OracleSettings`), and

    Attributes
    ----------
    alpha : float
        Step size on ``x``.
    step_decay : float
        ``c`` in the step size ``alpha (k+1)^-c`` at step ``k`` (0: constant).
    radius : float
        Smoothing radius ``mu`` of the probes ``x +- radius u``.
    directions : int
        Two-point estimates averaged per step.
    episodes : int
        Episodes per evaluation ``Phi_hat`` (two evaluations per direction).
    response : str
        ``"soft-q"`` or ``"follower"`` (module docstring).
    response_steps : int
        Soft-Q steps of each probe at its perturbed ``x`` (``response = "soft-q"``).
    base_steps : int
        Soft-Q steps of the oracle at ``x`` per step, after anchoring it to the follower
        learner's policy (``response = "soft-q"``); they keep its state values current.
    """

    alpha: float = 0.5
    step_decay: float = 0.0
    radius: float = 0.1
    directions: int = 2
    episodes: int = 100
    response: str = "soft-q"
    response_steps: int = 5
    base_steps: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fields(self, positive=("alpha", "radius"), positive_int=("directions", "episodes"),
                     non_negative=("step_decay",),
                     non_negative_int=("response_steps", "base_steps"))
        if self.response not in RESPONSES:
            raise ValueError(f"leader.response must be one of {RESPONSES}, "
                             f"got {self.response!r}")


def sphere_direction(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A direction uniform on the unit sphere of ``R^d``, ``d = prod(shape)``, in that shape."""
    u = rng.standard_normal(shape)
    return u / np.sqrt((u**2).sum())


def two_point_estimate(
    objective: Callable[[np.ndarray], float], x: np.ndarray, radius: float, u: np.ndarray
) -> np.ndarray:
    """``(d / (2 radius)) [objective(x + radius u) - objective(x - radius u)] u``.

    With ``u`` uniform on the unit sphere, its mean is the gradient of the ball-smoothed
    ``objective`` (module docstring).
    """
    difference = objective(x + radius * u) - objective(x - radius * u)
    return (x.size / (2.0 * radius)) * difference * u


class ZerothOrderLeader(DescentLeader):
    """Finite-difference hypergradient descent from sampled evaluations (module docstring)."""

    def __init__(self, config: ZerothOrderConfig | None = None):
        self.config = config or ZerothOrderConfig()

    def reset(self, problem: StackelbergProblem, rng: np.random.Generator) -> None:
        super().reset(problem, rng)
        c = self.config
        self.rng = rng
        self.oracle = SoftQOracle(c)
        self.oracle.reset(problem, rng)
        self.episode_samples = 0

    @property
    def samples(self) -> int:
        return self.episode_samples + self.oracle.samples

    def sampled_objective(self, z: np.ndarray, pihat: np.ndarray, seed: int) -> float:
        """``Phi_hat(z)``: the mean leader return against a sampled response to ``z``, all drawn
        from a generator seeded with ``seed``."""
        c, problem = self.config, self.problem
        rng = np.random.default_rng(seed)
        response = pihat if c.response == "follower" else self.oracle.probe(
            z, c.response_steps, rng)
        episodes = sample_episodes(problem.model, problem.leader_policy(z), response,
                                   c.episodes, rng)
        self.episode_samples += episodes.n_transitions
        return -float(episodes.returns(episodes.transitions.leader_rewards).mean())

    def direction(self, pihat: np.ndarray) -> np.ndarray:
        c = self.config
        if c.response == "soft-q":
            self.oracle.anchor(pihat)
            self.oracle.improve(self._x, c.base_steps)
        total = np.zeros_like(self._x)
        for _ in range(c.directions):
            u = sphere_direction(self._x.shape, self.rng)
            seed = int(self.rng.integers(2**63))  # one seed per pair: common random numbers
            objective = functools.partial(self.sampled_objective, pihat=pihat, seed=seed)
            total += two_point_estimate(objective, self._x, c.radius, u)
        return total / c.directions
