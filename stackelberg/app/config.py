"""Experiment configuration: a TOML file -> a validated :class:`ExperimentConfig` -> objects.

A config has four sections (README, "Configuration")::

    [game]      id = "stackelberg/matrix-v0", then the game's own parameters
    [leader]    algorithm = "pbrl-value", then the algorithm's hyperparameters
    [follower]  learner = "best-response", tau = 0.01, then the learner's hyperparameters
    [run]       iterations, seed, follower_steps, tolerance, patience, max_seconds, metrics_every
    [incentives] optional, for an economy: the planner's feature map, range and payment cost
                 (:mod:`stackelberg.app.incentives_section`)
    [roles]     with ``[game] env = "my_env.py:MyEnv"`` (a user's PettingZoo environment in
                place of ``id``): the agents that play leader and follower
                (:mod:`games.user_envs`)

Configs are data: read with ``tomllib``, nothing is evaluated. Unknown sections and keys, values
of the wrong type (checked against the field annotations of the config dataclasses and of a
registered game's builder: a boolean field takes only true/false, a number field refuses
booleans and strings) and out-of-range values raise :class:`ConfigError` with a message naming
the key. The places a config runs code are a game id naming a builder in a file
(``"path/to/file.py:function"``, relative to the config file) and ``[game] env`` naming an
environment class in a file (``"path/to/file.py:Class"``): naming the file runs it.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import games
from agents.registry import FOLLOWERS, LEADERS, AgentSpec
from games.happy_text_problem import HappyTextProblem
from games.user_envs import UserEnvError, check_env_id, check_roles, user_env_problem
from stackelberg.app.incentives_section import IncentivesError, check_section, designed_economy
from stackelberg.coordinator import MatchConfig
from stackelberg.problem import BilevelProblem, StackelbergProblem
from stackelberg.seeding import run_streams
from stackelberg.simulated import SimulatedProblem
from stackelberg.validation import check_types

SECTIONS = ("game", "leader", "follower", "run", "incentives", "roles")
DEFAULT_TAU = 0.01
#: The follower's ``tau`` of a kind where it means something else than an entropy weight: happy
#: text's KL weight to the pre-trained model (docs/theory.md §8.2).
DEFAULT_TAUS = {"text": 0.5}


def default_tau(kind: str) -> float:
    """``[follower] tau`` when a config of a game of ``kind`` gives none."""
    return DEFAULT_TAUS.get(kind, DEFAULT_TAU)


class ConfigError(ValueError):
    """A configuration is malformed or names something that does not exist."""


@dataclass(frozen=True)
class ExperimentConfig:
    """One match, fully resolved: what ``config.json`` of a run directory holds.

    Attributes
    ----------
    game_id : str
        A registered game id (``stackelberg games`` lists them), a user builder
        ``"path/to/file.py:function"`` (absolute once read from a config file), or a game an
        installed package registers in the entry-point group ``stackelberg.games``.
    game_params : dict
        Keyword arguments of the game builder.
    leader : str
        Leader algorithm name (``pbrl-value``, ``pbrl-bellman``, ``hypergradient``, ...).
    leader_params : dict
        Hyperparameters of the leader's config dataclass.
    follower : str
        Follower learner name (``best-response``, ``mirror-descent``, ``soft-q``).
    follower_params : dict
        Hyperparameters of the follower's config dataclass.
    tau : float
        Entropy weight of the follower's objective (docs/theory.md §1); > 0 makes its best
        response unique. For a text game (happy text) it is the follower's KL weight to the
        pre-trained model instead (docs/theory.md §8.2; default :data:`DEFAULT_TAUS`).
    seed : int
        The run's seed; every random stream derives from it.
    run : MatchConfig
        Iterations, follower steps per leader step, stopping rules.
    """

    game_id: str
    game_params: dict[str, Any] = field(default_factory=dict)
    leader: str = "pbrl-value"
    leader_params: dict[str, Any] = field(default_factory=dict)
    follower: str = "best-response"
    follower_params: dict[str, Any] = field(default_factory=dict)
    tau: float = DEFAULT_TAU
    seed: int = 0
    run: MatchConfig = field(default_factory=MatchConfig)
    #: An economy's ``[incentives]`` section (empty: the economy's own incentives).
    incentives: dict[str, Any] = field(default_factory=dict)
    #: A user's environment's ``[roles]`` (empty unless ``game_id`` names an environment
    #: class, ``[game] env``; :mod:`games.user_envs`).
    roles: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The registry kind of the game (:func:`games.game_kind`): ``"game"``, ``"economy"``,
        ``"problem"``, ``"simulator"`` (a user's environment is one) or ``"text"``."""
        return "simulator" if self.roles else games.game_kind(self.game_id)

    def resolved(self) -> dict[str, Any]:
        """The config as plain data, with every default filled in (for ``config.json``)."""
        leader_config = dataclasses.asdict(_agent_config(LEADERS, "leader", self.leader,
                                                         self.leader_params, self.kind))
        follower_config = dataclasses.asdict(_agent_config(FOLLOWERS, "follower", self.follower,
                                                           self.follower_params, self.kind))
        info = games.REGISTRY.get(self.game_id)
        game_defaults = info.parameters() if info is not None else {}
        resolved = {
            "game": {"id": self.game_id, **game_defaults, **self.game_params},
            "leader": {"algorithm": self.leader, **leader_config},
            "follower": {"learner": self.follower, "tau": self.tau, **follower_config},
            "run": {"seed": self.seed, **dataclasses.asdict(self.run)},
        }
        if self.incentives:  # only then: a match id hashes this, and older ids must stay
            resolved["incentives"] = dict(self.incentives)
        if self.roles:
            resolved["game"]["env"] = self.game_id
            resolved["roles"] = dict(self.roles)
        return resolved


#: How a message names a registry kind.
KIND_NAMES = {"game": "a two-player game", "economy": "an economy (a planner and n followers)",
              "network": "a toll network", "problem": "a bilevel problem",
              "simulator": "a game known only through its simulator (no exact model)",
              "text": "a language model's RLHF on its generated text (no exact model)"}
#: The default leader and follower learner of each kind.
DEFAULT_AGENTS = {"economy": ("pbrl-nash", "best-response"),
                  "simulator": ("rac-neural", "actor-critic"),
                  "text": ("rac-neural", "kl-policy-gradient")}


def agent_spec(table: dict[str, AgentSpec], section: str, name: str, kind: str = "game"
               ) -> AgentSpec:
    """The registered agent ``name`` in the form that plays ``kind``; a
    :class:`ConfigError` names the agent and the kinds it plays otherwise."""
    if name not in table:
        raise ConfigError(
            f"{section}: unknown {'algorithm' if section == 'leader' else 'learner'} {name!r}; "
            f"known: {', '.join(sorted(table))}"
        )
    spec = table[name].for_kind(kind)
    if spec is None:
        fit = sorted(n for n, s in table.items() if s.for_kind(kind) is not None)
        key = AGENT_KEYS[section][0]
        raise ConfigError(f"{section}: {name!r} cannot play {KIND_NAMES.get(kind, kind)}; "
                          f"{'those that can' if fit else 'none can'}: {', '.join(fit)} "
                          f"(change {section}.{key}, or the game in [game])")
    return spec


def agent_kinds(table: dict[str, AgentSpec], name: str) -> tuple[str, ...]:
    """The registry kinds the agent ``name`` plays (empty if it is not registered)."""
    spec = table.get(name)
    return () if spec is None else spec.all_kinds()


def _agent_config(table: dict[str, AgentSpec], section: str, name: str,
                  params: dict[str, Any], kind: str = "game") -> object:
    spec = agent_spec(table, section, name, kind)
    accepted = {f.name for f in dataclasses.fields(spec.config_class)} - {n for n, _ in spec.fixed}
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ConfigError(
            f"{section}.{unknown[0]}: unknown key for {name!r}; accepted: "
            f"{', '.join(sorted(accepted)) or '(none)'}"
        )
    try:
        # types first: a config's own range checks would compare a string with a number
        check_types(section, params, spec.config_class)
        return spec.make_config(**params)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{section} ({name}): {err}") from None


def parse_value(text: str) -> Any:
    """A command-line override value: a TOML value if it parses as one, else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


#: The key that names a section's agent, and the registry that knows the names.
AGENT_KEYS: dict[str, tuple[str, dict[str, AgentSpec]]] = {
    "leader": ("algorithm", LEADERS),
    "follower": ("learner", FOLLOWERS),
}
#: Keys every follower section takes besides its learner's dataclass fields.
FOLLOWER_COMMON_KEYS = ("tau",)


def agent_keys(section: str, name: str) -> set[str] | None:
    """The keys a ``[leader]``/``[follower]`` section naming ``name`` takes, in any of its
    forms (``None`` if the name is not registered: validation reports it)."""
    key, table = AGENT_KEYS[section]
    spec = table.get(name)
    if spec is None:
        return None
    common = FOLLOWER_COMMON_KEYS if section == "follower" else ()
    taken = {key, *common}
    for form in (spec, *spec.forms):
        fixed = {n for n, _ in form.fixed}
        taken |= {f.name for f in dataclasses.fields(form.config_class)} - fixed
    return taken


def switch_agent(section: str, old: dict[str, Any], new: dict[str, Any],
                 given: set[str]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Drop from ``new`` the keys of ``old``'s agent that the agent ``new`` names does not take.

    Switching ``leader.algorithm`` (or ``follower.learner``) on the command line starts from
    the new agent's defaults: a key written for the old one that the new one does not take is
    dropped, a key both take is kept, and a key ``given`` on the command line is never dropped
    (validation reports it if the new agent does not take it). Returns the section and the
    dropped keys; nothing is dropped when the agent did not change or is unknown.
    """
    key, table = AGENT_KEYS[section]
    default = "pbrl-value" if section == "leader" else "best-response"
    before, after = old.get(key, default), new.get(key, default)
    takes = agent_keys(section, after) if isinstance(after, str) else None
    if before == after or takes is None:
        return new, ()
    dropped = tuple(k for k in new if k not in takes and k not in given)
    return {k: v for k, v in new.items() if k not in dropped}, dropped


@dataclass(frozen=True)
class Overridden:
    """Config data after command-line overrides, and what switching an agent dropped."""

    data: dict[str, Any]
    #: One line per switched agent naming the keys dropped, e.g. for ``leader.algorithm=rac``.
    notes: tuple[str, ...] = ()


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> Overridden:
    """Apply ``section.key=value`` overrides to raw config data (a new dict is returned).

    ``leader.algorithm=X`` (or ``follower.learner=X``) starts from X's defaults: the file's
    keys X does not take are dropped (:func:`switch_agent`), each drop noted.
    """
    original = data
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    given: dict[str, set[str]] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        if section not in SECTIONS:
            raise ConfigError(f"override {item!r}: unknown section {section!r}; "
                              f"sections are {', '.join(SECTIONS)}")
        if not isinstance(data.get(section, {}), dict):
            raise ConfigError(f"[{section}] must be a table of key = value pairs")
        data.setdefault(section, {})[name] = parse_value(value.strip())
        given.setdefault(section, set()).add(name)
    notes = []
    for section, (key, _) in AGENT_KEYS.items():
        if key not in given.get(section, set()):
            continue
        old = original.get(section, {})
        data[section], dropped = switch_agent(section, old if isinstance(old, dict) else {},
                                              data[section], given[section])
        if dropped:
            notes.append(f"{section}.{key}={data[section][key]}: dropped "
                         f"{', '.join(f'{section}.{k}' for k in dropped)} (not taken by "
                         f"{data[section][key]}; it starts from its defaults)")
    return Overridden(data, tuple(notes))


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file, turning every failure into a :class:`ConfigError`."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from None
    except UnicodeDecodeError as err:
        bad = err.object[err.start:err.start + 1]
        raise ConfigError(f"{path} is not UTF-8 text (byte {err.start} is {bad!r}); a TOML "
                          "file is UTF-8") from None
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err}") from None


def _check_name(section: str, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{section}.{key} must be a string, got {value!r}")
    return value


def parse_config(data: dict[str, Any], base_dir: str | Path | None = None) -> ExperimentConfig:
    """Validate raw config data and return an :class:`ExperimentConfig`.

    ``base_dir`` is the config file's directory: a ``"path/to/file.py:function"`` game is
    resolved relative to it (and kept as an absolute path); without it, relative to the current
    directory when the game is built.
    """
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"unknown section [{unknown[0]}]; sections are "
                          f"{', '.join(f'[{s}]' for s in SECTIONS)}")
    for section in SECTIONS:
        if section in data and not isinstance(data[section], dict):
            raise ConfigError(f"[{section}] must be a table of key = value pairs")
    game = dict(data.get("game", {}))
    leader = dict(data.get("leader", {}))
    follower = dict(data.get("follower", {}))
    run = dict(data.get("run", {}))
    roles = dict(data.get("roles", {}))
    if "env" in game:
        game_id = _user_env(game, roles, base_dir)
        kind = "simulator"
    else:
        if roles:
            raise ConfigError("[roles] maps a user's environment's agents to the roles: it "
                              "needs game.env = 'path/to/file.py:Class' (in place of game.id)")
        if "id" not in game:
            raise ConfigError("game.id is missing: name a game (see `stackelberg games`), or "
                              "a PettingZoo environment class with game.env")
        game_id = _check_name("game", "id", game.pop("id"))
        if base_dir is not None:
            game_id = games.absolute_game_id(game_id, base_dir)
        kind = games.game_kind(game_id)
    if kind == "network":
        raise ConfigError(f"game.id = {game_id!r} is {KIND_NAMES[kind]}: run it with "
                          "`stackelberg tolls CONFIG`")
    if game_id in games.REGISTRY:  # a user's builder is not run to find its annotations
        try:
            check_types("game", game, games.REGISTRY[game_id].builder)
        except ValueError as err:
            raise ConfigError(str(err)) from None
    default_leader, default_follower = DEFAULT_AGENTS.get(kind, ("pbrl-value", "best-response"))
    leader_name = _check_name("leader", "algorithm", leader.pop("algorithm", default_leader))
    follower_name = _check_name("follower", "learner", follower.pop("learner", default_follower))
    tau = follower.pop("tau", default_tau(kind))
    # the followers of an economy play a game: its equilibrium needs a positive weight
    smallest = "> 0" if kind == "economy" else ">= 0"
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not np.isfinite(tau) \
            or tau < 0 or (kind == "economy" and tau == 0):
        raise ConfigError(f"follower.tau must be a finite number {smallest}, got {tau!r}")
    seed = run.pop("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"run.seed must be a non-negative integer, got {seed!r}")
    accepted = {f.name for f in dataclasses.fields(MatchConfig)}
    unknown_run = sorted(set(run) - accepted)
    if unknown_run:
        raise ConfigError(f"run.{unknown_run[0]}: unknown key; accepted: "
                          f"seed, {', '.join(sorted(accepted))}")
    try:
        check_types("run", run, MatchConfig)
        match = MatchConfig(**run)
    except (TypeError, ValueError) as err:
        raise ConfigError(str(err)) from None
    incentives = _incentives(dict(data.get("incentives", {})), kind, base_dir)
    config = ExperimentConfig(game_id=game_id, game_params=game, leader=str(leader_name),
                              leader_params=leader, follower=str(follower_name),
                              follower_params=follower, tau=float(tau), seed=seed, run=match,
                              incentives=incentives, roles=roles)
    # validate the agents' hyperparameters now, before anything runs
    leader_config = _agent_config(LEADERS, "leader", config.leader, config.leader_params, kind)
    needed = getattr(leader_config, "minimum_iterations", lambda: 1)()
    if match.iterations < needed:
        raise ConfigError(f"run.iterations = {match.iterations} is too few for leader "
                          f"({config.leader}): it needs at least {needed}")
    _agent_config(FOLLOWERS, "follower", config.follower, config.follower_params, kind)
    return config


def _user_env(game: dict[str, Any], roles: dict[str, Any], base_dir: str | Path | None
              ) -> str:
    """``game.env`` made absolute (``game`` keeps the environment's keyword arguments), after
    checking ``[roles]`` on its own; the user's file is not run here."""
    if "id" in game:
        raise ConfigError("[game] has both id and env: name a registered game (id) or a "
                          "PettingZoo environment class in a file (env), not both")
    try:
        env_id = check_env_id(game.pop("env"))
    except UserEnvError as err:
        raise ConfigError(f"game.env = {err}") from None
    if not roles:
        raise ConfigError("game.env names an environment: add a [roles] section with leader = "
                          "and follower = naming its agents")
    try:
        check_roles(roles)
    except UserEnvError as err:
        raise ConfigError(str(err)) from None
    # without base_dir kept as written (as game.id is): a tournament's match id hashes it
    return env_id if base_dir is None else games.absolute_game_id(env_id, base_dir)


def _incentives(table: dict[str, Any], kind: str, base_dir: str | Path | None
                ) -> dict[str, Any]:
    """The checked ``[incentives]`` section, a feature function's file made absolute."""
    if not table:
        return table
    if kind != "economy":
        raise ConfigError("[incentives] designs incentives on an economy's followers' game: "
                          f"game.id must name an economy (`stackelberg games`), not "
                          f"{KIND_NAMES.get(kind, kind)}")
    try:
        check_section(table)
    except IncentivesError as err:
        raise ConfigError(str(err)) from None
    features = table["features"]
    if isinstance(features, str) and base_dir is not None and ":" in features:
        table["features"] = games.absolute_game_id(features, base_dir)
    return table


def in_file(path: str | Path, err: ConfigError, overrides: list[str] | None = None
            ) -> ConfigError:
    """``err`` with the config file (and the command-line overrides, if any) named first."""
    given = f" (with {' '.join(overrides)} from the command line)" if overrides else ""
    return ConfigError(f"{path}{given}: {err}")


def load_config(path: str | Path, overrides: list[str] | None = None,
                note: Callable[[str], None] | None = None) -> ExperimentConfig:
    """Read, override and validate a config file; every message names the file.

    ``note`` receives one line per agent switched on the command line that dropped the
    file's keys (:func:`apply_overrides`); the command line prints it on stderr.
    """
    overridden = apply_overrides(load_toml(path), overrides or [])
    for line in overridden.notes if note is not None else ():
        note(line)
    try:
        return parse_config(overridden.data, base_dir=Path(path).parent)
    except ConfigError as err:
        raise in_file(path, err, overrides) from None


@dataclass
class Experiment:
    """The objects of one match, built from an :class:`ExperimentConfig`."""

    config: ExperimentConfig
    problem: BilevelProblem | SimulatedProblem | HappyTextProblem
    leader: Any
    followers: list[Any]

    @property
    def streams(self):
        return run_streams(self.config.seed, self.problem.n_followers)


def build_experiment(config: ExperimentConfig) -> Experiment:
    """Make the game, the problem, the leader and the followers; every user error becomes a
    :class:`ConfigError` here, before any run directory exists."""
    kind = config.kind
    problem = _build_problem(config, kind)
    leader_spec = agent_spec(LEADERS, "leader", config.leader, kind)
    follower_spec = agent_spec(FOLLOWERS, "follower", config.follower, kind)
    leader = leader_spec.factory(_agent_config(LEADERS, "leader", config.leader,
                                               config.leader_params, kind))
    follower_config = _agent_config(FOLLOWERS, "follower", config.follower,
                                    config.follower_params, kind)
    # an economy's learners are followers 0..n-1 of one profile
    followers = [follower_spec.factory(follower_config, i) if kind == "economy"
                 else follower_spec.factory(follower_config)
                 for i in range(problem.n_followers)]
    # a dry reset surfaces combinations that cannot run (e.g. hypergradient with tau = 0)
    streams = run_streams(config.seed, problem.n_followers)
    try:
        leader.reset(problem, streams.leader)
        for follower, rng in zip(followers, streams.followers, strict=True):
            follower.reset(problem, rng)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return Experiment(config=config, problem=problem, leader=leader, followers=followers)


def _designed(economy, incentives: dict[str, Any]):
    """The economy with the config's ``[incentives]``; a user's feature function that fails
    (its file, its call, its array) is named as the section's."""
    try:
        return designed_economy(economy, incentives)
    except IncentivesError as err:
        raise ConfigError(str(err)) from None
    except ValueError as err:  # GameBuildError too: the user's file or function failed
        raise ConfigError(f"incentives.features: {err}") from None


def _build_problem(config: ExperimentConfig, kind: str
                   ) -> BilevelProblem | SimulatedProblem | HappyTextProblem:
    """The bilevel problem of the config's game: a Stackelberg game's, an economy's, a
    problem's, a simulated one (a simulator-only game's, a user's environment's), or a text
    problem, whose metrics draw their own generations from the run's environment stream."""
    if config.roles:  # a user's environment: the messages name their keys already
        try:
            return user_env_problem(config.game_id, config.roles, config.tau, config.game_params)
        except UserEnvError as err:
            raise ConfigError(str(err)) from None
    try:
        if kind == "simulator":
            return games.make_simulated(config.game_id, config.tau, **config.game_params)
        if kind == "economy":
            economy = games.make_economy(config.game_id, **config.game_params)
            if config.incentives:
                return _designed(economy, config.incentives).problem(config.tau)
            return economy.problem(config.tau)
        if kind == "problem":
            return games.make_problem(config.game_id, config.tau, **config.game_params)
        if kind == "text":
            problem = games.make_problem(config.game_id, config.tau, **config.game_params)
            problem.seed(run_streams(config.seed).environment)
            return problem
        model = games.make_model(config.game_id, **config.game_params)
    except (TypeError, ValueError) as err:  # ModelError and GameBuildError are ValueErrors
        message, named = str(err), f"game {config.game_id!r}: "
        message = message.removeprefix(named)
        # an economy builder's messages start with the parameter's name
        if kind == "economy" and any(message.startswith(f"{key} ")
                                     for key in config.game_params):
            raise ConfigError(f"game.{message}") from None
        raise ConfigError(f"game.id = {config.game_id!r}: {message}") from None
    return StackelbergProblem(model, config.tau)
