"""Stackelberg games: exact models and the PettingZoo environments that sample from them.

Importing this package registers every game of :data:`GAMES` with PettingZoo, so that
``pettingzoo.make("aec", "stackelberg/patrol-v0")`` works, and every economy of
:data:`ECONOMIES` (a planner and n followers, :mod:`games.economies`). Within the project use
:func:`make_model` (the exact model) and :func:`make_env` (an environment sampling from it).
"""

from games.commitment import StackelbergCommitmentEnv
from games.commons import commons_economy
from games.economies import ECONOMIES, make_economy, make_economy_env, register_economies
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
    ENVIRONMENTS,
    GAMES,
    GameInfo,
    absolute_game_id,
    load_builder,
    make_env,
    make_model,
    register_all,
)

register_all()
register_economies()

__all__ = [
    "ENVIRONMENTS",
    "FOLLOWER",
    "ECONOMIES",
    "GAMES",
    "LEADER",
    "GameInfo",
    "StackelbergAECEnv",
    "StackelbergCommitmentEnv",
    "StackelbergParallelEnv",
    "absolute_game_id",
    "commons_economy",
    "default_max_cycles",
    "gridworld_goal_game",
    "load_builder",
    "make_economy",
    "make_economy_env",
    "make_env",
    "make_model",
    "matrix_game",
    "patrol_game",
    "random_markov_game",
    "register_all",
    "register_economies",
]
