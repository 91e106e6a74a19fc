"""The registry of incentive economies: a second kind of game, next to :data:`games.GAMES`.

An economy's builder returns a :class:`~stackelberg.economy.IncentiveEconomy` (a planner and n
followers playing a game), not a two-player :class:`~stackelberg.model.GameModel`, and its
environments are :mod:`games.economy_env`'s. So economies are listed here, under ids in the same
``stackelberg/`` namespace, and registered with PettingZoo next to the Stackelberg games
(:func:`register_economies`, called when :mod:`games` is imported).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pettingzoo

from games.commons import commons_economy
from games.economy_env import EconomyAECEnv, EconomyParallelEnv
from games.registry import GameInfo, _check_parameters
from stackelberg.economy import IncentiveEconomy

ECONOMY_ENVS = {"parallel": EconomyParallelEnv, "aec": EconomyAECEnv}

ECONOMIES: dict[str, GameInfo] = {
    info.id: info
    for info in (
        GameInfo(
            id="stackelberg/commons-v0",
            builder=commons_economy,
            description="Commons: n harvesters deplete a regrowing stock; a planner taxes "
            "effort and subsidizes rest within a budget",
        ),
    )
}


def make_economy(economy_id: str, **params: Any) -> IncentiveEconomy:
    """Build a registered economy; unknown ids and parameters are refused by name."""
    if economy_id not in ECONOMIES:
        raise ValueError(f"unknown economy {economy_id!r}; known: {', '.join(sorted(ECONOMIES))}")
    info = ECONOMIES[economy_id]
    kwargs = {**copy.deepcopy(dict(info.defaults)), **params}
    _check_parameters(economy_id, info.builder, kwargs)
    return info.builder(**kwargs)


def make_economy_env(economy_id: str, kind: str = "parallel", max_cycles: int | None = None,
                     render_mode: str | None = None, *, observation: str = "onehot",
                     discount_as_termination: bool = False, **params: Any
                     ) -> EconomyParallelEnv | EconomyAECEnv:
    """A PettingZoo environment of a registered economy (options as :func:`games.make_env`)."""
    if kind not in ECONOMY_ENVS:
        raise ValueError(f"kind must be one of {sorted(ECONOMY_ENVS)}, got {kind!r}")
    return ECONOMY_ENVS[kind](make_economy(economy_id, **params), max_cycles=max_cycles,
                              render_mode=render_mode, observation=observation,
                              discount_as_termination=discount_as_termination, name=economy_id)


@dataclass(frozen=True)
class EconomyEntryPoint:
    """PettingZoo entry point: ``EconomyEntryPoint(id, kind)(**options, **params)``."""

    economy_id: str
    kind: str

    def __call__(self, **options: Any) -> EconomyParallelEnv | EconomyAECEnv:
        return make_economy_env(self.economy_id, self.kind, **options)


def register_economies() -> None:
    """Register every economy in PettingZoo's ``aec`` and ``parallel`` registries (idempotent)."""
    registries = {"aec": pettingzoo.aec_registry, "parallel": pettingzoo.parallel_registry}
    for info in ECONOMIES.values():
        for kind, registry in registries.items():
            if info.id not in registry:
                pettingzoo.register(kind, info.id, entry_point=EconomyEntryPoint(info.id, kind),
                                    kwargs=copy.deepcopy(dict(info.defaults)))
