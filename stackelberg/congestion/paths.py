"""Path sets of a network: the path-edge incidence matrix, shortest paths on arrays, and the
two ways a path set is made (docs/theory.md §11):

- ``"all"``: every simple path of every OD pair (small graphs: the logit equilibrium is then
  the textbook one over all paths);
- ``"generated"``: column generation, starting from each pair's shortest path and adding a
  pair's shortest path whenever it beats every path the set holds (large graphs: the logit
  equilibrium is over the generated set, and for ``tau = 0`` this is the Wardrop equilibrium).

Paths are stored grouped by pair (pair 0's paths first), so per-pair reductions are
``numpy.ufunc.reduceat`` over ``starts``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import NegativeCycleError, shortest_path

from stackelberg.congestion.network import Network, NetworkError

if TYPE_CHECKING:  # networkx is imported where it is used: importing it costs every command
    pass  # about 0.3 CPU s (BENCHMARKS.md, "Branch sp")

__all__ = ["PathSet", "ShortestPaths", "all_simple_paths", "shortest_paths"]

#: ``paths="auto"`` enumerates all simple paths when there are at most this many in total.
AUTO_ENUMERATION_LIMIT = 5000


@dataclass(frozen=True, eq=False)
class PathSet:
    """Paths as edge-index tuples, grouped by OD pair.

    ``incidence`` is the sparse ``P x E`` matrix with a 1 where path ``p`` uses edge ``e``;
    ``pair[p]`` is the pair of path ``p``; ``starts[k]`` is the first path of pair ``k``.
    """

    edges: tuple[tuple[int, ...], ...]
    pair: np.ndarray
    starts: np.ndarray
    incidence: sp.csr_matrix
    generated: bool

    @classmethod
    def build(cls, n_edges: int, per_pair: list[list[tuple[int, ...]]],
              generated: bool) -> PathSet:
        edges = tuple(path for paths in per_pair for path in paths)
        pair = np.repeat(np.arange(len(per_pair)), [len(paths) for paths in per_pair])
        starts = np.concatenate([[0], np.cumsum([len(paths) for paths in per_pair])[:-1]])
        rows = np.repeat(np.arange(len(edges)), [len(path) for path in edges])
        cols = np.fromiter(itertools.chain.from_iterable(edges), dtype=int, count=len(rows))
        incidence = sp.csr_matrix((np.ones(len(rows)), (rows, cols)),
                                  shape=(len(edges), n_edges))
        for array in (pair, starts):
            array.setflags(write=False)
        return cls(edges=edges, pair=pair, starts=starts.astype(int), incidence=incidence,
                   generated=generated)

    @property
    def n_paths(self) -> int:
        return len(self.edges)

    @cached_property
    def transposed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(order, indices, indptr)`` of ``incidence.T`` in CSR form (``E x P``, sorted
        indices): entry ``i`` of the transpose is entry ``order[i]`` of ``incidence``. A
        weighted incidence's transpose is then its data reordered, without scipy's
        conversions (:class:`stackelberg.congestion.kkt.ReducedSolver`)."""
        numbered = sp.csr_matrix((np.arange(self.incidence.nnz, dtype=float),
                                  self.incidence.indices, self.incidence.indptr),
                                 shape=self.incidence.shape)
        t = numbered.T.tocsr()
        return t.data.astype(np.intp), t.indices, t.indptr

    def per_pair(self) -> list[list[tuple[int, ...]]]:
        ends = [*self.starts[1:], self.n_paths]
        return [list(self.edges[s:e]) for s, e in zip(self.starts, ends, strict=True)]

    def extended(self, n_edges: int, new: dict[int, tuple[int, ...]]) -> PathSet:
        """This set plus one new path for some pairs (``pair -> path``)."""
        per_pair = self.per_pair()
        for k, path in new.items():
            per_pair[k].append(path)
        return PathSet.build(n_edges, per_pair, self.generated)

    def position(self, per_pair_old: list[list[tuple[int, ...]]]) -> np.ndarray:
        """Where each path of ``per_pair_old`` sits in this set (for carrying flows over)."""
        index = {(k, path): i for i, (k, path) in
                 enumerate(zip(self.pair.tolist(), self.edges, strict=True))}
        return np.array([index[(k, path)] for k, paths in enumerate(per_pair_old)
                         for path in paths], dtype=int)


def _graph_matrix(net: Network, cost: np.ndarray) -> sp.csr_matrix:
    # csgraph reads explicitly stored zeros of a csr matrix as edges (free roads stay roads)
    return sp.csr_matrix((cost, (net.tail, net.head)), shape=(net.n_nodes, net.n_nodes))


@dataclass(frozen=True, eq=False)
class ShortestPaths:
    """Shortest tolled distances of every pair (``distance[k]``) and the tree to read each
    pair's shortest path from (:meth:`path`)."""

    net: Network
    distance: np.ndarray
    predecessors: np.ndarray
    origin_row: np.ndarray
    edge_of: dict[tuple[int, int], int]

    def path(self, k: int) -> tuple[int, ...]:
        """Pair ``k``'s shortest path as edge indices."""
        net = self.net
        node, origin, hops = int(net.destination[k]), int(net.origin[k]), []
        while node != origin:
            before = int(self.predecessors[self.origin_row[k], node])
            hops.append(self.edge_of[(before, node)])
            node = before
        return tuple(reversed(hops))


def shortest_paths(net: Network, cost: np.ndarray) -> ShortestPaths:
    """Shortest paths from every origin under edge costs ``cost``: Dijkstra, or Johnson's
    algorithm if some cost is negative (a negative cycle is refused)."""
    origins, row = np.unique(net.origin, return_inverse=True)
    method = "D" if cost.min() >= 0 else "J"
    try:
        dist, pred = shortest_path(_graph_matrix(net, cost), method=method, directed=True,
                                   indices=origins, return_predecessors=True)
    except NegativeCycleError:
        raise NetworkError(f"network {net.name!r}: the tolls make a cycle of negative cost "
                           "(raise the lower toll bounds)") from None
    edge_of = {(int(u), int(v)): e
               for e, (u, v) in enumerate(zip(net.tail, net.head, strict=True))}
    return ShortestPaths(net=net, distance=dist[row, net.destination], predecessors=pred,
                         origin_row=row, edge_of=edge_of)


def all_simple_paths(net: Network, limit: int | None = None) -> PathSet | None:
    """Every simple path of every pair; ``None`` if there are more than ``limit`` in all."""
    import networkx as nx  # on use: see the module's imports
    graph = nx.DiGraph()
    graph.add_nodes_from(range(net.n_nodes))
    for e in range(net.n_edges):
        graph.add_edge(int(net.tail[e]), int(net.head[e]), index=e)
    per_pair, total = [], 0
    for k in range(net.n_pairs):
        found = nx.all_simple_edge_paths(graph, int(net.origin[k]), int(net.destination[k]))
        paths = []
        for path in found:
            paths.append(tuple(graph.edges[u, v]["index"] for u, v in path))
            total += 1
            if limit is not None and total > limit:
                return None
        per_pair.append(sorted(paths, key=lambda p: (len(p), p)))
    return PathSet.build(net.n_edges, per_pair, generated=False)
