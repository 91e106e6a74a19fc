"""Stackelberg games: exact models and the PettingZoo environments that sample from them.

Importing this package registers every game of :data:`GAMES` with PettingZoo, so that
``pettingzoo.make("aec", "stackelberg/patrol-v0")`` works. Within the project use
:func:`make_model` (the exact model) and :func:`make_env` (an environment sampling from it).
"""

from games.commitment import StackelbergCommitmentEnv
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

__all__ = [
    "ENVIRONMENTS",
    "FOLLOWER",
    "GAMES",
    "LEADER",
    "GameInfo",
    "StackelbergAECEnv",
    "StackelbergCommitmentEnv",
    "StackelbergParallelEnv",
    "absolute_game_id",
    "default_max_cycles",
    "gridworld_goal_game",
    "load_builder",
    "make_env",
    "make_model",
    "matrix_game",
    "patrol_game",
    "random_markov_game",
    "register_all",
]
