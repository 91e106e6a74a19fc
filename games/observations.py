"""How an agent's observation is encoded: a one-hot ``Box`` vector (default) or indices.

The one-hot form is what the common tools take without glue (RLlib's default encoders,
SuperSuit's ``flatten``/``normalize_obs``/``black_death`` wrappers and Stable-Baselines3 need a
``Box``), and it is the same space for both agents, so one shared policy can serve both roles:

    [ one-hot state (S) | leader part (B) | agent indicator (2) ]

The leader part exists only where the follower is shown the leader's move within a round (the
AEC and commitment environments): the one-hot of the leader's action, or her commitment (a
distribution over her ``B`` actions); it is all zeros until she moves. The indicator is
``[1, 0]`` for the leader and ``[0, 1]`` for the follower. Entries are ``float32`` in [0, 1].

The index form keeps the original encoding: the state index (``Discrete(S)``) for everyone,
and ``(state, leader action or B if none yet)`` (``MultiDiscrete([S, B + 1])``) for the
follower of the AEC environment.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

ONEHOT = "onehot"
INDEX = "index"
OBSERVATIONS = (ONEHOT, INDEX)


def unit_box(size: int) -> spaces.Box:
    """``Box(0, 1, (size,), float32)``: the space of one-hot encodings and of distributions."""
    return spaces.Box(0.0, 1.0, shape=(size,), dtype=np.float32)


def one_hot(n_states: int, state: int, leader_part: np.ndarray | None, role: int) -> np.ndarray:
    """``[one-hot state | leader part | agent indicator]`` as ``float32`` (module docstring).

    ``role`` is 0 for the leader and 1 for the follower; ``leader_part`` is ``None`` where the
    layout has no leader part.
    """
    n_leader = 0 if leader_part is None else len(leader_part)
    encoded = np.zeros(n_states + n_leader + 2, dtype=np.float32)
    encoded[state] = 1.0
    if leader_part is not None:
        encoded[n_states : n_states + n_leader] = leader_part
    encoded[n_states + n_leader + role] = 1.0
    return encoded


def check_observation(observation: str) -> str:
    """Return ``observation`` if it names a known encoding; raise ``ValueError`` otherwise."""
    if observation not in OBSERVATIONS:
        raise ValueError(f"observation must be one of {OBSERVATIONS}, got {observation!r}")
    return observation
