"""The drivers' logit equilibrium at temperature ``tau`` (Wardrop at ``tau = 0``): the minimizer
of the Beckmann potential plus ``tau`` times the path-flow entropy (docs/theory.md §11).

    Phi(h) = sum_e int_0^{f_e} (l_e(u) + t_e) du + tau sum_p h_p log(h_p / d_k),   f = Delta^T h

over path flows ``h >= 0`` summing to ``d_k`` in each pair ``k``. The solver is path-based
gradient projection (Bertsekas and Gafni 1982; Jayakrishnan et al. 1994), all pairs at once:

- each pair moves flow from its other paths to its *basic* path (least ``dPhi/dh_p``) by a
  diagonal Newton step ``(g_p - g_s) / (D_p + D_s)``, ``D_p = sum_{e in p} l_e' + tau / h_p``;
  at ``tau > 0`` the step is taken in ``log h_p`` (``h_p exp(delta_p / h_p)``), so flows stay
  positive and a path whose cost is dominated by the entropy jumps to its logit share;
- the pairs move together (one sparse product per step, no loop over paths), so a backtracking
  search on ``Phi`` keeps every step a descent step;
- column generation (``paths="generated"``) adds a pair's shortest path, found by Dijkstra on
  arrays for every origin at once, whenever it beats the pair's paths.

The relative gap is ``(sum_p h_p c_p - sum_k d_k m_k) / sum_p h_p c_p`` with ``c_p`` the tolled
path cost and ``m_k`` the shortest tolled distance of pair ``k`` in the whole graph (``tau = 0``),
or, at ``tau > 0``, the entropy-regularized analogue ``sum_p h_p (c_p + tau log(h_p/d_k)) + tau
sum_k d_k log sum_p exp(-c_p / tau)`` over the path set, divided by the same total: both are
non-negative and zero exactly at the equilibrium.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from stackelberg.congestion.kkt import ReducedSolver
from stackelberg.congestion.network import Network, NetworkError
from stackelberg.congestion.paths import (
    AUTO_ENUMERATION_LIMIT,
    PathSet,
    ShortestPaths,
    all_simple_paths,
    shortest_paths,
)

__all__ = ["Equilibrium", "solve_equilibrium"]

PathMode = Literal["auto", "all", "generated"]

#: Path flows never go below this fraction of their pair's demand at ``tau > 0`` (the log).
_FLOOR = 1e-280


@dataclass(frozen=True, eq=False)
class Equilibrium:
    """A solved equilibrium.

    ``edge_flows`` f, ``path_flows`` h over ``paths``; ``edge_latency`` l(f) (no toll);
    ``path_costs`` tolled path costs ``c_p``; ``relative_gap`` as in the module docstring;
    ``total_travel_time`` ``sum_e f_e l_e(f_e)``; ``potential`` the minimized ``Phi``.
    """

    network: Network
    tolls: np.ndarray
    tau: float
    paths: PathSet
    path_flows: np.ndarray
    edge_flows: np.ndarray
    edge_latency: np.ndarray
    path_costs: np.ndarray
    relative_gap: float
    potential: float
    total_travel_time: float
    iterations: int
    converged: bool

    @property
    def mean_travel_time(self) -> float:
        return self.total_travel_time / float(self.network.demand.sum())


def _segment_min(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.minimum.reduceat(values, starts)


def _segment_sum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.add.reduceat(values, starts)


class _Problem:
    """The potential and its pieces for one network, tolls, tau and path set."""

    def __init__(self, net: Network, tolls: np.ndarray, tau: float, paths: PathSet) -> None:
        self.net, self.tolls, self.tau, self.paths = net, tolls, tau, paths
        self.delta = paths.incidence
        self.delta_t = paths.incidence.T.tocsr()
        self.demand_p = net.demand[paths.pair]

    def edge_flows(self, h: np.ndarray) -> np.ndarray:
        return self.delta_t @ h

    def potential(self, h: np.ndarray) -> float:
        f = self.edge_flows(h)
        value = float(self.net.latency_integral(f).sum() + self.tolls @ f)
        if self.tau > 0:
            value += self.tau * float(h @ np.log(h / self.demand_p))
        return value

    def gap(self, h: np.ndarray, c: np.ndarray, shortest: np.ndarray | None) -> float:
        """Absolute gap; ``shortest`` (per pair) replaces the set's minima at tau = 0."""
        starts, d = self.paths.starts, self.net.demand
        if self.tau > 0:
            m = _segment_min(c, starts)
            z = _segment_sum(np.exp(-(c - m[self.paths.pair]) / self.tau), starts)
            free_energy = d * (m - self.tau * np.log(z))
            return float(h @ (c + self.tau * np.log(h / self.demand_p)) - free_energy.sum())
        m = _segment_min(c, starts) if shortest is None else shortest
        return float(h @ c - d @ m)


def _initial_paths(net: Network, tolls: np.ndarray, mode: PathMode) -> PathSet:
    if mode in ("auto", "all"):
        paths = all_simple_paths(net, limit=AUTO_ENUMERATION_LIMIT if mode == "auto" else None)
        if paths is not None:
            return paths
    tree = shortest_paths(net, net.latency(np.zeros(net.n_edges)) + tolls)
    return PathSet.build(net.n_edges, [[tree.path(k)] for k in range(net.n_pairs)],
                         generated=True)


def _initial_flows(problem: _Problem, start: Equilibrium | None) -> np.ndarray:
    paths, net = problem.paths, problem.net
    if start is not None and start.paths is paths and start.network is net:
        h = start.path_flows.copy()
    else:  # spread each pair's demand evenly over its paths
        counts = np.diff([*paths.starts, paths.n_paths])
        h = net.demand[paths.pair] / counts[paths.pair]
    if problem.tau > 0:
        h = np.maximum(h, _FLOOR * problem.demand_p)
    return h


def _newton_step(problem: _Problem, h: np.ndarray, c: np.ndarray,
                 f: np.ndarray) -> np.ndarray | None:
    """A full Newton step at tau > 0 (:class:`ReducedSolver`), taken in ``log h`` and damped
    by backtracking on Phi; ``None`` if it does not decrease Phi."""
    net, tau, pair = problem.net, problem.tau, problem.paths.pair
    g = c + tau * np.log(h / problem.demand_p)
    try:
        delta = -ReducedSolver(net, problem.paths, h, f, tau).solve(g)
    except np.linalg.LinAlgError:
        return None
    phi0, alpha = problem.potential(h), 1.0
    for _ in range(12):
        trial = h * np.exp(np.clip(alpha * delta / h, -700.0, 50.0))
        trial *= (net.demand / _segment_sum(trial, problem.paths.starts))[pair]
        trial = np.maximum(trial, _FLOOR * problem.demand_p)
        if problem.potential(trial) <= phi0:
            return trial
        alpha *= 0.5
    return None


def _step(problem: _Problem, h: np.ndarray, c: np.ndarray, f: np.ndarray) -> np.ndarray:
    """One step: Newton at tau > 0 if it descends, else one projected diagonal-Newton
    (gradient projection) step of every pair, with a backtracking search on Phi."""
    net, paths, tau = problem.net, problem.paths, problem.tau
    if tau > 0:
        newton = _newton_step(problem, h, c, f)
        if newton is not None:
            return newton
    g = c + tau * np.log(h / problem.demand_p) if tau > 0 else c
    # the basic path of a pair receives what the others give up: at tau = 0 its cheapest path
    # (the classic rule); at tau > 0 its largest flow, so that a path far below its logit share
    # is not basic (its curvature tau / h_p would make every step towards it vanish)
    key = -h if tau > 0 else g
    best = _segment_min(key, paths.starts)
    first = np.flatnonzero(key <= best[paths.pair])
    basic = np.full(net.n_pairs, -1)
    basic[paths.pair[first[::-1]]] = first[::-1]
    curvature = problem.delta @ net.latency_derivative(f)
    if tau > 0:
        curvature = curvature + tau / h
    s = basic[paths.pair]
    denom = np.maximum(curvature + curvature[s], 1e-300)
    delta = -(g - g[s]) / denom
    delta[basic] = 0.0
    if tau == 0:
        target = np.maximum(h + delta, 0.0)
        target[basic] = 0.0
        target[basic] = net.demand - _segment_sum(target, paths.starts)
        return _exact_line_search(problem, h, target, f)
    phi0 = problem.potential(h)
    alpha = 1.0
    for _ in range(40):
        trial = h * np.exp(np.clip(alpha * delta / h, -700.0, 50.0))
        trial = np.maximum(trial, _FLOOR * problem.demand_p)
        trial[basic] = 0.0
        trial[basic] = net.demand - _segment_sum(trial, paths.starts)
        if np.any(trial[basic] < _FLOOR * net.demand):
            alpha *= 0.5  # the others took more than the basic path has
            continue
        if problem.potential(trial) <= phi0:
            return trial
        alpha *= 0.5
    return h


def _exact_line_search(problem: _Problem, h: np.ndarray, target: np.ndarray,
                       f: np.ndarray) -> np.ndarray:
    """The minimizer of Phi on the segment from ``h`` to ``target`` (tau = 0). Phi is convex
    along it and its slope ``(l(f + a df) + t) . df`` is computed without the cancellation
    that comparing two values of Phi suffers near the optimum; bisection on the slope."""
    net = problem.net
    df = problem.edge_flows(target) - f

    def slope(alpha: float) -> float:
        return float((net.latency(f + alpha * df) + problem.tolls) @ df)

    if slope(0.0) >= 0:
        return h
    if slope(1.0) <= 0:
        return target
    lo, hi = 0.0, 1.0
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        if slope(mid) <= 0:
            lo = mid
        else:
            hi = mid
    return h + lo * (target - h)


def solve_equilibrium(
    net: Network,
    tolls: np.ndarray | None = None,
    tau: float = 0.0,
    *,
    tol: float = 1e-8,
    max_iterations: int = 20_000,
    paths: PathMode | PathSet = "auto",
    start: Equilibrium | None = None,
) -> Equilibrium:
    """The logit equilibrium at temperature ``tau`` (Wardrop at ``tau = 0``) under ``tolls``.

    Parameters
    ----------
    net : Network
    tolls : array of shape (n_edges,), optional
        Edge tolls (default none); they are used as given (bounds are the planner's business).
    tau : float, default 0
        Temperature of the drivers' logit choice, in units of cost.
    tol : float, default 1e-8
        Stop at this relative gap (module docstring).
    max_iterations : int, default 20000
        Gradient-projection steps at most (``converged`` says whether ``tol`` was reached).
    paths : {"auto", "all", "generated"} or PathSet, default "auto"
        The path set (:mod:`stackelberg.congestion.paths`); ``"auto"`` enumerates all simple
        paths if there are at most 5000, else generates columns; a :class:`PathSet` is used
        as given (and extended only if it says ``generated``).
    start : Equilibrium, optional
        Warm start (its path set and flows), e.g. the previous solve of a planner.
    """
    if not (np.isfinite(tau) and tau >= 0):
        raise NetworkError(f"tau must be a finite number >= 0, got {tau!r}")
    tolls = np.zeros(net.n_edges) if tolls is None else np.asarray(tolls, dtype=float)
    if tolls.shape != (net.n_edges,) or not np.all(np.isfinite(tolls)):
        raise NetworkError(f"network {net.name!r}: tolls must be {net.n_edges} finite numbers, "
                           f"got shape {tolls.shape}")
    if isinstance(paths, PathSet):
        path_set = paths
    elif start is not None and start.network is net:
        path_set = start.paths
    else:
        path_set = _initial_paths(net, tolls, paths)
    problem = _Problem(net, tolls, tau, path_set)
    h = _initial_flows(problem, start)
    iterations, gap = 0, np.inf
    while True:
        f = problem.edge_flows(h)
        edge_cost = net.latency(f) + tolls
        c = problem.delta @ edge_cost
        shortest, new = None, {}
        if problem.paths.generated:
            tree = shortest_paths(net, edge_cost)
            shortest = tree.distance if tau == 0 else None
            new = _improving_paths(problem, c, tree)
        gap = problem.gap(h, c, shortest) / max(abs(float(h @ c)), 1e-300)
        # add the better paths the graph has every few steps, and always before stopping
        if new and (gap <= tol or iterations % 5 == 0):
            problem, h = _with_paths(problem, h, new)
            continue
        if gap <= tol or iterations >= max_iterations:
            break
        h = _step(problem, h, c, f)
        iterations += 1
    f = problem.edge_flows(h)
    latency = net.latency(f)
    return Equilibrium(network=net, tolls=tolls, tau=float(tau), paths=problem.paths,
                       path_flows=h, edge_flows=f, edge_latency=latency,
                       path_costs=problem.delta @ (latency + tolls),
                       relative_gap=max(float(gap), 0.0), potential=problem.potential(h),
                       total_travel_time=net.total_travel_time(f), iterations=iterations,
                       converged=bool(gap <= tol))


def _improving_paths(problem: _Problem, c: np.ndarray,
                     tree: ShortestPaths) -> dict[int, tuple[int, ...]]:
    """The shortest path of each pair whose distance beats the pair's best path in the set
    by a relative 1e-12 (and is not in the set already)."""
    best = _segment_min(c, problem.paths.starts)
    better = np.flatnonzero(tree.distance < best - 1e-12 * np.maximum(np.abs(best), 1.0))
    known = set(zip(problem.paths.pair.tolist(), problem.paths.edges, strict=True))
    found = {int(k): tree.path(int(k)) for k in better}
    return {k: p for k, p in found.items() if (k, p) not in known}


def _with_paths(problem: _Problem, h: np.ndarray,
                new: dict[int, tuple[int, ...]]) -> tuple[_Problem, np.ndarray]:
    """The problem over the path set plus ``new``, and ``h`` carried over (new paths at 0)."""
    old = problem.paths.per_pair()
    paths = problem.paths.extended(problem.net.n_edges, new)
    extended = _Problem(problem.net, problem.tolls, problem.tau, paths)
    h_new = np.zeros(paths.n_paths)
    h_new[paths.position(old)] = h
    if problem.tau > 0:
        h_new = np.maximum(h_new, _FLOOR * extended.demand_p)
    return extended, h_new
