"""A config's ``[incentives]`` section: a planner's linear incentives on an economy's followers'
game, given as data, with no package code (docs/theory.md §7.1).

::

    [game]
    id = "stackelberg/commons-v0"     # an economy: its followers' game is what is incentivized
    n_followers = 3

    [incentives]
    features = "per-action"           # or "per-state-action", an array (n, S, A, K) written in
                                      # the TOML, or "my_features.py:phi" (phi(game) -> array)
    kind = "box"                      # or "budget"
    lo = -0.5                         # box: a number or one per instrument
    hi = 0.5
    # budget = 1.0                    # budget: the total of the (non-negative) levels
    payment_cost = 1.0                # c: the planner's cost per unit paid (default 1)

The section replaces the economy's own incentives: each follower ``i`` then faces
``r_i + Phi_i g(x)`` (:class:`stackelberg.incentives.LinearIncentives`) and every transfer
counts as paid. A function in a file runs only because the config names it, by the same rule
as a game builder (``"path/to/file.py:function"``, relative to the config file; a module path
such as ``"os:system"`` is refused without importing anything): it receives the followers'
game (a :class:`stackelberg.bilevel.FollowerModel`) and returns the features.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stackelberg.economy import IncentiveEconomy
from stackelberg.incentives import FEATURE_MAPS, Box, Budget, LinearIncentives

KEYS = ("features", "kind", "lo", "hi", "budget", "payment_cost")
RANGE_KINDS = ("box", "budget")


class IncentivesError(ValueError):
    """A bad ``[incentives]`` section; the message names the key."""


def check_section(table: Mapping[str, Any]) -> None:
    """What can be checked without building the game: keys, kinds and types."""
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise IncentivesError(f"incentives.{unknown[0]}: unknown key; accepted: "
                              f"{', '.join(KEYS)}")
    if "features" not in table:
        raise IncentivesError("incentives.features is missing: name a feature map "
                              f"({', '.join(FEATURE_MAPS)}), write an array, or name a "
                              "function as 'path/to/file.py:function'")
    kind = table.get("kind", "box")
    if kind not in RANGE_KINDS:
        raise IncentivesError(f"incentives.kind must be one of {', '.join(RANGE_KINDS)}, got "
                              f"{kind!r}")
    needed = ("lo", "hi") if kind == "box" else ("budget",)
    wrong = [k for k in ("lo", "hi", "budget") if k in table and k not in needed]
    if wrong:
        raise IncentivesError(f"incentives.{wrong[0]} does not apply to kind = {kind!r} "
                              f"(it takes {', '.join(needed)})")
    missing = [k for k in needed if k not in table]
    if missing:
        raise IncentivesError(f"incentives.{missing[0]} is missing (kind = {kind!r} takes "
                              f"{', '.join(needed)})")
    cost = table.get("payment_cost", 1.0)
    if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not cost >= 0:
        raise IncentivesError(f"incentives.payment_cost must be a number >= 0, got {cost!r}")


def _features(value: Any, economy: IncentiveEconomy, base_dir: Path | None) -> np.ndarray:
    from games.user_games import call_user_builder, load_builder, split_file_id

    base = economy.base
    if isinstance(value, str) and value in FEATURE_MAPS:
        return FEATURE_MAPS[value](base)
    if isinstance(value, str):
        if split_file_id(value) is None:
            raise IncentivesError(f"incentives.features = {value!r}: a feature map is one of "
                                  f"{', '.join(FEATURE_MAPS)}, an array, or a function in a "
                                  "file named as 'path/to/file.py:function'")
        phi = load_builder(value, base_dir)
        return np.asarray(call_user_builder(value, phi, {"game": base}),
                          dtype=float)
    try:
        return np.array(value, dtype=float)
    except (TypeError, ValueError):
        raise IncentivesError("incentives.features: an array must be nested lists of numbers "
                              "of shape (followers, states, joint actions, instruments)"
                              ) from None


def _bound(table: Mapping[str, Any], key: str, size: int) -> np.ndarray:
    value = np.array(table[key], dtype=float) if not isinstance(table[key], bool) else None
    if value is None or value.ndim > 1 or (value.ndim == 1 and value.size != size):
        raise IncentivesError(f"incentives.{key} must be a number or one number per instrument "
                              f"({size}), got {table[key]!r}")
    return np.broadcast_to(value, (size,)).copy()


def designed_economy(economy: IncentiveEconomy, table: Mapping[str, Any],
                     base_dir: str | Path | None = None) -> IncentiveEconomy:
    """The economy's followers' game with the section's incentives instead of its own."""
    check_section(table)
    base = Path(base_dir) if base_dir is not None else None
    features = _features(table["features"], economy, base)
    if features.ndim != 4:
        raise IncentivesError(f"incentives.features must have 4 axes (followers, states, joint "
                              f"actions, instruments), got shape {features.shape}")
    K = features.shape[3]
    kind = table.get("kind", "box")
    try:
        levels = (Box(_bound(table, "lo", K), _bound(table, "hi", K)) if kind == "box"
                  else Budget(table["budget"], K))
        incentives = LinearIncentives(economy.base, features, levels)
        return IncentiveEconomy(
            name=f"{economy.name}+incentives", incentives=incentives,
            payment_cost=float(table.get("payment_cost", 1.0)),
            instrument_names=tuple(f"instrument_{k}" for k in range(K)),
            state_names=economy.state_names, action_names=economy.action_names)
    except ValueError as err:
        message = str(err)
        raise IncentivesError(message if message.startswith("incentives.")
                              else f"incentives: {message}") from None
