"""A road network with latencies, demands and toll bounds, built from a networkx ``DiGraph``
(docs/theory.md §11).

Every edge has the latency ``l_e(f) = a_e + b_e f^{p_e}`` with ``a_e, b_e >= 0`` and ``p_e >= 1``:

- affine ``a + b f`` is ``p = 1``;
- BPR ``t (1 + alpha (f / c)^beta)`` is ``a = t``, ``b = t alpha / c^beta``, ``p = beta``.

So one vectorized formula serves both, and the Beckmann integral, the derivative and the
marginal-cost toll are closed forms (:meth:`Network.potential_terms`, ...). Invalid input raises
:class:`NetworkError` (a ``ValueError``) naming the edge or the origin-destination pair.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # networkx is imported where it is used: importing it costs every command
    import networkx as nx  # about 0.3 CPU s (BENCHMARKS.md, "Branch sp")

__all__ = ["Network", "NetworkError", "from_graph"]


class NetworkError(ValueError):
    """An invalid network: the message names the edge, the pair or the parameter."""


@dataclass(frozen=True, eq=False)
class Network:
    """A directed network with edge latencies ``a + b f^p``, toll bounds and OD demands.

    Nodes are indexed ``0..n-1`` (``nodes[i]`` is the user's label); edge ``e`` goes from
    ``tail[e]`` to ``head[e]``. Pair ``k`` sends ``demand[k]`` from ``origin[k]`` to
    ``destination[k]``. Arrays are read-only.
    """

    name: str
    nodes: tuple[Hashable, ...]
    tail: np.ndarray
    head: np.ndarray
    a: np.ndarray
    b: np.ndarray
    power: np.ndarray
    toll_lower: np.ndarray
    toll_upper: np.ndarray
    origin: np.ndarray
    destination: np.ndarray
    demand: np.ndarray
    positions: Mapping[Hashable, tuple[float, float]] | None = field(default=None)

    def __post_init__(self) -> None:
        for name in ("tail", "head", "a", "b", "power", "toll_lower", "toll_upper", "origin",
                     "destination", "demand"):
            array = np.array(getattr(self, name), dtype=int if name in
                             ("tail", "head", "origin", "destination") else float)
            array.setflags(write=False)
            object.__setattr__(self, name, array)
        _validate(self)

    # -- sizes and labels -----------------------------------------------------------------

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def n_edges(self) -> int:
        return len(self.tail)

    @property
    def n_pairs(self) -> int:
        return len(self.demand)

    def edge_label(self, e: int) -> str:
        return f"{self.nodes[self.tail[e]]}->{self.nodes[self.head[e]]}"

    def pair_label(self, k: int) -> str:
        return f"{self.nodes[self.origin[k]]}->{self.nodes[self.destination[k]]}"

    # -- latencies, vectorized over edges -------------------------------------------------

    def latency(self, f: np.ndarray) -> np.ndarray:
        """``l_e(f_e)`` for every edge."""
        return self.a + self.b * np.power(f, self.power)

    def latency_derivative(self, f: np.ndarray) -> np.ndarray:
        """``l_e'(f_e) = p b f^{p-1}`` (``b`` at ``p = 1``, also at ``f = 0``)."""
        return self.power * self.b * np.power(f, self.power - 1.0)

    def latency_integral(self, f: np.ndarray) -> np.ndarray:
        """``int_0^{f_e} l_e(u) du = a f + b f^{p+1} / (p+1)``: the Beckmann terms."""
        return self.a * f + self.b * np.power(f, self.power + 1.0) / (self.power + 1.0)

    def total_travel_time(self, f: np.ndarray) -> float:
        """``sum_e f_e l_e(f_e)``: what the planner minimizes (tolls are transfers)."""
        return float(f @ self.latency(f))

    def marginal_cost_tolls(self, f: np.ndarray) -> np.ndarray:
        """``f_e l_e'(f_e) = p b f^p``: the toll that prices a driver's delay to the others."""
        return self.power * self.b * np.power(f, self.power)

    def system_optimum_network(self) -> Network:
        """The same network with marginal-cost latencies ``l + f l' = a + (p+1) b f^p``, whose
        Wardrop equilibrium is the system optimum of this one (docs/theory.md §11)."""
        return Network(name=f"{self.name} (marginal costs)", nodes=self.nodes, tail=self.tail,
                       head=self.head, a=self.a, b=(self.power + 1.0) * self.b,
                       power=self.power, toll_lower=self.toll_lower,
                       toll_upper=self.toll_upper, origin=self.origin,
                       destination=self.destination, demand=self.demand,
                       positions=self.positions)

    def clip_tolls(self, tolls: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(tolls, dtype=float), self.toll_lower, self.toll_upper)

    def graph(self) -> nx.DiGraph:
        """A networkx view with the user's node labels and the edge index as ``index``."""
        import networkx as nx  # on use: see the module's imports
        g = nx.DiGraph()
        g.add_nodes_from(self.nodes)
        for e in range(self.n_edges):
            g.add_edge(self.nodes[self.tail[e]], self.nodes[self.head[e]], index=e)
        return g


def _validate(net: Network) -> None:
    import networkx as nx  # on use: see the module's imports
    m = len(net.tail)
    for name in ("head", "a", "b", "power", "toll_lower", "toll_upper"):
        if len(getattr(net, name)) != m:
            raise NetworkError(f"network {net.name!r}: {name} has {len(getattr(net, name))} "
                               f"entries for {m} edges")
    if len(net.origin) != len(net.demand) or len(net.destination) != len(net.demand):
        raise NetworkError(f"network {net.name!r}: origin, destination and demand must have "
                           "one entry per pair")
    if m == 0:
        raise NetworkError(f"network {net.name!r} has no edges")
    if len(net.demand) == 0:
        raise NetworkError(f"network {net.name!r} has no origin-destination pair")
    n = len(net.nodes)
    for name in ("tail", "head", "origin", "destination"):
        values = getattr(net, name)
        if values.size and (values.min() < 0 or values.max() >= n):
            raise NetworkError(f"network {net.name!r}: {name} refers to a node outside 0..{n-1}")
    for e in range(m):
        edge = f"network {net.name!r}, edge {net.edge_label(e)}"
        if net.tail[e] == net.head[e]:
            raise NetworkError(f"{edge}: a loop (tail == head) is not a road")
        for name in ("a", "b"):
            value = getattr(net, name)[e]
            if not (math.isfinite(value) and value >= 0):
                raise NetworkError(f"{edge}: latency parameter {name} must be a finite number "
                                   f">= 0, got {value!r}")
        if not (math.isfinite(net.power[e]) and net.power[e] >= 1):
            raise NetworkError(f"{edge}: latency power must be a finite number >= 1, got "
                               f"{net.power[e]!r}")
        lo, hi = net.toll_lower[e], net.toll_upper[e]
        if math.isnan(lo) or math.isnan(hi) or lo == math.inf or hi == -math.inf:
            raise NetworkError(f"{edge}: toll bounds must be numbers, got [{lo}, {hi}]")
        if lo > hi:
            raise NetworkError(f"{edge}: lower toll bound {lo} > upper toll bound {hi}")
    pairs: set[tuple[int, int]] = set()
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from(zip(net.tail.tolist(), net.head.tolist(), strict=True))
    for k in range(len(net.demand)):
        pair = f"network {net.name!r}, pair {net.pair_label(k)}"
        d = net.demand[k]
        if not (math.isfinite(d) and d > 0):
            raise NetworkError(f"{pair}: demand must be a finite number > 0, got {d!r}")
        o, t = int(net.origin[k]), int(net.destination[k])
        if o == t:
            raise NetworkError(f"{pair}: origin and destination are the same node")
        if (o, t) in pairs:
            raise NetworkError(f"{pair}: listed twice; give each pair once with its total "
                               "demand")
        pairs.add((o, t))
        if not nx.has_path(g, o, t):
            raise NetworkError(f"{pair}: unroutable demand, no path from "
                               f"{net.nodes[o]!r} to {net.nodes[t]!r}")


def _edge_latency(graph_name: str, u: Hashable, v: Hashable,
                  data: Mapping[str, object]) -> tuple[float, float, float]:
    """``(a, b, p)`` from an edge's attributes: BPR if it names a capacity or free-flow time,
    affine otherwise."""
    where = f"network {graph_name!r}, edge {u}->{v}"

    def number(key: str, default: float) -> float:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer,
                                                             np.floating)):
            raise NetworkError(f"{where}: {key} must be a number, got {value!r}")
        return float(value)

    if "capacity" in data or "free_flow_time" in data:
        t = number("free_flow_time", 0.0)
        c = number("capacity", math.nan)
        alpha, beta = number("alpha", 0.15), number("beta", 4.0)
        for key, value in (("free_flow_time", t), ("alpha", alpha)):
            if not (math.isfinite(value) and value >= 0):
                raise NetworkError(f"{where}: latency parameter {key} must be a finite number "
                                   f">= 0, got {value!r}")
        if not (math.isfinite(c) and c > 0):
            raise NetworkError(f"{where}: BPR capacity must be a finite number > 0, got "
                               f"{data.get('capacity')!r}")
        return t, t * alpha / c**beta, beta
    return number("a", 0.0), number("b", 0.0), number("power", 1.0)


def from_graph(
    graph: nx.DiGraph,
    demands: Mapping[tuple[Hashable, Hashable], float] | Iterable[tuple[Hashable, Hashable,
                                                                       float]],
    *,
    name: str | None = None,
    toll_bounds: tuple[float, float] = (0.0, math.inf),
    positions: Mapping[Hashable, tuple[float, float]] | None = None,
) -> Network:
    """Build a :class:`Network` from a networkx ``DiGraph`` and OD demands.

    Parameters
    ----------
    graph : networkx.DiGraph
        Edge attributes: affine ``a`` and ``b`` (latency ``a + b f``; optional ``power``), or
        BPR ``free_flow_time``, ``capacity`` and optional ``alpha`` (0.15), ``beta`` (4).
        Optional ``toll_min`` / ``toll_max`` override ``toll_bounds`` per edge.
    demands : mapping ``(origin, destination) -> demand``, or ``(o, d, demand)`` triples
        Pairs with demand 0 are dropped (TNTP files list them).
    name : str, optional
        For messages; default the graph's ``name`` or ``"network"``.
    toll_bounds : (float, float), default (0, inf)
        Bounds of every edge's toll unless the edge says otherwise.
    positions : mapping node -> (x, y), optional
        Where the figure draws the nodes.
    """
    import networkx as nx  # on use: see the module's imports
    if not isinstance(graph, nx.DiGraph) or graph.is_multigraph():
        raise NetworkError("the network must be a networkx DiGraph (one edge per ordered pair; "
                           "split parallel roads with an extra node)")
    name = name or graph.graph.get("name") or "network"
    nodes = tuple(graph.nodes)
    index = {node: i for i, node in enumerate(nodes)}
    tail, head, a, b, p, lo, hi = [], [], [], [], [], [], []
    for u, v, data in graph.edges(data=True):
        ae, be, pe = _edge_latency(name, u, v, data)
        tail.append(index[u])
        head.append(index[v])
        a.append(ae)
        b.append(be)
        p.append(pe)
        lo.append(float(data.get("toll_min", toll_bounds[0])))
        hi.append(float(data.get("toll_max", toll_bounds[1])))
    items = demands.items() if isinstance(demands, Mapping) else \
        (((o, d), q) for o, d, q in demands)
    origin, destination, demand = [], [], []
    for (o, d), q in items:
        for node in (o, d):
            if node not in index:
                raise NetworkError(f"network {name!r}, pair {o}->{d}: node {node!r} is not in "
                                   "the graph")
        if isinstance(q, (int, float, np.integer, np.floating)) and not isinstance(q, bool) \
                and q == 0:
            continue
        origin.append(index[o])
        destination.append(index[d])
        demand.append(q if isinstance(q, (int, float, np.integer, np.floating)) else math.nan)
    return Network(name=name, nodes=nodes, tail=np.array(tail, dtype=int),
                   head=np.array(head, dtype=int), a=np.array(a), b=np.array(b),
                   power=np.array(p), toll_lower=np.array(lo), toll_upper=np.array(hi),
                   origin=np.array(origin, dtype=int),
                   destination=np.array(destination, dtype=int), demand=np.array(demand),
                   positions=dict(positions) if positions is not None else None)
