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
