"""The one registry of environments: ids -> builders, and the bridge to PettingZoo's own registry.

Every entry of :data:`REGISTRY` has a kind, which says what its builder (a pure function of
keyword parameters) returns and how a run uses it:

- ``"game"``: a two-player :class:`~stackelberg.model.GameModel` (``stackelberg run`` with any
  single-follower leader); :data:`GAMES` is the view of these;
- ``"economy"``: an :class:`~stackelberg.economy.IncentiveEconomy`, a planner and n followers
  playing a game (``stackelberg run`` with ``pbrl-nash``); :data:`ECONOMIES` is their view;
- ``"network"``: a congestion network with tolls, whose builder is its PettingZoo environment
  factory ``(kind, max_cycles, render_mode, **params)`` (``stackelberg tolls``);
  :data:`ENVIRONMENTS` is their view;
- ``"problem"``: a :class:`~stackelberg.problem.BilevelProblem` built directly (e.g. a single
  follower's incentive problem) by a builder that takes the follower's entropy weight as its
  keyword ``tau`` (:func:`make_problem`; ``stackelberg run`` with the exact leaders), with an
  environment factory if it has one;
- ``"simulator"``: a game with no exact model, known only through its PettingZoo environment:
  the builder takes ``tau`` as a ``"problem"``'s does and returns a
  :class:`~stackelberg.simulated.SimulatedProblem` (:func:`make_simulated`; ``stackelberg run``
  with the learners that play through a simulator, ``rac-neural`` and ``actor-critic``), with
  its environment factory (DESIGN, "Exact or sampled");
- ``"text"``: a language model's RLHF on its own generated text, known through samples only:
  the builder takes ``tau`` (the KL weight) as a ``"problem"``'s does and returns a problem
  whose metrics are sampled (:class:`games.happy_text_problem.HappyTextProblem`: ``seed``,
  ``metrics_observer``, ``run_files``; :func:`make_problem`), played by the sequence learners
  (``rac-neural``, ``alternating``, ``kl-policy-gradient``, :mod:`agents.neural.happy`).

Users add games without editing this package in one of two ways, and only these run a user's
code (user games are of kind ``"game"``):

- a builder in a file they name, ``"path/to/file.py:function"`` wherever a game id is accepted
  (naming the file runs it; a config resolves the path relative to the config file);
- a builder an installed package registers on purpose in the entry-point group
  ``stackelberg.games`` (the Python packaging convention for plug-ins), under its game id.

A game id is never taken as ``"module:function"`` to import: ``"os:system"`` names no game and is
refused without importing or calling anything. Loading and calling a user's code is
:mod:`games.user_games`.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import pettingzoo

from games.commitment import StackelbergCommitmentEnv
from games.commons import commons_economy
from games.duopoly import duopoly_env
from games.duopoly_dynamic import duopoly_dynamic_env
from games.duopoly_problems import duopoly_dynamic_problem, duopoly_problem
from games.economy_env import EconomyAECEnv, EconomyParallelEnv
from games.env import StackelbergAECEnv, StackelbergParallelEnv
from games.four_rooms_entry import four_rooms_registered_env, four_rooms_registered_problem
from games.gridworld import gridworld_goal_game
from games.happy_text_problem import happy_text_problem
from games.matrix import matrix_game
from games.patrol import patrol_game
from games.random_markov import random_markov_game
from games.rlhf_tabular import rlhf_tabular_problem
from games.toll_network import toll_network_env
from games.user_games import (
    ENTRY_POINT_GROUP,
    GameBuildError,
    absolute_game_id,
    call_user_builder,
    load_builder,
    load_plugin,
    plugins,
    split_file_id,
)
from stackelberg.economy import IncentiveEconomy
from stackelberg.model import GameModel

__all__ = ["ENTRY_POINT_GROUP", "ECONOMIES", "ENVIRONMENTS", "GAMES", "KINDS", "REGISTRY",
           "EnvEntryPoint", "GameBuildError", "GameInfo", "absolute_game_id", "game_kind",
           "load_builder", "make_economy", "make_economy_env", "make_env", "make_model",
           "make_problem", "make_simulated",
           "plugin_games", "register_all"]

Builder = Callable[..., Any]
EnvKind = Literal["parallel", "aec"]
ENV_CLASSES: Mapping[str, type] = MappingProxyType(
    {"parallel": StackelbergParallelEnv, "aec": StackelbergAECEnv}
)
ECONOMY_ENV_CLASSES: Mapping[str, type] = MappingProxyType(
    {"parallel": EconomyParallelEnv, "aec": EconomyAECEnv}
)
#: The kinds of entry (module docstring).
KINDS = ("game", "economy", "network", "problem", "simulator", "text")
#: The kinds whose builder takes the follower's weight ``tau`` (:func:`make_problem`).
PROBLEM_KINDS = ("problem", "text")


@dataclass(frozen=True)
class GameInfo:
    """A registered game.

    Parameters
    ----------
    id : str
        Registry id, ``"namespace/name-vN"``.
    builder : callable
        Pure function of keyword parameters returning what ``kind`` says (module docstring).
    description : str
        One line for listings.
    defaults : mapping, optional
        Keyword arguments passed to ``builder`` unless overridden (on top of the builder's own
        defaults). Stored read-only.
    kind : {"game", "economy", "network", "problem", "simulator", "text"}, default "game"
    environment : callable, optional
        For a ``"problem"`` or a ``"simulator"``: its PettingZoo environment factory
        ``(kind, max_cycles, render_mode, **params)``, if it has one.
    """

    id: str
    builder: Builder
    description: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "game"
    environment: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.id}: kind must be one of {', '.join(KINDS)}, got "
                             f"{self.kind!r}")
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))

    def parameters(self) -> dict[str, Any]:
        """All parameters with their default values (the builder's, overridden by ``defaults``;
        a network's builder is its environment factory, whose own parameters are its
        keyword-only ones)."""
        signature = inspect.signature(self.builder)
        taken = ((inspect.Parameter.KEYWORD_ONLY,) if self.kind == "network" else
                 (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY))
        values = {
            name: p.default
            for name, p in signature.parameters.items()
            # a problem's tau is the follower's entropy weight ([follower] tau), not its own
            if p.kind in taken and not (self.kind in (*PROBLEM_KINDS, "simulator")
                                        and name == "tau")
        }
        values.update(copy.deepcopy(dict(self.defaults)))
        return values


#: Parameters of a duopoly problem that shape the policies, not the environment.
_POLICY_KEYS = ("hidden", "init_std", "min_std", "leader_std", "fast")


def _duopoly_env(kind: str = "parallel", max_cycles: int | None = None,
                 render_mode: str | None = None, **params: Any):
    """``stackelberg/duopoly-v0``'s environment factory, given the problem's parameters (the
    policies' are ignored)."""
    return duopoly_env(kind, max_cycles, render_mode,
                       **{k: v for k, v in params.items() if k not in _POLICY_KEYS})


def _dynamic_env(kind: str = "parallel", max_cycles: int | None = None,
                 render_mode: str | None = None, *, periods: int = 8, **params: Any):
    """``stackelberg/duopoly-dynamic-v0``'s environment factory, given the problem's
    parameters: ``periods`` is its episode length (``max_cycles`` if given)."""
    return duopoly_dynamic_env(kind, periods if max_cycles is None else max_cycles, render_mode,
                               **{k: v for k, v in params.items() if k not in _POLICY_KEYS})


REGISTRY: dict[str, GameInfo] = {
    info.id: info
    for info in (
        GameInfo(
            id="stackelberg/matrix-v0",
            builder=matrix_game,
            description="Bimatrix game; default: leader gets 3.5 by commitment vs 2 at Nash",
            defaults={
                "leader_payoffs": ((2.0, 4.0), (1.0, 3.0)),
                "follower_payoffs": ((1.0, 0.0), (0.0, 1.0)),
            },
        ),
        GameInfo(
            id="stackelberg/random-markov-v0",
            builder=random_markov_game,
            description="Random Markov game: Dirichlet(1) transitions, Uniform[0,1] rewards",
        ),
        GameInfo(
            id="stackelberg/patrol-v0",
            builder=patrol_game,
            description="Security game: a defender patrols graph sites, an attacker roams them",
        ),
        GameInfo(
            id="stackelberg/gridworld-goal-v0",
            builder=gridworld_goal_game,
            description="Grid world: a designer places the walker's goal reward to lure him "
            "to a target",
        ),
        GameInfo(
            id="stackelberg/commons-v0",
            builder=commons_economy,
            description="Commons: n harvesters deplete a regrowing stock; a planner taxes "
            "effort and subsidizes rest within a budget",
            kind="economy",
        ),
        GameInfo(
            id="stackelberg/toll-network-v0",
            builder=toll_network_env,
            description="Congestion with tolls: a planner tolls roads, driver populations "
            "choose paths",
            kind="network",
        ),
        GameInfo(
            id="stackelberg/rlhf-tabular-v0",
            builder=rlhf_tabular_problem,
            description="Tabular RLHF: a reward model fit to preferences on the follower's own "
            "segments",
            kind="problem",
        ),
        GameInfo(
            id="stackelberg/happy-text-v0",
            builder=happy_text_problem,
            description="Happy text: RLHF of a small language model, a reward model fit to "
            "VADER preferences on its own generations ([follower] tau = KL weight)",
            kind="text",
        ),
        GameInfo(
            id="stackelberg/four-rooms-v0",
            builder=four_rooms_registered_problem,
            description="HPGD's Four-Rooms: a planner's incentives lure a walker past a "
            "target cell ([follower] tau = lambda)",
            kind="problem",
            environment=four_rooms_registered_env,
        ),
        GameInfo(
            id="stackelberg/duopoly-v0",
            builder=duopoly_problem,
            description="Stackelberg duopoly: quantities in a Box, closed-form answer "
            "(simulator only: rac-neural, actor-critic)",
            kind="simulator",
            environment=_duopoly_env,
        ),
        GameInfo(
            id="stackelberg/duopoly-dynamic-v0",
            builder=duopoly_dynamic_problem,
            description="The duopoly over several periods under a drifting demand "
            "(simulator only: rac-neural, actor-critic)",
            kind="simulator",
            environment=_dynamic_env,
        ),
    )
}


class _KindView(Mapping[str, GameInfo]):
    """The entries of one kind, read-only and live (a new entry goes into :data:`REGISTRY`)."""

    def __init__(self, kind: str):
        self.kind = kind

    def __getitem__(self, game_id: str) -> GameInfo:
        info = REGISTRY[game_id]
        if info.kind != self.kind:
            raise KeyError(game_id)
        return info

    def __iter__(self):
        return (i for i, info in REGISTRY.items() if info.kind == self.kind)

    def __len__(self) -> int:
        return sum(1 for _ in self)


#: Views of :data:`REGISTRY` by kind.
GAMES = _KindView("game")
ECONOMIES = _KindView("economy")
ENVIRONMENTS = _KindView("network")


def game_kind(game_id: str) -> str:
    """The kind of ``game_id``: its registry entry's, ``"game"`` for a user's or a plug-in's
    builder (which must return a :class:`GameModel`)."""
    info = REGISTRY.get(game_id)
    return "game" if info is None else info.kind


_FORMS = ("a registered id (`stackelberg games` lists them), a builder in a file you name as "
          "'path/to/file.py:function', or a game a package registers in the entry-point group "
          f"{ENTRY_POINT_GROUP!r}")


def plugin_games() -> dict[str, str]:
    """Game ids that installed packages register (entry-point group ``stackelberg.games``),
    with the ``module:function`` each names; nothing is imported."""
    return {name: ep.value for name, ep in sorted(plugins().items()) if name not in REGISTRY}


def _known_ids() -> str:
    return ", ".join([*sorted(REGISTRY), *sorted(set(plugins()) - set(REGISTRY))])


def _resolve(game_id: str) -> tuple[Builder, Mapping[str, Any], bool]:
    """The builder of ``game_id``, its registered defaults, and whether it is the user's code.

    Only three things are ever called: a builder of :data:`GAMES`, a function in a file the id
    names, or a builder an installed package registered under :data:`ENTRY_POINT_GROUP`.
    """
    if game_id in REGISTRY:
        info = REGISTRY[game_id]
        if info.kind != "game":
            raise ValueError(f"{game_id!r} is {_A[info.kind]}, not a two-player game with a "
                             "GameModel")
        return info.builder, info.defaults, False
    if split_file_id(game_id) is not None:
        return load_builder(game_id), {}, True
    registered = plugins()
    if game_id in registered:
        return load_plugin(game_id, registered[game_id]), {}, True
    raise ValueError(f"unknown game {game_id!r}; a game is {_FORMS}; known ids: {_known_ids()}")


_A = {"game": "a game", "economy": "an economy", "network": "a network",
      "problem": "a bilevel problem", "simulator": "a game known only through its simulator",
      "text": "a text-generation problem"}


def make_economy(economy_id: str, **params: Any) -> IncentiveEconomy:
    """Build a registered economy; unknown ids and parameters are refused by name."""
    if economy_id not in ECONOMIES:
        raise ValueError(f"unknown economy {economy_id!r}; known: {', '.join(sorted(ECONOMIES))}")
    info = ECONOMIES[economy_id]
    kwargs = {**copy.deepcopy(dict(info.defaults)), **params}
    _check_parameters(economy_id, info.builder, kwargs)
    return info.builder(**kwargs)


def make_problem(game_id: str, tau: float, **params: Any):
    """Build a registered bilevel problem (kind ``"problem"``, or ``"text"``) at the follower's
    weight ``tau``; unknown ids and parameters are refused by name."""
    info = REGISTRY.get(game_id)
    if info is None or info.kind not in PROBLEM_KINDS:
        known = sorted(i for i, e in REGISTRY.items() if e.kind in PROBLEM_KINDS)
        raise ValueError(f"unknown bilevel problem {game_id!r}; known: "
                         f"{', '.join(known) or '(none)'}")
    kwargs = {**copy.deepcopy(dict(info.defaults)), **params, "tau": tau}
    _check_parameters(game_id, info.builder, kwargs)
    return info.builder(**kwargs)


def make_simulated(game_id: str, tau: float, **params: Any):
    """Build a registered simulator-only game's :class:`~stackelberg.simulated.SimulatedProblem`
    (kind ``"simulator"``) at the entropy weight ``tau``; unknown ids and parameters are
    refused by name."""
    info = REGISTRY.get(game_id)
    if info is None or info.kind != "simulator":
        known = sorted(i for i, e in REGISTRY.items() if e.kind == "simulator")
        raise ValueError(f"unknown simulator game {game_id!r}; known: "
                         f"{', '.join(known) or '(none)'}")
    kwargs = {**copy.deepcopy(dict(info.defaults)), **params, "tau": tau}
    _check_parameters(game_id, info.builder, kwargs)
    if isinstance(kwargs.get("hidden"), list):  # TOML has arrays, no tuples
        kwargs["hidden"] = tuple(kwargs["hidden"])
    return info.builder(**kwargs)


def make_economy_env(economy_id: str, kind: str = "parallel", max_cycles: int | None = None,
                     render_mode: str | None = None, *, observation: str = "onehot",
                     discount_as_termination: bool = False, **params: Any
                     ) -> EconomyParallelEnv | EconomyAECEnv:
    """A PettingZoo environment of a registered economy (options as :func:`make_env`)."""
    if kind not in ECONOMY_ENV_CLASSES:
        raise ValueError(f"kind must be one of {sorted(ECONOMY_ENV_CLASSES)}, got {kind!r}")
    return ECONOMY_ENV_CLASSES[kind](
        make_economy(economy_id, **params), max_cycles=max_cycles, render_mode=render_mode,
        observation=observation, discount_as_termination=discount_as_termination,
        name=economy_id)


def _check_parameters(game_id: str, builder: Builder, kwargs: Mapping[str, Any]) -> None:
    try:
        parameters = inspect.signature(builder).parameters.values()
    except (TypeError, ValueError):  # a builtin or an odd callable: let the call decide
        return
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return
    accepted = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"for game {game_id!r}; accepted: {', '.join(accepted) or '(none)'}"
        )
    missing = [
        p.name
        for p in parameters
        if p.default is p.empty and p.name in accepted and p.name not in kwargs
    ]
    if missing:
        raise ValueError(f"game {game_id!r} needs parameter(s) {', '.join(missing)}")


def make_model(game_id: str, **params: Any) -> GameModel:
    """Build the exact model of a game.

    Parameters
    ----------
    game_id : str
        A registered id (see :data:`GAMES`), a builder in a file ``"path/to/file.py:function"``
        (relative to the current directory; :func:`absolute_game_id` resolves it from
        elsewhere), or a game an installed package registers in the entry-point group
        ``stackelberg.games``.
    **params
        Keyword parameters of the builder; they override the registered defaults.

    Returns
    -------
    GameModel
        The validated model.

    Raises
    ------
    ValueError
        Unknown id (the message lists the known ids), unknown or missing parameter (the message
        names it and lists the accepted ones), a builder that does not return a ``GameModel``,
        or a parameter the builder rejects. Anything a user's builder raises, a ``sys.exit``
        included, is a :class:`GameBuildError` (a ``ValueError``).
    """
    builder, defaults, users = _resolve(game_id)
    kwargs = {**copy.deepcopy(dict(defaults)), **params}
    _check_parameters(game_id, builder, kwargs)
    model = call_user_builder(game_id, builder, kwargs) if users else builder(**kwargs)
    if not isinstance(model, GameModel):
        raise ValueError(
            f"game {game_id!r}: the builder returned {type(model).__name__}, not a GameModel"
        )
    return model


def make_env(
    game_id: str,
    kind: EnvKind = "parallel",
    max_cycles: int | None = None,
    render_mode: str | None = None,
    *,
    observation: str = "onehot",
    discount_as_termination: bool = False,
    commitment: bool = False,
    **params: Any,
) -> StackelbergParallelEnv | StackelbergAECEnv:
    """Build a PettingZoo environment of a game.

    Parameters
    ----------
    game_id : str
        As in :func:`make_model`.
    kind : {"parallel", "aec"}, default "parallel"
        Simultaneous moves, or the leader first with her move shown to the follower.
    max_cycles : int, optional
        Episode length; default :func:`games.env.default_max_cycles` of the game's ``gamma``.
    render_mode : {None, "human", "ansi", "rgb_array"}, optional
        Rendering mode.
    observation : {"onehot", "index"}, default "onehot"
        Observation encoding (:mod:`games.observations`).
    discount_as_termination : bool, default False
        End every round with probability ``1 - gamma`` (:mod:`games.env`).
    commitment : bool, default False
        With ``kind="aec"``: the leader's action is her mixed strategy, shown to the follower
        (:mod:`games.commitment`).
    **params
        Parameters of the game, as in :func:`make_model`.

    Returns
    -------
    StackelbergParallelEnv or StackelbergAECEnv
        An environment sampling from ``make_model(game_id, **params)``, available as
        ``env.model``; ``env.metadata["name"]`` is ``game_id``.
    """
    if kind not in ENV_CLASSES:
        raise ValueError(f"kind must be one of {sorted(ENV_CLASSES)}, got {kind!r}")
    entry_kind = game_kind(game_id)
    if entry_kind == "economy" and not commitment:
        return make_economy_env(game_id, kind, max_cycles, render_mode, observation=observation,
                                discount_as_termination=discount_as_termination, **params)
    if entry_kind in ("network", *PROBLEM_KINDS, "simulator"):
        info = REGISTRY[game_id]
        factory = info.builder if entry_kind == "network" else info.environment
        if factory is None:
            raise ValueError(f"{game_id!r} has no environment")
        if observation != "onehot" or discount_as_termination or commitment:
            raise ValueError(f"{game_id!r} has none of the options observation, "
                             "discount_as_termination and commitment")
        return factory(kind, max_cycles, render_mode, **{**info.defaults, **params})
    if commitment is not False and (commitment is not True or kind != "aec"):
        raise ValueError(
            f"commitment must be True or False and needs kind='aec' (the follower observes "
            f"the leader's commitment before he moves), got commitment={commitment!r} with "
            f"kind={kind!r}"
        )
    model = make_model(game_id, **params)
    env_class = StackelbergCommitmentEnv if commitment else ENV_CLASSES[kind]
    return env_class(
        model,
        max_cycles=max_cycles,
        render_mode=render_mode,
        observation=observation,
        discount_as_termination=discount_as_termination,
        name=game_id,
    )


@dataclass(frozen=True)
class EnvEntryPoint:
    """PettingZoo entry point: ``EnvEntryPoint(id, kind)(**make_env options, **params)``."""

    game_id: str
    kind: EnvKind

    def __call__(self, **options: Any) -> StackelbergParallelEnv | StackelbergAECEnv:
        return make_env(self.game_id, self.kind, **options)


def register_all() -> None:
    """Register every entry of :data:`REGISTRY` that has an environment in PettingZoo's ``aec``
    and ``parallel`` registries.

    Afterwards ``pettingzoo.make("parallel", "stackelberg/patrol-v0", slip=0.2)`` works.
    Idempotent: ids already registered are left alone.
    """
    registries = {"aec": pettingzoo.aec_registry, "parallel": pettingzoo.parallel_registry}
    for info in REGISTRY.values():
        if info.kind in (*PROBLEM_KINDS, "simulator") and info.environment is None:
            continue
        for kind, registry in registries.items():
            if info.id not in registry:
                pettingzoo.register(
                    kind,
                    info.id,
                    entry_point=EnvEntryPoint(info.id, kind),
                    kwargs=copy.deepcopy(dict(info.defaults)),
                )
