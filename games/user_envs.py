"""A user's own PettingZoo environment as a simulator-only game (issue 14, the build list).

A config names the environment's file and class, ``[game] env = "path/to/my_env.py:MyEnv"``
(resolved relative to the config file, as a user's game builder is: naming the file runs it,
and nothing else is ever loaded), passes the rest of ``[game]`` to the class as keyword
arguments, and maps the roles to its agent names in ``[roles]``::

    [game]
    env = "my_env.py:MyEnv"
    price = 3.0            # MyEnv(price=3.0)

    [roles]
    leader = "firm_a"
    follower = "firm_b"
    gamma = 0.95           # optional: the discount of both returns (default below)

The environment must follow PettingZoo's Parallel API with ``Box`` observations (flattened) and
``Box`` or ``Discrete`` actions. If it has ``commit(x)``, the follower observes the leader's
commitment (her policy's parameters) as in ``stackelberg/duopoly-v0``; otherwise he learns to
answer her policy through play. :func:`user_env_problem` builds the
:class:`~stackelberg.simulated.SimulatedProblem` the neural learners play.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from gymnasium import spaces

from games.user_games import GameBuildError, call_user_builder, load_builder, split_file_id
from stackelberg.simulated import PolicySpec, SimulatedProblem

__all__ = ["ROLE_KEYS", "UserEnvError", "check_env_id", "check_roles", "user_env_problem"]

#: The keys of ``[roles]``: the two roles' agent names, and the discount.
ROLE_KEYS = ("leader", "follower", "gamma")
#: The discount when neither ``[roles] gamma`` nor the environment's ``metadata["gamma"]``
#: gives one.
DEFAULT_GAMMA = 0.99
#: The leader's fixed exploration spread, in normalized units (as the duopolies').
LEADER_STD = 0.1


class UserEnvError(ValueError):
    """The environment or the ``[roles]`` section cannot make a game; the message names the
    config key (``game.env``, ``roles.leader``, ...)."""


def check_env_id(env_id: Any) -> str:
    """``env_id`` if it names a class in a file, ``"path/to/file.py:Class"`` (nothing is run);
    the :class:`UserEnvError` says what it should be, for the caller to prefix with its key."""
    parts = split_file_id(env_id) if isinstance(env_id, str) else None
    if parts is None or not parts[1].isidentifier():
        raise UserEnvError(f"{env_id!r}: name a PettingZoo environment class in a file as "
                           "'path/to/file.py:Class' (naming the file runs it)")
    return env_id


def check_roles(roles: Mapping[str, Any]) -> dict[str, Any]:
    """The ``[roles]`` section checked on its own (without running the user's file)."""
    unknown = sorted(set(roles) - set(ROLE_KEYS))
    if unknown:
        raise UserEnvError(f"roles.{unknown[0]}: unknown key; accepted: {', '.join(ROLE_KEYS)}")
    for key in ("leader", "follower"):
        if not isinstance(roles.get(key), str):
            raise UserEnvError(f"roles.{key} must name an agent of the environment (a string), "
                               f"got {roles.get(key)!r}")
    if roles["leader"] == roles["follower"]:
        raise UserEnvError(f"roles.leader and roles.follower are both {roles['leader']!r}; "
                           "name two different agents")
    gamma = roles.get("gamma")
    if gamma is not None and (isinstance(gamma, bool) or not isinstance(gamma, (int, float))
                              or not 0.0 <= gamma <= 1.0):
        raise UserEnvError(f"roles.gamma must be a number in [0, 1], got {gamma!r}")
    return dict(roles)


def _observation_size(env_id: str, agent: str, role: str, space: Any) -> int:
    if not isinstance(space, spaces.Box):
        raise UserEnvError(f"game.env = {env_id!r}: agent {agent!r} (roles.{role}) observes "
                           f"{space!r}; a neural policy reads a Box observation")
    return int(math.prod(space.shape)) if space.shape else 1


def user_env_problem(env_id: str, roles: Mapping[str, Any], tau: float,
                     params: Mapping[str, Any]) -> SimulatedProblem:
    """The simulated problem of the user's environment class ``env_id``
    (``"/abs/path/my_env.py:MyEnv"``, module docstring) with keyword arguments ``params``.

    Raises
    ------
    UserEnvError
        The file has no such class, the class cannot be built with ``params``, or a role names
        no agent of it; each message names the config key.
    """
    roles = check_roles(roles)
    try:
        env_class = load_builder(env_id)
    except GameBuildError as err:
        raise UserEnvError(f"game.env: {err}") from None
    except ValueError as err:  # no such file, or no such name in it
        message = str(err).replace("has no function", "has no class")
        raise UserEnvError(f"game.env: {message}") from None
    if not isinstance(env_class, type):
        raise UserEnvError(f"game.env = {env_id!r} names {type(env_class).__name__} "
                           f"{env_class!r}, not a class")

    def make_env():
        return call_user_builder(env_id, env_class, params)

    try:
        probe = make_env()
    except (TypeError, ValueError) as err:
        raise UserEnvError(f"game.env = {env_id!r}: building it with the [game] parameters "
                           f"{dict(params)!r} failed: {err}") from None
    agents = list(getattr(probe, "possible_agents", []))
    if not callable(getattr(probe, "step", None)) or not agents:
        raise UserEnvError(f"game.env = {env_id!r} is not a PettingZoo Parallel environment "
                           "(it needs possible_agents, reset and step)")
    for role in ("leader", "follower"):
        if roles[role] not in agents:
            raise UserEnvError(f"roles.{role} = {roles[role]!r} is not an agent of {env_id!r}; "
                               f"its agents: {', '.join(map(repr, agents))}")
    specs = {}
    for role in ("leader", "follower"):
        agent = roles[role]
        size = _observation_size(env_id, agent, role, probe.observation_space(agent))
        action = probe.action_space(agent)
        try:
            specs[role] = (PolicySpec(size, action, (), init_std=LEADER_STD, min_std=LEADER_STD,
                                      learn_std=False) if role == "leader" else
                           PolicySpec(size, action))
        except ValueError as err:
            raise UserEnvError(f"game.env = {env_id!r}: agent {agent!r} (roles.{role}): "
                               f"{err}") from None
    gamma = roles.get("gamma")
    if gamma is None:
        gamma = getattr(probe, "metadata", {}).get("gamma", DEFAULT_GAMMA)
    return SimulatedProblem(name=env_id, make_env=make_env, leader_agent=roles["leader"],
                            follower_agent=roles["follower"], leader_spec=specs["leader"],
                            follower_spec=specs["follower"], gamma=float(gamma), tau=tau)
