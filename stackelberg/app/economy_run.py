"""``stackelberg economy CONFIG.toml``: one incentive-design match from a config, into a run
directory (the economy counterpart of ``stackelberg tolls``, :mod:`stackelberg.congestion.run`).

The config::

    [economy]
    id = "stackelberg/commons-v0"    # a registered economy (`stackelberg games` lists them)
    n_followers = 2                  # ... and any keyword parameter of its builder
    budget = 0.5

    [leader]
    algorithm = "pbrl-nash"          # optional (the only planner leader so far)
    penalty = 20.0                   # ... and any field of PBRLNashConfig

    [followers]
    learner = "best-response"        # or "soft-q" (agents/followers/game.py)
    tau = 0.1                        # entropy temperature of the followers' game (> 0)
    damping = 0.5                    # ... and any field of the learner's config

    [run]
    iterations = 100
    seed = 0
    follower_steps = 1               # optional
    metrics_every = 1                # optional

The run directory gets ``config.json`` (the config as read, with defaults filled in),
``metrics.csv`` (every row :func:`stackelberg.economy_match.play_economy` records: welfare,
payments, net welfare and Nash gap of the followers' play and of the exact equilibrium at the
planner's ``x``, the leader's diagnostics), ``summary.json`` and ``net_welfare.png``. Bad input
raises :class:`EconomyConfigError` naming the file, section and key.
"""

from __future__ import annotations

import csv
import dataclasses
import inspect
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.followers.game import (
    DampedBestResponse,
    DampedBestResponseConfig,
    IndependentSoftQ,
    IndependentSoftQConfig,
)
from agents.leaders.pbrl_nash import PBRLNashConfig, PBRLNashLeader
from stackelberg.economy import IncentiveEconomy
from stackelberg.economy_match import EconomyMatchResult, play_economy
from stackelberg.validation import check_types

__all__ = ["EconomyConfig", "EconomyConfigError", "EconomyRun", "load_economy_config",
           "run_economy"]

LEADERS = {"pbrl-nash": (PBRLNashConfig, PBRLNashLeader)}
LEARNERS = {"best-response": (DampedBestResponseConfig, DampedBestResponse),
            "soft-q": (IndependentSoftQConfig, IndependentSoftQ)}
_RUN_KEYS = {"iterations": 100, "seed": 0, "follower_steps": 1, "metrics_every": 1}
_SECTIONS = ("economy", "leader", "followers", "run")


class EconomyConfigError(ValueError):
    """A bad economy config; the message names the file, section and key."""


@dataclass(frozen=True)
class EconomyConfig:
    """A validated config: the built economy and everything needed to play one match."""

    economy_id: str
    economy_params: dict[str, Any]
    economy: IncentiveEconomy
    leader: str
    leader_config: PBRLNashConfig
    learner: str
    learner_config: DampedBestResponseConfig | IndependentSoftQConfig
    tau: float
    iterations: int
    seed: int
    follower_steps: int
    metrics_every: int
    source: str

    def as_json(self) -> dict[str, Any]:
        """The config as read, defaults filled in (what ``config.json`` holds)."""
        return {
            "economy": {"id": self.economy_id, **self.economy_params},
            "leader": {"algorithm": self.leader, **_fields(self.leader_config)},
            "followers": {"learner": self.learner, "tau": self.tau,
                          **_fields(self.learner_config)},
            "run": {"iterations": self.iterations, "seed": self.seed,
                    "follower_steps": self.follower_steps, "metrics_every": self.metrics_every},
        }


@dataclass(frozen=True)
class EconomyRun:
    """What :func:`run_economy` produced: the match and the summary written to disk."""

    result: EconomyMatchResult
    summary: dict[str, Any]


def _fields(config: object) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def _fail(path: Path, message: str) -> EconomyConfigError:
    return EconomyConfigError(f"{path}: {message}")


def _choice(path: Path, section: str, key: str, value: Any, choices: dict[str, Any]) -> str:
    if value not in choices:
        raise _fail(path, f"{section}.{key} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _dataclass(path: Path, section: str, cls: type, table: dict[str, Any]):
    """``cls(**table)`` with unknown keys, wrong types and bad ranges named ``section.key``."""
    accepted = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - accepted)
    if unknown:
        raise _fail(path, f"unknown key {section}.{unknown[0]}; accepted: "
                    f"{', '.join(sorted(accepted))}")
    try:
        check_types(section, table, cls)
        return cls(**table)
    except ValueError as err:
        # the dataclasses' own checks name the field as "follower.x"; the section here is plural
        message = str(err)
        if not message.startswith(f"{section}."):
            message = message.replace("follower.", f"{section}.", 1)
        raise _fail(path, message) from None


def _economy(path: Path, table: dict[str, Any]) -> tuple[str, dict[str, Any], IncentiveEconomy]:
    from games.economies import ECONOMIES, make_economy

    params = dict(table)
    economy_id = params.pop("id", None)
    if economy_id is None:
        raise _fail(path, f"economy.id is missing (one of {', '.join(ECONOMIES)})")
    _choice(path, "economy", "id", economy_id, ECONOMIES)
    builder = ECONOMIES[economy_id].builder
    accepted = list(inspect.signature(builder).parameters)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise _fail(path, f"unknown key economy.{unknown[0]} for {economy_id}; accepted: id, "
                    f"{', '.join(accepted)}")
    try:
        check_types("economy", params, builder)
        economy = make_economy(economy_id, **params)
    except ValueError as err:
        # the builder's messages start with the parameter's name
        message = str(err)
        named = next((k for k in accepted if message.startswith(f"{k} ")), None)
        raise _fail(path, f"economy.{message}" if named else f"[economy] {message}") from None
    return economy_id, params, economy


def _run_section(path: Path, table: dict[str, Any]) -> dict[str, int]:
    unknown = sorted(set(table) - set(_RUN_KEYS))
    if unknown:
        raise _fail(path, f"unknown key run.{unknown[0]}; accepted: {', '.join(_RUN_KEYS)}")
    values = {**_RUN_KEYS, **table}
    for key, value in values.items():
        smallest = 0 if key == "seed" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < smallest:
            raise _fail(path, f"run.{key} must be an integer >= {smallest}, got {value!r}")
    return values


def load_economy_config(path: str | Path) -> EconomyConfig:
    """Read and check an economy config (module docstring); build the economy."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise _fail(path, f"cannot read the config ({err.strerror})") from None
    except tomllib.TOMLDecodeError as err:
        raise _fail(path, f"not valid TOML ({err})") from None
    for section, table in data.items():
        if section not in _SECTIONS or not isinstance(table, dict):
            raise _fail(path, f"unknown section [{section}]; sections: {', '.join(_SECTIONS)}")
    if "economy" not in data:
        raise _fail(path, "the [economy] section is missing")
    economy_id, params, economy = _economy(path, data["economy"])

    leader_table = dict(data.get("leader", {}))
    leader = _choice(path, "leader", "algorithm", leader_table.pop("algorithm", "pbrl-nash"),
                     LEADERS)
    leader_config = _dataclass(path, "leader", LEADERS[leader][0], leader_table)

    followers = dict(data.get("followers", {}))
    learner = _choice(path, "followers", "learner", followers.pop("learner", "best-response"),
                      LEARNERS)
    if "tau" not in followers:
        raise _fail(path, "followers.tau is missing (the followers' entropy temperature, > 0)")
    tau = followers.pop("tau")
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not math.isfinite(tau) \
            or tau <= 0:
        raise _fail(path, f"followers.tau must be a finite number > 0, got {tau!r}")
    learner_config = _dataclass(path, "followers", LEARNERS[learner][0], followers)

    run = _run_section(path, data.get("run", {}))
    return EconomyConfig(
        economy_id=economy_id, economy_params=params, economy=economy, leader=leader,
        leader_config=leader_config, learner=learner, learner_config=learner_config,
        tau=float(tau), source=str(path), **run)


def _write_metrics(path: Path, rows: tuple[dict[str, float], ...]) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def _draw(path: Path, config: EconomyConfig, result: EconomyMatchResult) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    its = [row["iteration"] for row in result.rows]
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    ax.plot(its, [row["equilibrium_net_welfare"] for row in result.rows],
            label="at the followers' equilibrium")
    ax.plot(its, [row["net_welfare"] for row in result.rows], ls=":",
            label="at the followers' play")
    ax.axhline(result.baseline_net_welfare, color="grey", ls="--",
               label="no-incentive equilibrium")
    ax.set_xlabel(f"{config.leader} iteration")
    ax.set_ylabel("net welfare (W - c payments)")
    ax.set_title(f"{config.economy.name}: {config.leader} vs {config.learner}, "
                 f"tau={config.tau:g}", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_economy(config: EconomyConfig, out: str | Path) -> EconomyRun:
    """Play the match of ``config`` and write its four files into the existing directory ``out``
    (the CLI hands it a staging directory, renamed into place only when all are written)."""
    import time

    out = Path(out)
    (out / "config.json").write_text(json.dumps(config.as_json(), indent=2) + "\n",
                                     encoding="utf-8")
    economy = config.economy
    leader = LEADERS[config.leader][1](config.leader_config)
    learner_cls = LEARNERS[config.learner][1]
    learners = [learner_cls(i, config.learner_config) for i in range(economy.n_followers)]
    start = time.process_time()
    result = play_economy(economy, config.tau, leader, learners, config.iterations,
                          seed=config.seed, follower_steps=config.follower_steps,
                          metrics_every=config.metrics_every)
    cpu = time.process_time() - start
    _write_metrics(out / "metrics.csv", result.rows)
    last = result.rows[-1]
    summary = {
        "config": config.source, "economy": config.economy_id, "name": economy.name,
        "n_followers": economy.n_followers, "leader": config.leader,
        "learner": config.learner, "tau": config.tau, "seed": config.seed,
        "iterations": config.iterations,
        "baseline_net_welfare": result.baseline_net_welfare,
        "baseline_welfare": result.baseline_welfare,
        "final": last,
        "net_welfare_gain": last["equilibrium_net_welfare"] - result.baseline_net_welfare,
        "incentive_levels": dict(zip(economy.instrument_names,
                                     map(float, economy.incentives.levels(result.x)),
                                     strict=True)),
        "x": [float(v) for v in result.x.ravel()],
        "cpu_seconds": cpu,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    _draw(out / "net_welfare.png", config, result)
    return EconomyRun(result, summary)
