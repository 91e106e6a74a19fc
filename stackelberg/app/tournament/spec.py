"""A tournament spec: games x leaders x followers x seeds, from TOML to validated matches.

A spec (README, "Tournaments") has these top-level entries::

    seeds = [0, 1, 2]   the run seeds; every (game, leader, follower) plays each of them
    [budget]            MatchConfig fields shared by every match (iterations, metrics_every,
                        max_seconds, follower_steps, tolerance, patience)
    [[games]]           label (default: the id), id, then the game's parameters; or a user's
                        PettingZoo environment as in a run config (:mod:`games.user_envs`):
                        env = "my_env.py:MyEnv" (relative to the spec file; naming the file
                        runs it), roles = { leader = ..., follower = ... }, then the class's
                        keyword arguments
    [[leaders]]         label (default: the algorithm), algorithm, then its hyperparameters
    [[followers]]       label (default: the learner), learner, tau, then its hyperparameters
    [[exclude]]         game / leader / follower: a label or a list of labels; drops every
                        combination that matches all the keys given (optional)

**Sweeps** (:mod:`.sweep`): in a leader or follower entry, a list where the hyperparameter takes
one value (a number, boolean or string) expands into one entry per value, labelled
``pbrl-value[lam=10]``, ``pbrl-value[lam=100]`` for ``lam = [10, 100]``; several lists give
their product, the label naming the swept keys in the order the entry writes them
(``pbrl-value[lam=10,alpha_x=0.5]``). A field that itself holds a list (a tuple-typed field of
the config dataclass) is never expanded. An ``[[exclude]]`` label, or a command-line override
(:mod:`.overrides`), naming the entry as written (``pbrl-value``) covers all its points; the
report ranks the points as it ranks any other entries.

Each match becomes an :class:`~stackelberg.app.config.ExperimentConfig` through
:func:`~stackelberg.app.config.parse_config`, so a tournament validates exactly what
``stackelberg run`` validates. Its id is a hash of its resolved config: the same match has the
same id in every spec and every run, which is what lets a rerun skip what is already stored.

Everything is checked before any match runs, and an error names the entry it is about, as
``leaders[2] ("foo"): unknown algorithm 'bar'`` (entries are numbered from 0 in file order).
Every (game, leader, follower) combination is built once (:func:`build_experiment`, the seed
does not change what can be built), so combinations that cannot run, such as ``rac`` on a game
whose transitions depend on the leader's action, are refused up front too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import games
from stackelberg.app.config import (
    AGENT_KEYS,
    KIND_NAMES,
    ConfigError,
    ExperimentConfig,
    agent_kinds,
    build_experiment,
    load_toml,
    parse_config,
)
from stackelberg.app.tournament.entries import (
    BUDGET_KEYS,
    FOLLOWER,
    GAME,
    KINDS,
    LEADER,
    SECTION_PREFIX,
    Entry,
    EntryKind,
    Exclusion,
    parse_budget,
    parse_entries,
    parse_exclusions,
)
from stackelberg.app.tournament.overrides import apply_spec_overrides
from stackelberg.results import canonical_json

SPEC_KEYS = ("seeds", "budget", "games", "leaders", "followers", "exclude")
MATCH_ID_LENGTH = 16


@dataclass(frozen=True)
class Match:
    """One match of a tournament.

    Attributes
    ----------
    match_id : str
        First 16 hex digits of the SHA-1 of ``resolved`` as canonical JSON.
    game, leader, follower : str
        Labels of the entries the match was built from.
    seed : int
    config : ExperimentConfig
        What to run: progress bar off, a game builder's file path made absolute.
    resolved : dict
        ``config.resolved()``: every default filled in; what the id hashes and the store keeps.
    """

    match_id: str
    game: str
    leader: str
    follower: str
    seed: int
    config: ExperimentConfig
    resolved: Mapping[str, Any]

    def describe(self) -> str:
        return f"{self.game} x {self.leader} x {self.follower}, seed {self.seed}"


@dataclass(frozen=True)
class TournamentSpec:
    """A validated tournament: its entries and every match it plays, in a stable order
    (games, then leaders, then followers, then seeds, each in file order)."""

    games: tuple[Entry, ...]
    leaders: tuple[Entry, ...]
    followers: tuple[Entry, ...]
    seeds: tuple[int, ...]
    budget: Mapping[str, Any]
    exclude: tuple[Exclusion, ...]
    matches: tuple[Match, ...]

    def as_data(self) -> dict[str, Any]:
        """The spec as plain data, labels filled in: what the results store is bound to."""
        return {
            "seeds": list(self.seeds),
            "budget": dict(self.budget),
            **{kind.plural: [e.as_data() for e in getattr(self, kind.plural)] for kind in KINDS},
            "exclude": [x.as_data() for x in self.exclude],
        }


def match_id(resolved: Mapping[str, Any]) -> str:
    """The stable id of a match: a hash of its resolved config."""
    return hashlib.sha1(canonical_json(resolved).encode()).hexdigest()[:MATCH_ID_LENGTH]


# -- the parts of a spec -------------------------------------------------------------------


def _parse_seeds(value: Any) -> tuple[int, ...]:
    if value is None:
        raise ConfigError("seeds is missing: list the run seeds, e.g. seeds = [0, 1, 2]")
    if not isinstance(value, list) or not value:
        raise ConfigError(f"seeds must be a non-empty list of integers, got {value!r}")
    for k, seed in enumerate(value):
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"seeds[{k}] must be a non-negative integer, got {seed!r}")
        if seed in value[:k]:
            raise ConfigError(f"seeds[{k}]: seed {seed} is listed twice")
    return tuple(value)


# -- matches -------------------------------------------------------------------------------


def _experiment(game: Entry, leader: Entry, follower: Entry, budget: Mapping[str, Any],
                seed: int) -> ExperimentConfig:
    return parse_config({
        **game.config_data(),
        "leader": leader.section(),
        "follower": follower.section(),
        "run": {**budget, **leader.budget, "seed": seed, "progress": False},
    })


def _combination_matches(game: Entry, leader: Entry, follower: Entry, seeds: Sequence[int],
                         budget: Mapping[str, Any], base_dir: Path | None = None) -> list[Match]:
    """The matches of one combination, after building it once (the seed changes nothing
    that could fail to build)."""
    where = f"{game.where} x {leader.where} x {follower.where}"
    try:
        configs = [_experiment(game, leader, follower, budget, seed) for seed in seeds]
        build_experiment(dataclasses.replace(
            configs[0], game_id=games.absolute_game_id(configs[0].game_id, base_dir)))
    except ConfigError as err:
        raise ConfigError(
            f"{where}: {SECTION_PREFIX.sub('', str(err))}; if this combination cannot work, "
            "leave it out with an [[exclude]] entry") from None
    matches = []
    for config in configs:
        resolved = config.resolved()
        # a "path/to/file.py:function" game is found from the spec file's directory, which a
        # worker process or a Ray worker need not share; the id and the store keep it as written
        portable = dataclasses.replace(
            config, game_id=games.absolute_game_id(config.game_id, base_dir))
        matches.append(Match(match_id(resolved), game.label, leader.label, follower.label,
                             config.seed, portable, resolved))
    return matches


def _unplayable(game: Entry, leader: Entry, follower: Entry, base_dir: Path | None
                ) -> str | None:
    """Why the combination cannot be played (an agent that does not play the game's kind:
    a single-follower leader in an economy, ``pbrl-nash`` in a two-player game), or None."""
    kind = "simulator" if game.roles else games.game_kind(games.absolute_game_id(game.name,
                                                                                 base_dir))
    for entry in (leader, follower):
        if kind not in agent_kinds(AGENT_KEYS[entry.kind.section][1], entry.name):
            return (f"{game.label} x {leader.label} x {follower.label}: skipped, "
                    f"{entry.name} cannot play {KIND_NAMES.get(kind, kind)}")
    return None


def _expand(lists: Mapping[EntryKind, Sequence[Entry]], seeds: Sequence[int],
            budget: Mapping[str, Any], exclude: Sequence[Exclusion],
            base_dir: Path | None = None, note: Callable[[str], None] | None = None
            ) -> tuple[Match, ...]:
    matches: dict[str, Match] = {}
    for game, leader, follower in itertools.product(*(lists[kind] for kind in KINDS)):
        if any(x.drops(game, leader, follower) for x in exclude):
            continue
        # games of both kinds in one spec: an agent plays the kinds it can, the rest is noted
        why = _unplayable(game, leader, follower, base_dir)
        if why is not None:
            if note is not None:
                note(why)
            continue
        for match in _combination_matches(game, leader, follower, seeds, budget, base_dir):
            twin = matches.setdefault(match.match_id, match)
            if twin is not match:
                raise ConfigError(
                    f"{twin.describe()} and {match.describe()} are the same match (equal "
                    "resolved configs); remove the duplicate entry")
    if not matches:
        raise ConfigError("[[exclude]] (or leaders and followers that cannot play the games' "
                          "kinds) leaves out every combination: nothing to run")
    return tuple(matches.values())


def parse_spec(data: Mapping[str, Any], base_dir: str | Path | None = None,
               note: Callable[[str], None] | None = None) -> TournamentSpec:
    """Validate raw spec data (a parsed TOML document) and expand it into matches.

    A ``"path/to/file.py:function"`` game is found relative to ``base_dir`` (the spec file's
    directory; default the current directory); match ids and the store keep it as written.
    ``note`` receives one line per combination left out because an agent cannot play the
    game's kind.

    Raises
    ------
    ConfigError
        With a message naming the entry (or combination) that is wrong.
    """
    unknown = sorted(set(data) - set(SPEC_KEYS))
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r}; a tournament spec has "
                          f"{', '.join(SPEC_KEYS)}")
    seeds = _parse_seeds(data.get("seeds"))
    budget = parse_budget(data.get("budget", {}))
    base = Path(base_dir) if base_dir is not None else None
    lists = {kind: parse_entries(data, kind, base) for kind in KINDS}
    exclude = parse_exclusions(data.get("exclude", []), lists)
    matches = _expand(lists, seeds, budget, exclude, base, note)
    return TournamentSpec(games=lists[GAME], leaders=lists[LEADER], followers=lists[FOLLOWER],
                          seeds=seeds, budget=budget, exclude=exclude, matches=matches)


def load_spec(path: str | Path, overrides: Sequence[str] = (),
              note: Callable[[str], None] | None = None) -> TournamentSpec:
    """Read a tournament spec file, apply command-line ``overrides``
    (:mod:`~stackelberg.app.tournament.overrides`) and validate it.

    ``note`` receives one line per entry whose agent an override switched, naming the keys
    dropped.
    """
    overridden = apply_spec_overrides(load_toml(path), overrides)
    for line in overridden.notes if note is not None else ():
        note(line)
    return parse_spec(overridden.data, base_dir=Path(path).parent, note=note)


__all__ = ["BUDGET_KEYS", "FOLLOWER", "GAME", "KINDS", "LEADER", "Entry", "EntryKind",
           "Exclusion", "Match", "TournamentSpec", "load_spec", "match_id", "parse_spec"]
