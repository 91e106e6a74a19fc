"""The pieces every bilevel problem is made of (docs/theory.md §1–2; DESIGN "one bilevel problem").

A bilevel problem here is three objects:

- a **parameterization**: how the leader's variable ``x`` reaches the followers. Its forward
  map gives the :class:`FollowerModel` the followers face at ``x``; its vector-Jacobian product
  turns weights on that model's arrays into a gradient in ``x``. A leader's commitment logits,
  linear incentives and a user's torch function are all parameterizations.
- a **lower level**: what the followers do given a :class:`FollowerModel` (one follower's soft
  best response, or n followers' entropy-regularized Nash equilibrium), with the penalty that
  measures how far given policies are from it and the penalty's gradients, expressed as weights
  on the model's arrays (so any parameterization's ``vjp`` carries them to ``x``).
- an **upper objective** ``f(x, pi)``: what the leader minimizes, with its gradients.

Joint follower actions are a flat index over ``A_1 x ... x A_n`` in row-major order
(``numpy.ravel_multi_index`` with ``action_sizes``), so one follower is the case ``n = 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class FollowerModel:
    """The finite model the followers face at one leader variable ``x``.

    ``P[s, a, s']`` is the kernel under the joint follower action ``a``; ``r[i, s, a]`` is follower
    ``i``'s reward for the joint action; ``rho`` the initial distribution; ``action_sizes`` the
    per-follower action counts, whose product is ``P.shape[1]``.
    """

    P: np.ndarray
    r: np.ndarray
    rho: np.ndarray
    gamma: float
    action_sizes: tuple[int, ...]

    @property
    def n_followers(self) -> int:
        return len(self.action_sizes)

    @property
    def n_states(self) -> int:
        return self.P.shape[0]


@runtime_checkable
class Parameterization(Protocol):
    """How ``x`` enters the lower level: a forward map and its vector-Jacobian product."""

    @property
    def x_shape(self) -> tuple[int, ...]:
        """The shape of the leader's variable."""

    def initial_x(self) -> np.ndarray:
        """A neutral starting point (uniform commitment, zero incentive)."""

    def followers(self, x: np.ndarray) -> FollowerModel:
        """The model the followers face at ``x``."""

    def vjp(self, x: np.ndarray, dP: np.ndarray | None, dr: np.ndarray | None) -> np.ndarray:
        """``sum dP * dP_x/dx + sum dr * dr_x/dx`` at ``x``, shaped like ``x``.

        ``dP`` has the shape of ``followers(x).P`` and ``dr`` that of ``followers(x).r``; either
        may be ``None`` (a zero weight), which lets a parameterization that leaves ``P`` fixed
        skip that half.
        """


# -- additions of the core (docs/theory.md §12): cotangents, a factored vjp, the three objects --


@dataclass(frozen=True)
class Gradient:
    """A gradient with respect to the leader's variable ``x`` and the follower logits ``theta``."""

    x: np.ndarray
    theta: np.ndarray

    def __add__(self, other: Gradient) -> Gradient:
        return Gradient(self.x + other.x, self.theta + other.theta)

    def __sub__(self, other: Gradient) -> Gradient:
        return Gradient(self.x - other.x, self.theta - other.theta)

    def __mul__(self, scale: float) -> Gradient:
        return Gradient(scale * self.x, scale * self.theta)

    __rmul__ = __mul__

    def norm(self) -> float:
        return float(np.sqrt((self.x**2).sum() + (self.theta**2).sum()))


@dataclass(frozen=True)
class BackupWeights:
    """Weights on one-step backups: the cotangent of the scalar

        sum_{s,a} weights[s,a] (sum_i rewards[i] r_i,x(s,a) + gamma sum_s' P_x(s'|s,a) values[s'])

    at a fixed ``values``. Every gradient of a value (docs/theory.md §3) has this form (``values``
    the value function, ``weights`` an occupancy), so a lower level hands its gradients to the
    parameterization as one of these; :meth:`dense` gives the plain ``(dP, dr)`` of
    :meth:`Parameterization.vjp`: ``dP = gamma weights (x) values``, ``dr[i] = rewards[i]
    weights``. ``rewards`` is a float per follower (0 leaves that follower's reward out).
    """

    weights: np.ndarray
    values: np.ndarray
    rewards: tuple[float, ...] = (1.0,)

    def dense(self, gamma: float) -> tuple[np.ndarray, np.ndarray]:
        """``(dP, dr)`` shaped like ``FollowerModel.P`` and ``FollowerModel.r``."""
        dP = gamma * self.weights[:, :, None] * self.values[None, None, :]
        dr = np.asarray(self.rewards, dtype=float)[:, None, None] * self.weights[None]
        return dP, dr


@runtime_checkable
class BackupParameterization(Parameterization, Protocol):
    """A parameterization that pulls :class:`BackupWeights` back to ``x`` without forming
    ``dP`` (an ``(S, A, S)`` array): the commitment logits contract the game's backups
    ``r + gamma P V`` directly. ``mirror=True`` asks for the mirror-descent direction where the
    parameterization has one (softmax logits: the gradient without the softmax factor)."""

    def backup_vjp(self, x: np.ndarray, cotangent: BackupWeights,
                   mirror: bool = False) -> np.ndarray:
        """The gradient in ``x`` of the cotangent's scalar."""


def pull_back(parameterization: Parameterization, x: np.ndarray, cotangent: BackupWeights,
              gamma: float, mirror: bool = False) -> np.ndarray:
    """The gradient in ``x`` of a :class:`BackupWeights` scalar through ``parameterization``:
    its factored ``backup_vjp`` when it has one, else its ``vjp`` on the dense weights."""
    if isinstance(parameterization, BackupParameterization):
        return parameterization.backup_vjp(x, cotangent, mirror)
    if mirror:
        raise ValueError(
            f"{type(parameterization).__name__} has no mirror geometry (it is defined for "
            "softmax logits): use the euclidean geometry"
        )
    dP, dr = cotangent.dense(gamma)
    return parameterization.vjp(x, dP, dr)


@runtime_checkable
class RewardMap(Protocol):
    """An ``x``-dependent reward on the followers' ``(state, joint action)`` pairs, with its
    vjp: what an upper objective that is a value (the leader's reward under its commitment, a
    planner's welfare net of payments) needs of ``x``."""

    def rewards(self, x: np.ndarray) -> np.ndarray:
        """``u_x[s, a]``."""

    def vjp(self, x: np.ndarray, weights: np.ndarray, mirror: bool = False) -> np.ndarray:
        """The gradient in ``x`` of ``sum_{s,a} weights[s,a] u_x(s,a)``."""


@runtime_checkable
class CoupledRewardMap(RewardMap, Protocol):
    """A reward map mixed by the parameterization itself (the leader's reward under its
    commitment is mixed like the follower's): it contracts the combined backups of both
    rewards and the kernel in one pass, where a plain reward map and a parameterization take
    one each."""

    def backup_gradient(self, x: np.ndarray, cotangent: BackupWeights, coefficient: float,
                        mirror: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """With ``B(s,a) = coefficient u_x(s,a) + sum_i c_i r_i,x(s,a) + gamma sum_s'
        P_x(s'|s,a) V(s')`` (``c``, ``V`` and the weights ``w`` from ``cotangent``): the
        gradient in ``x`` of ``sum_{s,a} w[s,a] B(s,a)``, and ``B`` itself."""

    def mixed_backup(self, x: np.ndarray, values: np.ndarray, coefficient: float,
                     follower: float) -> np.ndarray:
        """``B`` of :meth:`backup_gradient` alone (one follower, weight ``follower`` on its
        reward), computed by the same operations."""
