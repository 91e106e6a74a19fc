"""Linear incentives: a planner's variable added to the followers' rewards (docs/theory.md §7.1).

The planner holds raw parameters ``w`` (shape ``(K,)``, unconstrained); a **range map** turns
them into ``K`` instrument levels ``g(w)`` that always satisfy the planner's constraint:

- :class:`Box`: ``g = lo + (hi - lo) * sigmoid(w)``, every level within ``[lo_k, hi_k]``;
- :class:`Budget`: ``g = B * softmax([w, 0])[:-1]``, levels ``>= 0`` summing to at most ``B``
  (the last, fixed logit is a slack entry: the part of the budget left unspent).

Each follower ``i`` then faces ``r_i,x(s, a) = r_i(s, a) + (Phi_i g(w))(s, a)`` with a feature map
``Phi_i`` of shape ``(S, A, K)`` over the joint follower action ``a``; the kernel ``P`` does not
depend on ``w``. So ``grad_w r_i,x = Phi_i dg/dw`` and the closed forms of docs/theory.md §3
apply unchanged (PBRL's incentive-design family, Shen, Yang & Chen, ICML 2024).

The transfer ``(Phi_i g)(s, a)`` is what the planner pays follower ``i`` (negative: a tax it
collects). Payments are counted as the upper objective counts them (docs/theory.md §7):
``payments = sum_i E_{d_pi}[(Psi_i g)(s, a)] / (1 - gamma)``, a transfer, not a loss to society,
with a payment map ``Psi_i`` that is ``Phi_i`` unless the economy says otherwise (the commons
rebates its taxes lump-sum, so only its subsidies count: ``Psi`` keeps the subsidy columns).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stackelberg.bilevel import FollowerModel
from stackelberg.scipy_functions import scipy_functions as sf
from stackelberg.validation import finite_float


@dataclass(frozen=True)
class Box:
    """Instrument levels in a box: ``g = lo + (hi - lo) * sigmoid(w)``."""

    lo: np.ndarray
    hi: np.ndarray

    def __post_init__(self) -> None:
        lo = np.array(self.lo, dtype=float).reshape(-1)
        hi = np.array(self.hi, dtype=float).reshape(-1)
        if lo.shape != hi.shape:
            raise ValueError(f"lo and hi must have the same length, got {lo.size} and {hi.size}")
        for name, bound in (("lo", lo), ("hi", hi)):
            if not np.isfinite(bound).all():
                raise ValueError(f"{name} must be finite numbers, got {bound.tolist()!r}")
        bad = np.flatnonzero(lo > hi)
        if bad.size:
            k = int(bad[0])
            raise ValueError(f"lo[{k}] = {lo[k]!r} must be at most hi[{k}] = {hi[k]!r}")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    @property
    def size(self) -> int:
        return self.lo.size

    def levels(self, w: np.ndarray) -> np.ndarray:
        """``g(w)``, shape ``(K,)``."""
        return self.lo + (self.hi - self.lo) * sf.expit(w)

    def vjp(self, w: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``v . dg/dw``: ``(hi - lo) s (1 - s) v``, ``s = sigmoid(w)`` (a diagonal Jacobian)."""
        s = sf.expit(w)
        return (self.hi - self.lo) * s * (1.0 - s) * v

    def neutral(self) -> np.ndarray:
        """``w`` giving zero levels where 0 is inside ``(lo, hi)``, the middle elsewhere."""
        width = self.hi - self.lo
        inside = (self.lo < 0) & (self.hi > 0)
        share = np.where(inside, -self.lo / np.where(width > 0, width, 1.0), 0.5)
        return sf.logit(share)


@dataclass(frozen=True)
class Budget:
    """Non-negative instrument levels within a budget: ``g = B * softmax([w, 0])[:-1]``."""

    budget: float
    size: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "budget", finite_float("budget", self.budget, nonnegative=True))
        if not isinstance(self.size, (int, np.integer)) or self.size < 1:
            raise ValueError(
                f"the number of instruments must be an integer >= 1, got {self.size!r}")

    def _shares(self, w: np.ndarray) -> np.ndarray:
        return sf.softmax(np.append(w, 0.0))[:-1]

    def levels(self, w: np.ndarray) -> np.ndarray:
        """``g(w)``, shape ``(K,)``: ``>= 0``, summing to less than ``B``."""
        return self.budget * self._shares(w)

    def vjp(self, w: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``v . dg/dw``: ``B p_j (v_j - sum_k p_k v_k)`` (the slack carries no weight)."""
        p = self._shares(w)
        return self.budget * p * (v - p @ v)

    def neutral(self) -> np.ndarray:
        """``w = 0``: an even split of the budget between the instruments and the slack (zero
        levels would need ``w = -inf``, where the gradient vanishes)."""
        return np.zeros(self.size)


RangeMap = Box | Budget


class LinearIncentives:
    """``r_i,x = r_i + Phi_i g(w)``: a :class:`~stackelberg.bilevel.Parameterization`.

    Parameters
    ----------
    base : FollowerModel
        The followers' own game (their rewards without transfers).
    features : array (n, S, A, K)
        ``Phi_i`` for every follower ``i``, over the joint follower action ``A``.
    levels : Box or Budget
        The range map of the ``K`` instruments.
    payment_features : array (n, S, A, K), optional
        ``Psi_i``: what the planner's objective counts as paid (module docstring); default
        ``features``.
    """

    def __init__(self, base: FollowerModel, features: np.ndarray, levels: RangeMap,
                 payment_features: np.ndarray | None = None):
        expected = (*base.r.shape, levels.size)
        self.base = base
        self.features = self._checked("features", features, expected)
        self.payment_features = (self.features if payment_features is None else
                                 self._checked("payment_features", payment_features, expected))
        self.range_map = levels

    @staticmethod
    def _checked(name: str, array: np.ndarray, expected: tuple[int, ...]) -> np.ndarray:
        array = np.array(array, dtype=float)
        if array.shape != expected:
            raise ValueError(
                f"{name} must have shape (followers, states, joint actions, instruments) = "
                f"{expected}, got {array.shape}")
        if not np.isfinite(array).all():
            index = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
            raise ValueError(f"{name}{list(index)} must be finite, got {array[index]!r}")
        array.flags.writeable = False
        return array

    @property
    def x_shape(self) -> tuple[int, ...]:
        return (self.range_map.size,)

    def initial_x(self) -> np.ndarray:
        return self.range_map.neutral()

    def levels(self, x: np.ndarray) -> np.ndarray:
        """The instrument levels ``g(x)``."""
        return self.range_map.levels(np.asarray(x, dtype=float).reshape(self.x_shape))

    def transfers(self, x: np.ndarray) -> np.ndarray:
        """``(Phi_i g(x))(s, a)`` for every follower: shape ``(n, S, A)``."""
        return self.features @ self.levels(x)

    def followers(self, x: np.ndarray) -> FollowerModel:
        b = self.base
        return FollowerModel(P=b.P, r=b.r + self.transfers(x), rho=b.rho, gamma=b.gamma,
                             action_sizes=b.action_sizes)

    def vjp(self, x: np.ndarray, dP: np.ndarray | None, dr: np.ndarray | None) -> np.ndarray:
        """``sum dr * dr_x/dx`` (``P`` does not depend on ``x``, so ``dP`` is ignored)."""
        if dr is None:
            return np.zeros(self.x_shape)
        v = np.einsum("isak,isa->k", self.features, np.broadcast_to(dr, self.base.r.shape))
        return self.range_map.vjp(np.asarray(x, dtype=float).reshape(self.x_shape), v)

    def paid(self, x: np.ndarray) -> np.ndarray:
        """``(Psi_i g(x))(s, a)``: what the planner's objective counts as paid, ``(n, S, A)``."""
        return self.payment_features @ self.levels(x)

    def payments(self, x: np.ndarray, occupancy: np.ndarray) -> float:
        """``sum_i sum_{s,a} occupancy(s, a) (Psi_i g(x))(s, a)``.

        With ``occupancy = d_pi(s) pi(a|s) / (1 - gamma)`` (the joint policy's discounted
        occupancy from ``rho``) this is the expected discounted total the planner pays.
        """
        return float(np.einsum("sa,isa->", occupancy, self.paid(x)))

    def payments_gradient(self, x: np.ndarray, occupancy: np.ndarray) -> np.ndarray:
        """``grad_x`` of :meth:`payments` at a fixed occupancy."""
        v = np.einsum("isak,sa->k", self.payment_features, occupancy)
        return self.range_map.vjp(np.asarray(x, dtype=float).reshape(self.x_shape), v)


# -- built-in feature maps (a config names them; docs/theory.md §7.1) --------------------------


def own_actions(base: FollowerModel) -> np.ndarray:
    """``own[i, a]``: follower ``i``'s own action in the flat joint action ``a``, shape
    ``(n, A)``."""
    A = int(np.prod(base.action_sizes))
    return np.array(np.unravel_index(np.arange(A), base.action_sizes)).reshape(
        base.n_followers, A)


def action_features(base: FollowerModel) -> np.ndarray:
    """Per-action indicators: instrument ``k`` pays every follower that plays its own action
    ``k``, in every state (a tax or subsidy on each action level, the same for all followers).
    Shape ``(n, S, A, K)`` with ``K`` the followers' common number of actions."""
    sizes = set(base.action_sizes)
    if len(sizes) != 1:
        raise ValueError("per-action features need followers with the same number of actions, "
                         f"got {base.action_sizes}")
    K = sizes.pop()
    own = own_actions(base)
    features = np.zeros((base.n_followers, base.n_states, own.shape[1], K))
    for i in range(base.n_followers):
        features[i, :, np.arange(own.shape[1]), own[i]] = 1.0
    return features


def state_action_features(base: FollowerModel) -> np.ndarray:
    """Per-state-action indicators: instrument ``(s, k)`` pays every follower that plays its
    own action ``k`` in state ``s``. Shape ``(n, S, A, S K)``, ``K`` as in
    :func:`action_features`."""
    per_action = action_features(base)
    n, S, A, K = per_action.shape
    features = np.zeros((n, S, A, S, K))
    features[:, np.arange(S), :, np.arange(S), :] = per_action.transpose(1, 0, 2, 3)
    return features.reshape(n, S, A, S * K)


#: The feature maps a config names (``[incentives] features = "per-action"``).
FEATURE_MAPS = {"per-action": action_features, "per-state-action": state_action_features}
