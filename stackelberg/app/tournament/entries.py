"""The entries of a tournament spec, each parsed and checked on its own: ``[budget]``,
``[[games]]``, ``[[leaders]]`` and ``[[followers]]`` (a sweep expanded into its points,
:mod:`.sweep`), and ``[[exclude]]``. :mod:`.spec` combines them into matches.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import games
from games.user_envs import UserEnvError, check_env_id, check_roles, user_env_problem
from stackelberg.app.config import (
    AGENT_KEYS,
    DEFAULT_TAU,
    ConfigError,
    agent_kinds,
    parse_config,
)
from stackelberg.app.tournament.sweep import Variant, expand
from stackelberg.coordinator import MatchConfig

#: MatchConfig fields a budget may set; the seed comes from ``seeds``, progress is the runner's.
BUDGET_KEYS = tuple(f.name for f in dataclasses.fields(MatchConfig) if f.name != "progress")


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
    roles : dict
        For a game entry naming a user's PettingZoo environment (``env = "file.py:Class"``,
        :mod:`games.user_envs`): its agents that play leader and follower (and optionally
        ``gamma``); empty otherwise.
    """

    kind: EntryKind
    index: int
    label: str
    name: str
    params: Mapping[str, Any]
    budget: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    written_label: str = ""
    roles: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> str:
        """The key naming what the entry is: ``env`` for a user's environment, else the
        list's (``id``, ``algorithm``, ``learner``)."""
        return "env" if self.roles else self.kind.name_key

    @property
    def group(self) -> str:
        """The label of the entry as the spec writes it (a sweep's points share it)."""
        return self.written_label or self.label

    @property
    def where(self) -> str:
        """How error messages name the entry: ``leaders[2] ("foo")``."""
        return f'{self.kind.plural}[{self.index}] ("{self.label}")'

    def section(self) -> dict[str, Any]:
        """The entry as a section of an experiment config (a user's environment's roles are a
        section of their own, :meth:`config_data`)."""
        return {self.key: self.name, **self.params}

    def config_data(self) -> dict[str, dict[str, Any]]:
        """The sections of an experiment config this entry gives: its own, and ``roles``."""
        return {self.kind.section: self.section(), **({"roles": dict(self.roles)}
                                                      if self.roles else {})}

    def as_data(self) -> dict[str, Any]:
        """The entry as written, with its label filled in."""
        data = {"label": self.label, **self.section()}
        if self.roles:
            data["roles"] = dict(self.roles)
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


def parse_budget(value: Any, where: str = "budget") -> dict[str, Any]:
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



SECTION_PREFIX = re.compile(r"^(game|leader|follower)( \([^)]*\))?: ")


#: A game of each kind an agent entry is checked against (its config does not read the game).
_KIND_GAMES = {"game": "-", "economy": "stackelberg/commons-v0",
               "simulator": "stackelberg/duopoly-v0", "text": "stackelberg/happy-text-v0"}


def _check_agent(entry: Entry) -> None:
    """An agent entry is valid if its config is, for one of the kinds of game it plays (a
    ``best-response`` entry with ``damping`` is the economy form's)."""
    table = AGENT_KEYS[entry.kind.section][1]
    errors = []
    for kind in [k for k in agent_kinds(table, entry.name) if k in _KIND_GAMES] or ["game"]:
        try:
            parse_config({"game": {"id": _KIND_GAMES[kind]},
                          entry.kind.section: entry.section()})
            return
        except ConfigError as err:
            errors.append(err)
    raise errors[0]


def _check_entry(entry: Entry, base_dir: Path | None = None) -> None:
    """Validate one entry on its own: a game's model is built, an agent's config is made."""
    try:
        if entry.kind is GAME and entry.roles:
            _check_user_env(entry, base_dir)
        elif entry.kind is GAME:
            game_id = games.absolute_game_id(entry.name, base_dir)
            kind = games.game_kind(game_id)
            if kind == "network":
                raise ConfigError(f"{game_id!r} is a toll network: a tournament plays games, "
                                  "economies and bilevel problems")
            try:
                if kind == "economy":
                    games.make_economy(game_id, **entry.params)
                elif kind == "simulator":
                    games.make_simulated(game_id, DEFAULT_TAU, **entry.params)
                elif kind in ("problem", "text"):
                    games.make_problem(game_id, DEFAULT_TAU, **entry.params)
                else:
                    games.make_model(game_id, **entry.params)
            except (TypeError, ValueError) as err:
                raise ConfigError(str(err)) from None
            except Exception as err:  # a user's builder failed in its own way
                raise ConfigError(f"the game's builder raised {type(err).__name__}: {err}"
                                  ) from None
        else:
            _check_agent(entry)
    except ConfigError as err:
        raise ConfigError(f"{entry.where}: {SECTION_PREFIX.sub('', str(err))}") from None


def _check_user_env(entry: Entry, base_dir: Path | None) -> None:
    """Build the user's environment named by a game entry (this runs the file it names, and
    only that file) and check its roles against its agents; messages name the entry's keys."""
    env_id = games.absolute_game_id(entry.name, base_dir)
    try:
        user_env_problem(env_id, entry.roles, DEFAULT_TAU, entry.params)
    except UserEnvError as err:  # its messages name the run config's keys: game.env, roles.*
        message = re.sub(r"^game\.env\b", "env", str(err))
        raise ConfigError(message.replace("the [game] parameters", "the parameters")) from None


def _user_env_entry(params: dict[str, Any], where: str) -> tuple[str | None, dict[str, Any]]:
    """A game entry's ``env`` and ``roles`` (popped from ``params``), checked without running
    anything: ``(None, {})`` for a registered game or a builder (``id``)."""
    if "env" not in params:
        if "roles" in params:
            raise ConfigError(f"{where}: roles maps a user's environment's agents to the roles: "
                              "it needs env = 'path/to/file.py:Class' (in place of id)")
        return None, {}
    if "id" in params:
        raise ConfigError(f"{where}: has both id and env: name a registered game (id) or a "
                          "PettingZoo environment class in a file (env), not both")
    roles = params.pop("roles", None)
    try:
        env_id = check_env_id(params.pop("env"))
        if roles is None:
            raise UserEnvError("env names an environment: add roles = { leader = ..., "
                               "follower = ... } naming its agents")
        if not isinstance(roles, dict):
            raise UserEnvError("roles must be a table { leader = ..., follower = ... }, got "
                               f"{roles!r}")
        check_roles(roles)
    except UserEnvError as err:
        message = str(err)
        raise ConfigError(f"{where}: {'' if message.startswith(('env', 'roles')) else 'env = '}"
                          f"{message}") from None
    return env_id, roles


def parse_entries(data: Mapping[str, Any], kind: EntryKind,
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
        where = f"{kind.plural}[{index}]"
        env_id, roles = _user_env_entry(params, where) if kind is GAME else (None, {})
        name = env_id if env_id is not None else params.pop(kind.name_key, None)
        label = params.pop("label", name)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: {kind.name_key} is missing or not a string "
                              f"(got {name!r})")
        if not isinstance(label, str) or not label.strip():
            raise ConfigError(f"{where}: label must be a non-empty string, got {label!r}")
        budget = params.pop("budget", {})
        if budget and kind is not LEADER:
            raise ConfigError(f"{where}: only a leader entry may have its own budget")
        budget = parse_budget(budget, f"{where}.budget") if budget else {}
        variants = [Variant(label, params)] if kind is GAME else \
            expand(kind.section, name, label, params, where)
        for variant in variants:
            entry = Entry(kind, index, variant.label, name, variant.params, budget,
                          written_label=label if variant.swept else "", roles=roles)
            for other in entries:
                if other.label == entry.label:
                    raise ConfigError(
                        f'{where}: label "{entry.label}" is already used by {other.where}; '
                        "labels name the entries in results, give each a distinct label")
            _check_entry(entry, base_dir)
            entries.append(entry)
    return tuple(entries)


def parse_exclusions(value: Any, lists: Mapping[EntryKind, Sequence[Entry]]
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


__all__ = ["BUDGET_KEYS", "Entry", "EntryKind", "Exclusion", "FOLLOWER", "GAME", "KINDS", "LEADER",
           "SECTION_PREFIX", "parse_budget", "parse_entries", "parse_exclusions"]
