"""The planner as a penalty method (PBRL's value penalty, docs/theory.md §2 and §11) [ours].

Instead of differentiating through the equilibrium, optimize the tolls ``t`` and the drivers'
path flows ``h`` together on

    F_lam(t, h) = T(h) + lam * (Phi_t(h) - min_h' Phi_t(h')),

where ``Phi_t`` is the logit potential (Beckmann plus ``tau`` times the entropy) and the
bracket, the potential gap, is non-negative and zero exactly at the logit equilibrium: the
value penalty of the drivers' lower level. Its gradients are closed forms: in ``h``,
``Delta m + lam (c + tau (log(h/d) + 1))``; in ``t``, by Danskin, ``lam (f(h) - f(h*_t))``
(``dPhi_t / dt = f``), so each evaluation needs one equilibrium (warm-started) but no
hypergradient. The flows are ``h = d_k softmax(z)`` per pair, so the variables are ``(t, z)``,
``t`` boxed; L-BFGS-B for each ``lam`` of an increasing schedule, each warm-started.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.optimize

from stackelberg.congestion.equilibrium import Equilibrium, solve_equilibrium
from stackelberg.congestion.network import Network, NetworkError

__all__ = ["PenaltyResult", "penalty_tolls"]


@dataclass(frozen=True, eq=False)
class PenaltyResult:
    """``tolls`` and the drivers' ``path_flows`` at the last ``lam``; ``penalty`` their
    potential gap; ``equilibrium`` the exact logit equilibrium at ``tolls`` and its
    ``total_travel_time`` (what the tolls achieve when drivers do equilibrate)."""

    tolls: np.ndarray
    path_flows: np.ndarray
    penalty: float
    equilibrium: Equilibrium
    total_travel_time: float
    lams: tuple[float, ...]
    evaluations: int
    cpu_seconds: float


def penalty_tolls(net: Network, tau: float, *, lams: Sequence[float] = (1.0, 10.0, 100.0,
                                                                         1000.0),
                  max_iterations: int = 500, equilibrium_tol: float = 1e-12) -> PenaltyResult:
    """Minimize ``F_lam`` over tolls and path flows for each ``lam`` in turn (module docstring).

    The objective is scaled by ``1 / sum d`` (travel time per trip), as in
    :func:`~stackelberg.congestion.planner.optimize_tolls`.
    """
    if not (np.isfinite(tau) and tau > 0):
        raise NetworkError(f"the penalty planner needs a temperature tau > 0, got {tau!r}")
    clock = time.process_time()
    scale = 1.0 / float(net.demand.sum())
    eq = solve_equilibrium(net, None, tau, tol=equilibrium_tol)
    paths = dataclasses.replace(eq.paths, generated=False)  # the flows' dimension is fixed
    delta, starts, pair = paths.incidence, paths.starts, paths.pair
    demand_p = net.demand[pair]
    n_e = net.n_edges
    state = {"eq": eq, "evaluations": 0}

    def flows(z: np.ndarray) -> np.ndarray:
        z = z - np.maximum.reduceat(z, starts)[pair]
        e = np.exp(z)
        return demand_p * e / np.add.reduceat(e, starts)[pair]

    def potential(t: np.ndarray, h: np.ndarray) -> float:
        f = delta.T @ h
        return float(net.latency_integral(f).sum() + t @ f
                     + tau * h @ np.log(np.maximum(h, 1e-300) / demand_p))

    def evaluate(x: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
        t, z = x[:n_e], x[n_e:]
        h = flows(z)
        f = delta.T @ h
        star = solve_equilibrium(net, t, tau, tol=equilibrium_tol, paths=paths,
                                 start=state["eq"])
        state["eq"], state["evaluations"] = star, state["evaluations"] + 1
        gap = potential(t, h) - star.potential
        slope = net.latency_derivative(f)
        marginal = net.latency(f) + f * slope
        g_h = delta @ marginal + lam * (delta @ (net.latency(f) + t)
                                        + tau * (np.log(np.maximum(h, 1e-300) / demand_p) + 1))
        g_z = h * (g_h - np.add.reduceat(h * g_h, starts)[pair] / demand_p)
        g_t = lam * (f - star.edge_flows)
        value = net.total_travel_time(f) + lam * gap
        return value * scale, np.concatenate([g_t, g_z]) * scale

    bounds = [(lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None)
              for lo, hi in zip(net.toll_lower, net.toll_upper, strict=True)]
    bounds += [(None, None)] * paths.n_paths
    x = np.concatenate([net.clip_tolls(np.zeros(n_e)),
                        np.log(np.maximum(eq.path_flows, 1e-300) / demand_p)])
    for lam in lams:
        result = scipy.optimize.minimize(evaluate, x, args=(float(lam),), jac=True,
                                         method="L-BFGS-B", bounds=bounds,
                                         options={"maxiter": max_iterations, "gtol": 1e-10})
        x = result.x
    tolls, h = net.clip_tolls(x[:n_e]), flows(x[n_e:])
    final = solve_equilibrium(net, tolls, tau, tol=equilibrium_tol, paths=paths,
                              start=state["eq"])
    return PenaltyResult(tolls=tolls, path_flows=h, penalty=potential(tolls, h) -
                         final.potential, equilibrium=final,
                         total_travel_time=final.total_travel_time,
                         lams=tuple(float(v) for v in lams),
                         evaluations=state["evaluations"],
                         cpu_seconds=time.process_time() - clock)
