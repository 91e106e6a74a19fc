"""The planner: edge tolls within bounds that minimize total travel time at the drivers'
equilibrium (docs/theory.md §11). Tolls are transfers, so the objective is
``T(t) = sum_e f_e l_e(f_e)`` at the logit equilibrium ``f(t)``, not the drivers' tolled cost.

- :func:`hypergradient`: the exact ``dT/dt`` by implicit differentiation of the logit
  equilibrium's optimality conditions (one ``E x E`` and one ``K x K`` linear solve, by the
  Woodbury identity; docs/theory.md §11 derives it);
- :func:`optimize_tolls`: projected quasi-Newton descent (L-BFGS-B within the toll bounds), one
  warm-started equilibrium and one hypergradient per evaluation;
- :func:`marginal_cost_tolls`: the closed form ``t_e = f_e l_e'(f_e)`` at the system optimum,
  which makes the optimum a Wardrop equilibrium.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import scipy.optimize

from stackelberg.congestion.equilibrium import Equilibrium, PathMode, solve_equilibrium
from stackelberg.congestion.kkt import ReducedSolver
from stackelberg.congestion.network import Network, NetworkError
from stackelberg.congestion.paths import PathSet

__all__ = ["MarginalCostTolls", "TollResult", "best_tolls", "hypergradient", "marginal_cost_tolls",
           "optimize_tolls"]


def hypergradient(eq: Equilibrium) -> np.ndarray:
    """``dT/dt`` at a logit equilibrium (``tau > 0``), ``T = sum_e f_e l_e(f_e)``.

    The equilibrium satisfies ``c_p(h) + (Delta t)_p + tau log(h_p / d_k) = lambda_k`` and
    ``B^T h = d``. Differentiating, with ``H = Delta diag(l') Delta^T + tau diag(1/h)``, the
    adjoint ``u`` solves ``H u + B w = Delta m``, ``B^T u = 0`` (``m = l + f l'``, the marginal
    cost), and ``dT/dt = -Delta^T u`` (:class:`~stackelberg.congestion.kkt.ReducedSolver`).
    """
    if eq.tau <= 0:
        raise NetworkError("the hypergradient needs tau > 0 (the Wardrop equilibrium's path "
                           "flows are not differentiable in the tolls); use a small tau")
    net, f = eq.network, eq.edge_flows
    marginal = eq.edge_latency + f * net.latency_derivative(f)
    delta = eq.paths.incidence
    u = ReducedSolver(net, eq.paths, eq.path_flows, f, eq.tau).solve(delta @ marginal)
    return -(delta.T @ u)


@dataclass(frozen=True, eq=False)
class TollResult:
    """An optimized toll vector and what it achieves.

    ``total_travel_time`` at ``tolls``; ``untolled_travel_time`` at zero tolls (same tau);
    ``history`` the objective after each L-BFGS-B iteration (of the last stage when annealed);
    ``evaluations`` equilibrium solves (all stages); ``cpu_seconds`` process time.
    """

    tolls: np.ndarray
    equilibrium: Equilibrium
    total_travel_time: float
    untolled_travel_time: float
    iterations: int
    evaluations: int
    history: tuple[float, ...]
    converged: bool
    message: str
    cpu_seconds: float


def best_tolls(net: Network, tau: float, *, anneal_from: float | None = None,
               **options: object) -> TollResult:
    """[ours] The better of two planner runs: from no tolls (annealed from ``anneal_from``) and
    from the marginal-cost tolls clipped to the bounds (the optimum at ``tau = 0``). The
    problem is not convex: from no tolls alone the planner can stop at a stationary point
    slightly worse than the optimum (docs/theory.md §11)."""
    clock = time.process_time()
    runs = [optimize_tolls(net, tau, anneal_from=anneal_from, **options),
            optimize_tolls(net, tau, initial=marginal_cost_tolls(net).tolls, **options)]
    best = min(runs, key=lambda r: r.total_travel_time)
    return dataclasses.replace(best, evaluations=sum(r.evaluations for r in runs),
                               cpu_seconds=time.process_time() - clock)


def optimize_tolls(
    net: Network,
    tau: float,
    *,
    initial: np.ndarray | None = None,
    max_iterations: int = 200,
    gtol: float = 1e-9,
    equilibrium_tol: float = 1e-10,
    paths: PathMode | PathSet = "auto",
    anneal_from: float | None = None,
) -> TollResult:
    """Tolls within ``net``'s bounds minimizing total travel time at the logit equilibrium.

    The objective handed to L-BFGS-B is the mean travel time per trip (``T / sum d``), so its
    scale does not depend on the network's demand units. Each evaluation warm-starts the
    equilibrium from the previous one (and keeps its generated paths).

    Parameters
    ----------
    net : Network
    tau : float
        The drivers' logit temperature, > 0 (the hypergradient needs it).
    initial : array, optional
        Starting tolls (default the lower bounds clipped at 0: no tolls where allowed).
    max_iterations : int, default 200
        L-BFGS-B iterations at most.
    gtol : float, default 1e-9
        L-BFGS-B's projected-gradient tolerance.
    equilibrium_tol : float, default 1e-10
        Relative gap each equilibrium is solved to (the hypergradient's accuracy follows it).
    paths : {"auto", "all", "generated"} or PathSet
        The drivers' path set (:func:`solve_equilibrium`); a generated set is generated once,
        for the untolled equilibrium, and then kept.
    anneal_from : float, optional
        [ours] Optimize first at this larger temperature and then at temperatures falling by
        a factor ``sqrt(10)`` down to ``tau``, each stage starting from the last one's tolls.
        At small ``tau`` the objective has plateaus (a toll that prices a road out leaves it
        no flow, hence no gradient) where descent from zero tolls can stop; a smoother problem
        first avoids them (on 12 random networks, all within 1e-3 of the optimum with it, 4 of
        12 without).
    """
    if not (np.isfinite(tau) and tau > 0):
        raise NetworkError(f"the planner needs a temperature tau > 0, got {tau!r}")
    if anneal_from is not None and anneal_from > tau:
        stages, t = [], float(anneal_from)
        while t > tau * 1.5:
            stages.append(t)
            t /= np.sqrt(10.0)
        start_clock, evaluations = time.process_time(), 0
        for stage in stages:
            warm = optimize_tolls(net, stage, initial=initial, max_iterations=max_iterations,
                                  gtol=gtol, equilibrium_tol=equilibrium_tol, paths=paths)
            initial, evaluations = warm.tolls, evaluations + warm.evaluations
        final = optimize_tolls(net, tau, initial=initial, max_iterations=max_iterations,
                               gtol=gtol, equilibrium_tol=equilibrium_tol, paths=paths)
        return dataclasses.replace(final, evaluations=final.evaluations + evaluations,
                                   cpu_seconds=time.process_time() - start_clock)
    start_clock = time.process_time()
    scale = 1.0 / float(net.demand.sum())
    base = solve_equilibrium(net, None, tau, tol=equilibrium_tol, paths=paths)
    # the drivers' path set is fixed from here on (the untolled equilibrium's, generated or
    # enumerated): the objective is then one smooth function of the tolls
    paths = dataclasses.replace(base.paths, generated=False)
    x0 = net.clip_tolls(np.zeros(net.n_edges) if initial is None else initial)
    state = {"eq": base}
    history: list[float] = []

    def evaluate(t: np.ndarray) -> tuple[float, np.ndarray]:
        eq = solve_equilibrium(net, t, tau, tol=equilibrium_tol, paths=paths, start=state["eq"])
        state["eq"] = eq
        return eq.total_travel_time * scale, hypergradient(eq) * scale

    def record(intermediate_result: scipy.optimize.OptimizeResult) -> None:
        history.append(float(intermediate_result.fun))

    bounds = list(zip(net.toll_lower, net.toll_upper, strict=True))
    bounds = [(lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None)
              for lo, hi in bounds]
    result = scipy.optimize.minimize(
        evaluate, x0, jac=True, method="L-BFGS-B", bounds=bounds,
        callback=record,
        options={"maxiter": max_iterations, "gtol": gtol, "ftol": 1e-15},
    )
    tolls = net.clip_tolls(result.x)
    final = solve_equilibrium(net, tolls, tau, tol=equilibrium_tol, paths=paths,
                              start=state["eq"])
    return TollResult(tolls=tolls, equilibrium=final, total_travel_time=final.total_travel_time,
                      untolled_travel_time=base.total_travel_time, iterations=int(result.nit),
                      evaluations=int(result.nfev),
                      history=tuple(v / scale for v in history), converged=bool(result.success),
                      message=str(result.message),
                      cpu_seconds=time.process_time() - start_clock)


@dataclass(frozen=True, eq=False)
class MarginalCostTolls:
    """The system optimum and the marginal-cost tolls that make it a Wardrop equilibrium."""

    tolls: np.ndarray
    system_optimum: Equilibrium
    total_travel_time: float


def marginal_cost_tolls(net: Network, *, tol: float = 1e-8,
                        paths: PathMode = "auto") -> MarginalCostTolls:
    """``t_e = f_e l_e'(f_e)`` at the system optimum ``f``: the optimum is the Wardrop
    equilibrium of the network with marginal-cost latencies ``l + f l'`` (docs/theory.md §11).
    The tolls are returned as computed (they may exceed the network's toll bounds)."""
    so_net = net.system_optimum_network()
    so = solve_equilibrium(so_net, None, 0.0, tol=tol, paths=paths)
    f = so.edge_flows
    return MarginalCostTolls(tolls=net.marginal_cost_tolls(f), system_optimum=so,
                             total_travel_time=net.total_travel_time(f))
