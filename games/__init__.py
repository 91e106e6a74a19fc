"""Stackelberg games: exact models and the PettingZoo environments that sample from them.

Importing this package registers every entry of the one registry :data:`REGISTRY` (games,
economies, networks; :mod:`games.registry`) with PettingZoo, so that
``pettingzoo.make("aec", "stackelberg/patrol-v0")`` works. Within the project use
:func:`make_model` (a game's exact model), :func:`make_economy` and :func:`make_env` (an
environment of any entry).
"""

from games.commitment import StackelbergCommitmentEnv
from games.commons import commons_economy
from games.env import (
    FOLLOWER,
    LEADER,
    StackelbergAECEnv,
    StackelbergParallelEnv,
    default_max_cycles,
)
from games.gridworld import gridworld_goal_game
from games.matrix import matrix_game
from games.patrol import patrol_game
from games.random_markov import random_markov_game
from games.registry import (
    ECONOMIES,
    ENVIRONMENTS,
    GAMES,
    REGISTRY,
    GameInfo,
    absolute_game_id,
    game_kind,
    load_builder,
    make_economy,
    make_economy_env,
    make_env,
    make_model,
    make_problem,
    make_simulated,
    register_all,
)

register_all()

__all__ = [
    "ENVIRONMENTS",
    "FOLLOWER",
    "ECONOMIES",
    "GAMES",
    "LEADER",
    "REGISTRY",
    "GameInfo",
    "StackelbergAECEnv",
    "StackelbergCommitmentEnv",
    "StackelbergParallelEnv",
    "absolute_game_id",
    "commons_economy",
    "default_max_cycles",
    "game_kind",
    "gridworld_goal_game",
    "load_builder",
    "make_economy",
    "make_economy_env",
    "make_env",
    "make_model",
    "make_problem",
    "make_simulated",
    "matrix_game",
    "patrol_game",
    "random_markov_game",
    "register_all",
]
