"""Named networks with known answers, and random ones for tests (docs/theory.md §11).

- :func:`pigou`: two roads from ``s`` to ``t``, latencies ``1`` and ``f``, demand 1. Selfish
  routing costs 1, the optimum 3/4, and the toll 1/2 on the variable road restores it.
- :func:`braess`: ``s->v`` (``f``), ``v->t`` (1), ``s->w`` (1), ``w->t`` (``f``), demand 1, and
  optionally the free shortcut ``v->w``: the equilibrium costs 2 with it, 1.5 without.
- :func:`random_network`: a random layered DiGraph with affine latencies and several OD pairs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from stackelberg.congestion.network import Network, NetworkError, from_graph

if TYPE_CHECKING:  # networkx is imported where it is used: importing it costs every command
    pass  # about 0.3 CPU s (BENCHMARKS.md, "Branch sp")

__all__ = ["NAMED", "braess", "named", "pigou", "random_network"]


def pigou(toll_max: float = 1.0) -> Network:
    """Pigou's network. A DiGraph has one edge per ordered pair, so the variable road goes
    through a middle node ``m`` whose second half ``m->t`` is free and untolled."""
    import networkx as nx  # on use: see the module's imports
    g = nx.DiGraph(name="pigou")
    g.add_edge("s", "t", a=1.0, b=0.0, toll_max=toll_max)
    g.add_edge("s", "m", a=0.0, b=1.0, toll_max=toll_max)
    g.add_edge("m", "t", a=0.0, b=0.0, toll_max=0.0)
    return from_graph(g, {("s", "t"): 1.0},
                      positions={"s": (0.0, 0.0), "m": (0.5, -0.5), "t": (1.0, 0.0)})


def braess(shortcut: bool = True, toll_max: float = 1.0) -> Network:
    """Braess's network, with or without the zero-latency shortcut ``v->w``."""
    import networkx as nx  # on use: see the module's imports
    g = nx.DiGraph(name="braess" if shortcut else "braess-no-shortcut")
    g.add_edge("s", "v", a=0.0, b=1.0)
    g.add_edge("v", "t", a=1.0, b=0.0)
    g.add_edge("s", "w", a=1.0, b=0.0)
    g.add_edge("w", "t", a=0.0, b=1.0)
    if shortcut:
        g.add_edge("v", "w", a=0.0, b=0.0)
    return from_graph(g, {("s", "t"): 1.0}, toll_bounds=(0.0, toll_max),
                      positions={"s": (0.0, 0.0), "v": (0.5, 0.5), "w": (0.5, -0.5),
                                 "t": (1.0, 0.0)})


def random_network(seed: int, layers: int = 3, width: int = 3, pairs: int = 3,
                   toll_max: float = 10.0) -> Network:
    """A random layered network: a source layer, ``layers`` inner layers of ``width`` nodes and
    a sink layer; each node links to 2 random nodes of the next layer and, with probability
    0.3, to a node of its own layer (so routes cross). Latencies ``a + b f`` with ``a`` in
    ``[0, 2]`` and ``b`` in ``[0.2, 2]``; ``pairs`` OD pairs from source-layer to sink-layer
    nodes with demands in ``[0.2, 1]``."""
    import networkx as nx  # on use: see the module's imports
    rng = np.random.default_rng(seed)
    levels = [[f"L{i}_{j}" for j in range(width)] for i in range(layers + 2)]
    g = nx.DiGraph(name=f"random-{seed}")
    g.add_nodes_from(node for level in levels for node in level)
    for i in range(layers + 1):
        for u in levels[i]:
            for v in rng.choice(levels[i + 1], size=2, replace=False):
                g.add_edge(u, str(v))
            if 0 < i and rng.random() < 0.3:
                v = str(rng.choice([w for w in levels[i] if w != u]))
                if not g.has_edge(v, u):
                    g.add_edge(u, v)
    for _, _, data in g.edges(data=True):
        data.update(a=float(rng.uniform(0, 2)), b=float(rng.uniform(0.2, 2)))
    candidates = [(o, d) for o in levels[0] for d in levels[-1] if nx.has_path(g, o, d)]
    if not candidates:
        raise NetworkError(f"random network seed {seed}: no routable pair")
    chosen = rng.choice(len(candidates), size=min(pairs, len(candidates)), replace=False)
    demands = {candidates[i]: float(rng.uniform(0.2, 1.0)) for i in chosen}
    positions = {node: (float(i), float(j) - (width - 1) / 2)
                 for i, level in enumerate(levels) for j, node in enumerate(level)}
    return from_graph(g, demands, toll_bounds=(0.0, toll_max), positions=positions)


#: The named instances a config or the CLI can ask for.
NAMED = {
    "pigou": lambda: pigou(),
    "braess": lambda: braess(shortcut=True),
    "braess-no-shortcut": lambda: braess(shortcut=False),
}


def named(name: str) -> Network:
    if name not in NAMED:
        raise NetworkError(f"unknown network {name!r}; named networks: {', '.join(NAMED)}")
    return NAMED[name]()

