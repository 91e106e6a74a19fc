"""``stackelberg tolls CONFIG.toml``: one toll optimization from a config, written to a directory.

The config::

    [network]
    name = "braess"              # a named network (pigou, braess, braess-no-shortcut,
                                 # sioux-falls), or the TNTP files of your own:
    # net_file = "data/MyCity_net.tntp"      (relative to the config file)
    # trips_file = "data/MyCity_trips.tntp"
    # node_file = "data/MyCity_node.tntp"    (optional: coordinates for the figure)
    toll_max = 1.0               # optional: upper toll bound on every edge (default: the
                                 # network's own, unbounded for TNTP files)

    [drivers]
    tau = 0.001                  # logit temperature (> 0)

    [planner]
    anneal_from = 0.3            # optional (optimize_tolls)
    max_iterations = 200
    equilibrium_tol = 1e-10
    marginal_cost_start = true   # also start from the marginal-cost tolls, keep the better

The run directory gets ``result.json`` (tolls, flows and travel times per edge; the totals; the
equilibrium's relative gap; CPU seconds) and ``network.png`` (untolled and tolled equilibria).
Bad input raises :class:`TollConfigError` naming the file, section and key.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stackelberg.congestion.equilibrium import solve_equilibrium
from stackelberg.congestion.figure import save_tolls_figure
from stackelberg.congestion.instances import NAMED, braess, named, pigou
from stackelberg.congestion.network import Network, NetworkError
from stackelberg.congestion.planner import TollResult, best_tolls, optimize_tolls
from stackelberg.congestion.tntp import load_tntp, sioux_falls

__all__ = ["TollConfig", "TollConfigError", "load_toll_config", "run_tolls"]

_KEYS = {
    "network": {"name", "net_file", "trips_file", "node_file", "toll_max"},
    "drivers": {"tau"},
    "planner": {"anneal_from", "max_iterations", "equilibrium_tol", "marginal_cost_start"},
}


class TollConfigError(ValueError):
    """A bad toll config; the message names the file, section and key."""


@dataclass(frozen=True)
class TollConfig:
    network: Network
    tau: float
    anneal_from: float | None
    max_iterations: int
    equilibrium_tol: float
    marginal_cost_start: bool
    source: str


def _number(path: Path, section: str, key: str, value: Any, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (positive and value <= 0):
        raise TollConfigError(f"{path}: {section}.{key} must be a finite number"
                              f"{' > 0' if positive else ''}, got {value!r}")
    return float(value)


def _network(path: Path, table: dict[str, Any]) -> Network:
    toll_max = table.get("toll_max")
    bound = None if toll_max is None else _number(path, "network", "toll_max", toll_max)
    if "net_file" in table or "trips_file" in table:
        files = {}
        for key in ("net_file", "trips_file", "node_file"):
            if key in table:
                if not isinstance(table[key], str):
                    raise TollConfigError(f"{path}: network.{key} must be a file name, got "
                                          f"{table[key]!r}")
                files[key] = (path.parent / table[key])
        if "net_file" not in files or "trips_file" not in files:
            raise TollConfigError(f"{path}: network needs both net_file and trips_file")
        return load_tntp(files["net_file"], files["trips_file"], files.get("node_file"),
                         toll_bounds=(0.0, math.inf if bound is None else bound))
    name = table.get("name")
    choices = (*NAMED, "sioux-falls")
    if name not in choices:
        raise TollConfigError(f"{path}: network.name must be one of {', '.join(choices)} (or "
                              f"give net_file and trips_file), got {name!r}")
    if name == "sioux-falls":
        return sioux_falls(toll_bounds=(0.0, math.inf if bound is None else bound))
    if bound is None:
        return named(name)
    return pigou(toll_max=bound) if name == "pigou" else braess(name == "braess", bound)


def load_toll_config(path: str | Path) -> TollConfig:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise TollConfigError(f"{path}: cannot read the config ({err.strerror})") from None
    except tomllib.TOMLDecodeError as err:
        raise TollConfigError(f"{path}: not valid TOML ({err})") from None
    for section, table in data.items():
        if section not in _KEYS or not isinstance(table, dict):
            raise TollConfigError(f"{path}: unknown section [{section}]; sections: "
                                  f"{', '.join(_KEYS)}")
        unknown = sorted(set(table) - _KEYS[section])
        if unknown:
            raise TollConfigError(f"{path}: unknown key {section}.{unknown[0]}; accepted: "
                                  f"{', '.join(sorted(_KEYS[section]))}")
    try:
        network = _network(path, data.get("network", {}))
    except NetworkError as err:
        raise TollConfigError(f"{path}: network: {err}") from None
    drivers, planner = data.get("drivers", {}), data.get("planner", {})
    if "tau" not in drivers:
        raise TollConfigError(f"{path}: drivers.tau is missing (the logit temperature, > 0)")
    anneal = planner.get("anneal_from")
    iterations = planner.get("max_iterations", 200)
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise TollConfigError(f"{path}: planner.max_iterations must be an integer >= 1, got "
                              f"{iterations!r}")
    mc_start = planner.get("marginal_cost_start", True)
    if not isinstance(mc_start, bool):
        raise TollConfigError(f"{path}: planner.marginal_cost_start must be true or false, got "
                              f"{mc_start!r}")
    return TollConfig(
        network=network, tau=_number(path, "drivers", "tau", drivers["tau"]),
        anneal_from=None if anneal is None else _number(path, "planner", "anneal_from", anneal),
        max_iterations=iterations,
        equilibrium_tol=_number(path, "planner", "equilibrium_tol",
                                planner.get("equilibrium_tol", 1e-10)),
        marginal_cost_start=mc_start, source=str(path))


def run_tolls(config: TollConfig, out: str | Path) -> tuple[TollResult, Path]:
    """Optimize the tolls of ``config`` and write ``result.json`` and ``network.png`` into the
    existing directory ``out`` (the CLI hands it a staging directory that it renames into place
    only when both files are written, as for ``stackelberg run``)."""
    net = config.network
    options = {"max_iterations": config.max_iterations,
               "equilibrium_tol": config.equilibrium_tol}
    if config.marginal_cost_start:
        result = best_tolls(net, config.tau, anneal_from=config.anneal_from, **options)
    else:
        result = optimize_tolls(net, config.tau, anneal_from=config.anneal_from, **options)
    untolled = solve_equilibrium(net, None, config.tau, tol=config.equilibrium_tol,
                                 paths=result.equilibrium.paths)
    eq = result.equilibrium
    out = Path(out)
    record = {
        "config": config.source, "network": net.name, "tau": config.tau,
        "edges": net.n_edges, "pairs": net.n_pairs, "paths": eq.paths.n_paths,
        "untolled_travel_time": result.untolled_travel_time,
        "total_travel_time": result.total_travel_time,
        "mean_travel_time": eq.mean_travel_time,
        "relative_gap": eq.relative_gap, "iterations": result.iterations,
        "evaluations": result.evaluations, "cpu_seconds": result.cpu_seconds,
        "converged": result.converged, "message": result.message,
        "per_edge": [{"edge": net.edge_label(e), "toll": float(result.tolls[e]),
                      "flow": float(eq.edge_flows[e]), "untolled_flow":
                      float(untolled.edge_flows[e]), "latency": float(eq.edge_latency[e])}
                     for e in range(net.n_edges)],
    }
    (out / "result.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    save_tolls_figure(out / "network.png", net, [
        (f"no tolls: total travel time {untolled.total_travel_time:.4g}",
         untolled.edge_flows, None),
        (f"planner's tolls: {result.total_travel_time:.4g}", eq.edge_flows,
         np.asarray(result.tolls)),
    ])
    return result, out
