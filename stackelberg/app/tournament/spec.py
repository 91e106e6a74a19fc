"""A tournament spec: games x leaders x followers x seeds, from TOML to validated matches.

A spec (README, "Tournaments") has these top-level entries::

    seeds = [0, 1, 2]   the run seeds; every (game, leader, follower) plays each of them
    [budget]            MatchConfig fields shared by every match (iterations, metrics_every,
                        max_seconds, follower_steps, tolerance, patience)
    [[games]]           label (default: the id), id, then the game's parameters
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
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import games
from stackelberg.app.config import (
    ConfigError,
    ExperimentConfig,
    build_experiment,
    load_toml,
    parse_config,
)
from stackelberg.app.tournament.overrides import apply_spec_overrides
from stackelberg.app.tournament.sweep import Variant, expand
from stackelberg.coordinator import MatchConfig
from stackelberg.results import canonical_json

SPEC_KEYS = ("seeds", "budget", "games", "leaders", "followers", "exclude")
#: MatchConfig fields a budget may set; the seed comes from ``seeds``, progress is the runner's.
BUDGET_KEYS = tuple(f.name for f in dataclasses.fields(MatchConfig) if f.name != "progress")
MATCH_ID_LENGTH = 16


@dataclass(frozen=True)
class EntryKind:
    """One of the three lists of a spec, and how its entries map onto a config section."""

    plural: str  # the spec's list: "games"
    section: str  # the experiment config's section: "game"
    name_key: str  # the key naming what the entry is: "id"


GAME = EntryKind("games", "game", "id")
LEADER = EntryKind("leaders", "leader", "algorithm")
FOLLOWER = EntryKind("followers", "follower", "learner")
KINDS = (GAME, LEADER, FOLLOWER)


@dataclass(frozen=True)
class Entry:
    """One ``[[games]]``, ``[[leaders]]`` or ``[[followers]]`` entry.

    Attributes
    ----------
    kind : EntryKind
    index : int
        Position in its list, from 0.
    label : str
        The entry's name in results (defaults to ``name``); unique within its list.
    name : str
        The game id, the leader algorithm or the follower learner.
    params : dict
        Every other key as written (a follower's ``tau`` included).
    budget : dict
        A leader's own ``budget`` table: keys of ``[budget]`` that override the tournament's
        for this leader's matches (e.g. fewer iterations for a leader that draws many samples
        per iteration); empty for games and followers.
    written_label : str
        For a point of a sweep, the label of the entry as written (``pbrl-value`` for
        ``pbrl-value[lam=10]``); empty otherwise.
    """

    kind: EntryKind
    index: int
    label: str
    name: str
    params: Mapping[str, Any]
    budget: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    written_label: str = ""

    @property
    def group(self) -> str:
        """The label of the entry as the spec writes it (a sweep's points share it)."""
        return self.written_label or self.label

    @property
    def where(self) -> str:
        """How error messages name the entry: ``leaders[2] ("foo")``."""
        return f'{self.kind.plural}[{self.index}] ("{self.label}")'

    def section(self) -> dict[str, Any]:
        """The entry as a section of an experiment config."""
        return {self.kind.name_key: self.name, **self.params}

    def as_data(self) -> dict[str, Any]:
        """The entry as written, with its label filled in."""
        data = {"label": self.label, **self.section()}
        if self.budget:
            data["budget"] = dict(self.budget)
        return data


@dataclass(frozen=True)
class Exclusion:
    """An ``[[exclude]]`` entry: labels per list; an empty set matches every entry."""

    games: frozenset[str] = frozenset()
    leaders: frozenset[str] = frozenset()
    followers: frozenset[str] = frozenset()

    def drops(self, game: Entry, leader: Entry, follower: Entry) -> bool:
        """Whether the combination of these entries is excluded (a sweep's label as written
        names every point of it)."""
        return all(not labels or entry.label in labels or entry.group in labels
                   for labels, entry in
                   ((self.games, game), (self.leaders, leader), (self.followers, follower)))

    def as_data(self) -> dict[str, list[str]]:
        keys = {kind.section: getattr(self, kind.plural) for kind in KINDS}
        return {key: sorted(labels) for key, labels in keys.items() if labels}


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


def _parse_budget(value: Any, where: str = "budget") -> dict[str, Any]:
    """Validate a ``[budget]`` table (or a leader's own, named ``where`` in messages)."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table of key = value pairs")
    if "seed" in value:
        raise ConfigError(f"{where}.seed: a tournament's seeds are the top-level list `seeds`")
    unknown = sorted(set(value) - set(BUDGET_KEYS))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; accepted: "
                          f"{', '.join(sorted(BUDGET_KEYS))}")
    try:
        MatchConfig(**value)
    except (TypeError, ValueError) as err:
        message = str(err)  # MatchConfig names its fields run.<field>
        raise ConfigError(f"{where}.{message[4:]}" if message.startswith("run.")
                          else f"{where}: {message}") from None
    return dict(value)


_SECTION_PREFIX = re.compile(r"^(game|leader|follower)( \([^)]*\))?: ")


def _check_entry(entry: Entry, base_dir: Path | None = None) -> None:
    """Validate one entry on its own: a game's model is built, an agent's config is made."""
    try:
        if entry.kind is GAME:
            try:
                games.make_model(games.absolute_game_id(entry.name, base_dir), **entry.params)
            except (TypeError, ValueError) as err:
                raise ConfigError(str(err)) from None
            except Exception as err:  # a user's builder failed in its own way
                raise ConfigError(f"the game's builder raised {type(err).__name__}: {err}"
                                  ) from None
        else:  # the game is not looked at by parse_config
            parse_config({"game": {"id": "-"}, entry.kind.section: entry.section()})
    except ConfigError as err:
        raise ConfigError(f"{entry.where}: {_SECTION_PREFIX.sub('', str(err))}") from None


def _parse_entries(data: Mapping[str, Any], kind: EntryKind,
                   base_dir: Path | None = None) -> tuple[Entry, ...]:
    items = data.get(kind.plural)
    if items is None or items == []:
        raise ConfigError(f"{kind.plural}: the list is empty; add at least one "
                          f"[[{kind.plural}]] entry")
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ConfigError(f"{kind.plural} must be a list of tables ([[{kind.plural}]] entries)")
    entries: list[Entry] = []
    for index, item in enumerate(items):
        params = dict(item)
        name = params.pop(kind.name_key, None)
        label = params.pop("label", name)
        where = f"{kind.plural}[{index}]"
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: {kind.name_key} is missing or not a string "
                              f"(got {name!r})")
        if not isinstance(label, str) or not label.strip():
            raise ConfigError(f"{where}: label must be a non-empty string, got {label!r}")
        budget = params.pop("budget", {})
        if budget and kind is not LEADER:
            raise ConfigError(f"{where}: only a leader entry may have its own budget")
        budget = _parse_budget(budget, f"{where}.budget") if budget else {}
        variants = [Variant(label, params)] if kind is GAME else \
            expand(kind.section, name, label, params, where)
        for variant in variants:
            entry = Entry(kind, index, variant.label, name, variant.params, budget,
                          written_label=label if variant.swept else "")
            for other in entries:
                if other.label == entry.label:
                    raise ConfigError(
                        f'{where}: label "{entry.label}" is already used by {other.where}; '
                        "labels name the entries in results, give each a distinct label")
            _check_entry(entry, base_dir)
            entries.append(entry)
    return tuple(entries)


def _parse_exclusions(value: Any, lists: Mapping[EntryKind, Sequence[Entry]]
                      ) -> tuple[Exclusion, ...]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ConfigError("exclude must be a list of tables ([[exclude]] entries)")
    keys = {kind.section: kind for kind in KINDS}
    exclusions = []
    for index, item in enumerate(value):
        where = f"exclude[{index}]"
        unknown = sorted(set(item) - set(keys))
        if unknown or not item:
            raise ConfigError(f"{where}: {f'unknown key {unknown[0]!r}; ' if unknown else ''}"
                              "an exclusion names labels under game, leader and/or follower")
        sets = {}
        for key, labels in item.items():
            labels = [labels] if isinstance(labels, str) else labels
            known = list(dict.fromkeys(label for e in lists[keys[key]]
                                       for label in (e.group, e.label)))
            if not isinstance(labels, list) or not labels:
                raise ConfigError(f"{where}.{key} must be a label or a non-empty list of labels")
            for label in labels:
                if label not in known:
                    raise ConfigError(f"{where}.{key}: no {key} is labelled {label!r}; labels: "
                                      f"{', '.join(map(repr, known))}")
            sets[keys[key].plural] = frozenset(labels)
        exclusions.append(Exclusion(**sets))
    return tuple(exclusions)


# -- matches -------------------------------------------------------------------------------


def _experiment(game: Entry, leader: Entry, follower: Entry, budget: Mapping[str, Any],
                seed: int) -> ExperimentConfig:
    return parse_config({
        "game": game.section(),
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
            f"{where}: {_SECTION_PREFIX.sub('', str(err))}; if this combination cannot work, "
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


def _expand(lists: Mapping[EntryKind, Sequence[Entry]], seeds: Sequence[int],
            budget: Mapping[str, Any], exclude: Sequence[Exclusion],
            base_dir: Path | None = None) -> tuple[Match, ...]:
    matches: dict[str, Match] = {}
    for game, leader, follower in itertools.product(*(lists[kind] for kind in KINDS)):
        if any(x.drops(game, leader, follower) for x in exclude):
            continue
        for match in _combination_matches(game, leader, follower, seeds, budget, base_dir):
            twin = matches.setdefault(match.match_id, match)
            if twin is not match:
                raise ConfigError(
                    f"{twin.describe()} and {match.describe()} are the same match (equal "
                    "resolved configs); remove the duplicate entry")
    if not matches:
        raise ConfigError("[[exclude]] leaves out every combination: nothing to run")
    return tuple(matches.values())


def parse_spec(data: Mapping[str, Any], base_dir: str | Path | None = None) -> TournamentSpec:
    """Validate raw spec data (a parsed TOML document) and expand it into matches.

    A ``"path/to/file.py:function"`` game is found relative to ``base_dir`` (the spec file's
    directory; default the current directory); match ids and the store keep it as written.

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
    budget = _parse_budget(data.get("budget", {}))
    base = Path(base_dir) if base_dir is not None else None
    lists = {kind: _parse_entries(data, kind, base) for kind in KINDS}
    exclude = _parse_exclusions(data.get("exclude", []), lists)
    matches = _expand(lists, seeds, budget, exclude, base)
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
    return parse_spec(overridden.data, base_dir=Path(path).parent)


__all__ = ["Entry", "Exclusion", "Match", "TournamentSpec", "load_spec", "match_id",
           "parse_spec"]
