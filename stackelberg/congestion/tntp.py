"""Read networks in the TNTP format of the TransportationNetworks repository
(https://github.com/bstabler/TransportationNetworks): ``*_net.tntp`` (links with BPR
parameters), ``*_trips.tntp`` (OD demands), optionally ``*_node.tntp`` (coordinates).

A link line is ``init term capacity length free_flow_time B power speed toll type ;`` and its
latency is BPR, ``free_flow_time (1 + B (f / capacity)^power)``. The file's own ``toll`` column
is a fixed toll of the data set; it is ignored here (the planner sets the tolls), which is the
repository's convention too ("Generalized Cost Weights: Toll 0" for Sioux Falls).

Errors raise :class:`~stackelberg.congestion.network.NetworkError` naming the file and line.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

from stackelberg.congestion.network import Network, NetworkError, from_graph

if TYPE_CHECKING:  # networkx is imported where it is used: importing it costs every command
    import networkx as nx  # about 0.3 CPU s (BENCHMARKS.md, "Branch sp")

__all__ = ["DATA_DIR", "load_tntp", "read_flows", "sioux_falls"]

#: The TNTP files shipped with the package.
DATA_DIR = Path(__file__).resolve().parents[2] / "games" / "data"


def _body(path: Path) -> list[tuple[int, str]]:
    """Numbered lines after ``<END OF METADATA>``, without comments (``~``) and blanks."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise NetworkError(f"{path}: cannot read the file ({err.strerror})") from None
    lines = text.splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if "<END OF METADATA>" in line), 0)
    return [(i + 1, line.strip()) for i, line in enumerate(lines[start:], start)
            if line.strip() and not line.strip().startswith("~")]


def _number(path: Path, lineno: int, text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise NetworkError(f"{path}, line {lineno}: {what} must be a number, got "
                           f"{text!r}") from None


def _read_links(path: Path, graph: nx.DiGraph) -> None:
    for lineno, line in _body(path):
        fields = line.rstrip(";").split()
        if len(fields) < 7:
            raise NetworkError(f"{path}, line {lineno}: a link needs init, term, capacity, "
                               f"length, free_flow_time, B and power; got {line!r}")
        u, v = int(_number(path, lineno, fields[0], "init")), \
            int(_number(path, lineno, fields[1], "term"))
        values = [_number(path, lineno, fields[i], what) for i, what in
                  ((2, "capacity"), (4, "free_flow_time"), (5, "B"), (6, "power"))]
        capacity, fft, alpha, beta = values
        if graph.has_edge(u, v):
            raise NetworkError(f"{path}, line {lineno}: link {u}->{v} is listed twice")
        graph.add_edge(u, v, capacity=capacity, free_flow_time=fft, alpha=alpha, beta=beta)


def _read_trips(path: Path) -> dict[tuple[int, int], float]:
    demands: dict[tuple[int, int], float] = {}
    origin: int | None = None
    for lineno, line in _body(path):
        if line.startswith("Origin"):
            origin = int(_number(path, lineno, line.split()[1], "origin"))
            continue
        if origin is None:
            raise NetworkError(f"{path}, line {lineno}: demands before any 'Origin' line")
        for item in filter(None, (s.strip() for s in line.split(";"))):
            match = re.fullmatch(r"(\S+)\s*:\s*(\S+)", item)
            if match is None:
                raise NetworkError(f"{path}, line {lineno}: expected 'destination : demand', "
                                   f"got {item!r}")
            dest = int(_number(path, lineno, match.group(1), "destination"))
            demand = _number(path, lineno, match.group(2), "demand")
            if demand < 0 or not math.isfinite(demand):
                raise NetworkError(f"{path}, line {lineno}: demand {origin}->{dest} must be a "
                                   f"finite number >= 0, got {demand!r}")
            if demand > 0 and dest != origin:
                demands[(origin, dest)] = demands.get((origin, dest), 0.0) + demand
    return demands


def _read_nodes(path: Path) -> dict[int, tuple[float, float]]:
    positions = {}
    for lineno, line in _body(path):
        fields = line.rstrip(";").split()
        if fields and fields[0].lower() == "node":
            continue  # the header line
        if len(fields) < 3:
            raise NetworkError(f"{path}, line {lineno}: expected 'node x y', got {line!r}")
        positions[int(_number(path, lineno, fields[0], "node"))] = (
            _number(path, lineno, fields[1], "x"), _number(path, lineno, fields[2], "y"))
    return positions


def load_tntp(net_file: str | Path, trips_file: str | Path, node_file: str | Path | None = None,
              *, name: str | None = None,
              toll_bounds: tuple[float, float] = (0.0, math.inf)) -> Network:
    """Load a network from its ``*_net.tntp`` and ``*_trips.tntp`` files (and coordinates from
    ``*_node.tntp`` if given). Nodes are the files' integer node numbers."""
    import networkx as nx  # on use: see the module's imports
    net_file, trips_file = Path(net_file), Path(trips_file)
    graph = nx.DiGraph(name=name or net_file.name.removesuffix("_net.tntp"))
    _read_links(net_file, graph)
    demands = _read_trips(trips_file)
    for (o, d) in demands:
        for node in (o, d):
            if node not in graph:
                raise NetworkError(f"{trips_file}: pair {o}->{d}: node {node} has no link in "
                                   f"{net_file}")
    positions = _read_nodes(Path(node_file)) if node_file is not None else None
    return from_graph(graph, demands, toll_bounds=toll_bounds, positions=positions)


def read_flows(flow_file: str | Path) -> dict[tuple[int, int], float]:
    """Link volumes of a ``*_flow.tntp`` solution file: ``(from, to) -> volume``."""
    path = Path(flow_file)
    flows = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise NetworkError(f"{path}: cannot read the file ({err.strerror})") from None
    for lineno, line in enumerate(lines, 1):
        fields = line.split()
        if len(fields) < 3 or not fields[0].isdigit():
            continue  # the header
        flows[(int(fields[0]), int(fields[1]))] = _number(path, lineno, fields[2], "volume")
    return flows


def sioux_falls(toll_bounds: tuple[float, float] = (0.0, math.inf)) -> Network:
    """The Sioux Falls network shipped in ``games/data`` (24 nodes, 76 links, 528 OD pairs;
    LeBlanc, Morlok and Pierskalla, Transportation Research 9, 1975)."""
    return load_tntp(DATA_DIR / "SiouxFalls_net.tntp", DATA_DIR / "SiouxFalls_trips.tntp",
                     DATA_DIR / "SiouxFalls_node.tntp", name="sioux-falls",
                     toll_bounds=toll_bounds)
