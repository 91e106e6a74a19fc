"""The network drawn with flows as edge widths and tolls as edge labels (networkx + matplotlib).

:func:`draw_tolls` draws on a matplotlib ``Axes`` the caller owns (no pyplot state);
:func:`save_tolls_figure` makes a figure on an Agg canvas and writes it.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from stackelberg.congestion.network import Network

__all__ = ["draw_tolls", "save_tolls_figure"]


def _positions(net: Network) -> dict:
    if net.positions is not None and all(node in net.positions for node in net.nodes):
        return {node: tuple(net.positions[node]) for node in net.nodes}
    return nx.spring_layout(net.graph(), seed=0)


def draw_tolls(ax: Axes, net: Network, flows: np.ndarray, tolls: np.ndarray | None = None,
               *, title: str | None = None, max_width: float = 8.0) -> None:
    """Draw ``net`` on ``ax``: edge widths proportional to ``flows`` (the largest
    ``max_width`` points), tolls (when non-zero) as edge labels, node labels."""
    graph = net.graph()
    pos = _positions(net)
    edges = [(net.nodes[u], net.nodes[v]) for u, v in zip(net.tail, net.head, strict=True)]
    top = float(np.max(flows)) if np.max(flows) > 0 else 1.0
    widths = 0.5 + max_width * np.asarray(flows) / top
    small = net.n_nodes > 12
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_size=120 if small else 500,
                           node_color="#dbe8f5", edgecolors="#335")
    nx.draw_networkx_labels(graph, pos, ax=ax, font_size=6 if small else 10)
    # both directions of a two-way road would overlap: bend each a little
    nx.draw_networkx_edges(graph, pos, edgelist=edges, width=widths.tolist(), ax=ax,
                           edge_color="#c0392b", alpha=0.75, arrows=True, arrowsize=8,
                           connectionstyle="arc3,rad=0.12", node_size=120 if small else 500)
    if tolls is not None:
        labels = {edge: f"{t:.2g}" for edge, t in zip(edges, tolls, strict=True)
                  if abs(t) > 1e-9}
        nx.draw_networkx_edge_labels(graph, pos, edge_labels=labels, ax=ax,
                                     font_size=5 if small else 9, connectionstyle="arc3,rad=0.12",
                                     bbox={"boxstyle": "round,pad=0.1", "fc": "white",
                                           "ec": "none", "alpha": 0.8})
    ax.set_title(title or net.name, fontsize=10)
    ax.set_axis_off()


def save_tolls_figure(path: str | Path, net: Network, panels: list[tuple[str, np.ndarray,
                                                                         np.ndarray | None]],
                      ) -> Path:
    """Write one panel per ``(title, flows, tolls)`` side by side to ``path`` (PNG)."""
    figure = Figure(figsize=(5.5 * len(panels), 5.0), dpi=110)
    FigureCanvasAgg(figure)
    for i, (title, flows, tolls) in enumerate(panels):
        draw_tolls(figure.add_subplot(1, len(panels), i + 1), net, flows, tolls, title=title)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path)
    return path
