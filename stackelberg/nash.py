"""A lower level that is a game: n followers, their Nash equilibrium and the Nikaido–Isoda penalty.

docs/theory.md §7.2-7.3. Followers ``i = 1..n`` play in a
:class:`~stackelberg.bilevel.FollowerModel` (``P[s, a, s']`` and ``r[i, s, a]`` over the flat
joint action ``a``). A profile is a sequence of
policies ``pi_i[s, a_i]``, played independently, so the joint policy is their product.

- Follower ``i``'s MDP given ``pi_-i`` folds the others in, as the leader's commitment is folded
  into a single follower's MDP (docs/theory.md §1): ``P_i(s'|s, a_i) = sum_{a_-i} pi_-i(a_-i|s)
  P(s'|s, a)`` and likewise ``r_i``. Its soft value ``V_i(pi)`` carries the entropy of ``pi_i``
  only (weight ``tau``).
- The entropy-regularized Markov Nash equilibrium is found by damped simultaneous best responses
  ``pi_i <- (1 - eta) pi_i + eta BR_i(pi_-i)`` (no guarantee in general: the Nash gap is reported).
- The Nikaido–Isoda penalty ``psi(pi) = sum_i [V_i*(pi_-i) - V_i(pi)] >= 0`` (Shen, Yang & Chen,
  ICML 2024, for two zero-sum followers; the n-follower general-sum form is this project's) is
  zero exactly at an equilibrium. Its gradients follow Danskin's theorem (the best responses
  held fixed) and are returned as weights on the model's arrays, which any parameterization's
  ``vjp`` carries to the leader's variable, plus gradients in each follower's softmax logits.

Pure functions on arrays; the only loops are over followers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stackelberg.bilevel import FollowerModel
from stackelberg.tabular import (
    ConvergenceError,
    MDPSolution,
    evaluate_policy,
    safe_log,
    solve_mdp,
)

#: Einsum letters for the followers' action axes (``s`` is the state).
_AXES = "abcdefghijklmnopqr"

Profile = Sequence[np.ndarray]


def _fold(array: np.ndarray, profile: Profile, sizes: Sequence[int], keep: int | None
          ) -> np.ndarray:
    """Average ``array[s, a, ...]`` over every follower's action but ``keep``'s.

    ``array`` has the flat joint action as its second axis; the result has shape
    ``(S, A_keep, ...)`` (``(S, ...)`` for ``keep=None``).
    """
    n = len(sizes)
    if n > len(_AXES):
        raise ValueError(f"at most {len(_AXES)} followers are supported, got {n}")
    S = array.shape[0]
    letters = _AXES[:n]
    operands, subscripts = [array.reshape(S, *sizes, *array.shape[2:])], ["s" + letters + "..."]
    for j in range(n):
        if j != keep:
            operands.append(profile[j])
            subscripts.append("s" + letters[j])
    out = "s" + ("" if keep is None else letters[keep]) + "..."
    return np.einsum(",".join(subscripts) + "->" + out, *operands, optimize=True)


def joint_policy(profile: Profile) -> np.ndarray:
    """The product policy ``pi(a|s) = prod_i pi_i(a_i|s)`` over the flat joint action."""
    joint = profile[0]
    for pi in profile[1:]:
        joint = (joint[:, :, None] * pi[:, None, :]).reshape(joint.shape[0], -1)
    return joint


def folded_mdp(model: FollowerModel, profile: Profile, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Follower ``i``'s MDP ``(P_i[s, a_i, s'], r_i[s, a_i])`` with the others folded in."""
    sizes = model.action_sizes
    return _fold(model.P, profile, sizes, i), _fold(model.r[i], profile, sizes, i)


@dataclass(frozen=True)
class ProfileValue:
    """One player's discounted value of a profile, with what its gradients need.

    Attributes
    ----------
    value : float
        ``rho . V``.
    V : array (S,)
        State values (soft for the follower whose entropy counts, see :func:`evaluate_profile`).
    Q : array (S, A)
        Action values over the joint action: ``reward + gamma P V``.
    visitation : array (S,)
        ``d_pi = (1 - gamma) rho^T (I - gamma P_pi)^{-1}``.
    occupancy : array (S, A)
        ``d_pi(s) pi(a|s) / (1 - gamma)``: the weight of ``reward[s, a]`` in ``value``.
    """

    value: float
    V: np.ndarray
    Q: np.ndarray
    visitation: np.ndarray
    occupancy: np.ndarray


def evaluate_profile(model: FollowerModel, reward: np.ndarray, profile: Profile, tau: float,
                     own: int = 0) -> ProfileValue:
    """Exact value of ``reward[s, a]`` (joint action) under ``profile``, with the entropy of
    follower ``own``'s policy at weight ``tau`` (``tau = 0``: a plain discounted value, e.g. the
    planner's)."""
    sizes = model.action_sizes
    P_own, r_own = _fold(model.P, profile, sizes, own), _fold(reward, profile, sizes, own)
    ev = evaluate_policy(P_own, r_own, profile[own], model.gamma, tau)
    S = model.n_states
    Q = reward + model.gamma * (model.P.reshape(-1, S) @ ev.V).reshape(reward.shape)
    d = ev.visitation(model.rho, model.gamma)
    occupancy = d[:, None] * joint_policy(profile) / (1.0 - model.gamma)
    return ProfileValue(value=float(model.rho @ ev.V), V=ev.V, Q=Q, visitation=d,
                        occupancy=occupancy)


def logit_gradient(model: FollowerModel, ev: ProfileValue, profile: Profile, j: int,
                   tau: float = 0.0) -> np.ndarray:
    """Gradient of ``ev.value`` in follower ``j``'s softmax logits ``theta_j``.

    docs/theory.md §3 with the others folded in: ``d(s)/(1-gamma) pi_j(a|s) [g(s,a) - E_pi_j g]``
    where ``g`` is ``ev.Q`` averaged over the other followers' actions, minus ``tau log pi_j``
    when ``j``'s own entropy is in the value (pass the same ``tau`` as to
    :func:`evaluate_profile` when ``j`` is its ``own``, else 0).
    """
    pi = profile[j]
    g = _fold(ev.Q, profile, model.action_sizes, j)
    if tau > 0:
        g = g - tau * safe_log(pi)
    centred = g - (pi * g).sum(axis=1, keepdims=True)
    return ev.visitation[:, None] / (1.0 - model.gamma) * pi * centred


def best_response(model: FollowerModel, profile: Profile, i: int, tau: float,
                  pi0: np.ndarray | None = None) -> MDPSolution:
    """Follower ``i``'s soft best response to ``profile``'s others, by policy iteration."""
    P_i, r_i = folded_mdp(model, profile, i)
    return solve_mdp(P_i, r_i, model.gamma, tau, pi0=pi0)


@dataclass(frozen=True)
class NashGap:
    """How far a profile is from equilibrium.

    Attributes
    ----------
    penalty : float
        The Nikaido–Isoda penalty ``psi = sum_i rho . (V_i* - V_i)``.
    gap : float
        The Nash gap ``max_i max_s (V_i*(s) - V_i(s))`` (state by state, so it is zero only if
        every follower best-responds everywhere, not only from ``rho``).
    best_responses : tuple of arrays
        ``BR_i(pi_-i)`` for every follower.
    """

    penalty: float
    gap: float
    best_responses: tuple[np.ndarray, ...]


def nash_gap(model: FollowerModel, profile: Profile, tau: float,
             warm: Profile | None = None) -> NashGap:
    """The Nikaido–Isoda penalty and Nash gap of ``profile`` (best responses warm-started from
    ``warm``, e.g. the last ones)."""
    penalty, gap, responses = 0.0, 0.0, []
    for i in range(model.n_followers):
        star = best_response(model, profile, i, tau, None if warm is None else warm[i])
        own = evaluate_profile(model, model.r[i], profile, tau, own=i)
        penalty += float(model.rho @ star.V) - own.value
        gap = max(gap, float((star.V - own.V).max()))
        responses.append(star.pi)
    return NashGap(penalty=penalty, gap=gap, best_responses=tuple(responses))


@dataclass(frozen=True)
class NashEquilibrium:
    """Result of damped best-response iteration.

    Attributes
    ----------
    profile : tuple of arrays
        The last profile.
    gap : NashGap
        Its Nash gap and Nikaido–Isoda penalty.
    iterations : int
        Best-response rounds taken.
    converged : bool
        Whether ``gap.gap`` reached the tolerance.
    """

    profile: tuple[np.ndarray, ...]
    gap: NashGap
    iterations: int
    converged: bool


def nash_equilibrium(model: FollowerModel, tau: float, profile: Profile | None = None,
                     damping: float = 0.5, tol: float = 1e-10, max_iter: int = 2000
                     ) -> NashEquilibrium:
    """The entropy-regularized Markov Nash equilibrium by damped simultaneous best responses.

    Each round every follower computes its soft best response to the others' current policies,
    then all move together: ``pi_i <- (1 - damping) pi_i + damping BR_i(pi_-i)`` (docs/theory.md
    §7). Stops once the Nash gap (:class:`NashGap`) is at most ``tol``, or after ``max_iter``
    rounds (``converged`` is then False: convergence is not guaranteed in general).

    Parameters
    ----------
    model : FollowerModel
    tau : float > 0
        The followers' entropy weight.
    profile : sequence of arrays, optional
        Starting policies; uniform by default.
    damping : float in (0, 1]
        ``eta``; 1 is undamped (simultaneous) best response.
    """
    if not 0 < damping <= 1:
        raise ValueError(f"damping must be in (0, 1], got {damping!r}")
    if profile is None:
        profile = [np.full((model.n_states, k), 1.0 / k) for k in model.action_sizes]
    profile = [np.array(pi, dtype=float) for pi in profile]
    warm = None
    for iteration in range(1, max_iter + 1):
        gap = nash_gap(model, profile, tau, warm)
        if gap.gap <= tol:
            return NashEquilibrium(tuple(profile), gap, iteration, True)
        warm = gap.best_responses
        profile = [(1 - damping) * pi + damping * br for pi, br in zip(profile, warm, strict=True)]
    gap = nash_gap(model, profile, tau, warm)
    return NashEquilibrium(tuple(profile), gap, max_iter, gap.gap <= tol)


@dataclass(frozen=True)
class PenaltyGradient:
    """The Nikaido–Isoda penalty with its Danskin gradients.

    Attributes
    ----------
    value : float
        ``psi(pi)``.
    dP : array (S, A, S)
        ``d psi / d P[s, a, s']`` (the model's kernel, joint action).
    dr : array (n, S, A)
        ``d psi / d r[i, s, a]``.
    theta : tuple of arrays (S, A_j)
        ``d psi / d theta_j`` in each follower's softmax logits.
    best_responses : tuple of arrays
        The ``BR_i(pi_-i)`` the gradients were taken at.

    ``parameterization.vjp(x, dP, dr)`` turns ``dP, dr`` into ``grad_x psi``.
    """

    value: float
    dP: np.ndarray
    dr: np.ndarray
    theta: tuple[np.ndarray, ...]
    best_responses: tuple[np.ndarray, ...]


def _value_weights(model: FollowerModel, ev: ProfileValue) -> np.ndarray:
    """``d value / d P[s, a, s'] = occupancy(s, a) gamma V(s')``."""
    return model.gamma * ev.occupancy[:, :, None] * ev.V[None, None, :]


def ni_penalty_gradient(model: FollowerModel, profile: Profile, tau: float,
                        best_responses: Profile | None = None) -> PenaltyGradient:
    """``psi(pi)`` and its gradients by Danskin's theorem (docs/theory.md §7).

    With ``sigma^i = (BR_i, pi_-i)``:
    ``d psi = sum_i [d V_i(sigma^i) - d V_i(pi)]`` with ``BR_i`` held fixed. For each value,
    ``d V / d r_i = occupancy`` and ``d V / d P = occupancy (x) gamma V``; in the logits,
    ``grad_{theta_j} psi = sum_{i != j} grad_{theta_j} V_i(sigma^i)
    - sum_i grad_{theta_j} V_i(pi)`` (docs/theory.md §7.3).

    Parameters
    ----------
    best_responses : sequence of arrays, optional
        ``BR_i(pi_-i)``; computed exactly (soft policy iteration) if omitted.
    """
    n = model.n_followers
    if best_responses is None:
        best_responses = [best_response(model, profile, i, tau).pi for i in range(n)]
    dP = np.zeros_like(model.P)
    dr = np.zeros_like(model.r)
    theta = [np.zeros_like(pi) for pi in profile]
    value = 0.0
    for i in range(n):
        sigma = [best_responses[i] if k == i else profile[k] for k in range(n)]
        best = evaluate_profile(model, model.r[i], sigma, tau, own=i)
        own = evaluate_profile(model, model.r[i], profile, tau, own=i)
        value += best.value - own.value
        dr[i] += best.occupancy - own.occupancy
        dP += _value_weights(model, best) - _value_weights(model, own)
        for j in range(n):
            theta[j] -= logit_gradient(model, own, profile, j, tau if j == i else 0.0)
            if j != i:
                theta[j] += logit_gradient(model, best, sigma, j)
    return PenaltyGradient(value=value, dP=dP, dr=dr, theta=tuple(theta),
                           best_responses=tuple(np.asarray(b) for b in best_responses))


__all__ = ["ConvergenceError", "NashEquilibrium", "NashGap", "PenaltyGradient", "ProfileValue",
           "best_response", "evaluate_profile", "folded_mdp", "joint_policy", "logit_gradient",
           "nash_equilibrium", "nash_gap", "ni_penalty_gradient"]
