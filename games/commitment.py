"""The commitment variant: the leader's action is her mixed strategy, shown to the follower.

In a Stackelberg game the leader commits to a distribution ``mu(. | s)`` over her actions and
the follower best-responds to the *commitment*, not to a realized action (Conitzer & Sandholm,
"Computing the optimal strategy to commit to", EC 2006; the exact model's leader variable is
exactly this ``mu``). Here each round:

1. the leader acts with a vector in ``Box(0, 1, (B,))``; it is normalized to ``mu = v / sum(v)``
   (the all-zero vector means the uniform distribution), so any policy with a bounded ``Box``
   output can act;
2. the follower observes ``[one-hot state | mu | agent indicator]`` and picks ``a``;
3. the environment draws the leader's action ``b ~ mu`` with its own generator and plays the
   round ``(s, b, a)`` of the model: rewards ``r[s, b, a]``, next state ``P(. | s, b, a)``;
   ``infos[agent]["leader_action"]`` is ``b``.

With a leader that commits to ``mu(. | s)`` in state ``s`` and a follower policy ``pi(a | s)``,
the expected returns are the exact model's values of ``(mu, pi)``. Independent learners can
then find the commitment outcome (3.5 in the textbook matrix game) that simultaneous play
hides (its Nash outcome is 2). Only the one-hot observation form exists here (``mu`` is not an
index).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from games import observations
from games.env import FOLLOWER, LEADER, Round, StackelbergAECEnv
from stackelberg.model import GameModel


def commitment_from_action(action: Any, n_actions: int) -> np.ndarray:
    """Normalize a leader's action vector to a distribution over her ``n_actions`` actions.

    Raises ``ValueError`` unless ``action`` has shape ``(n_actions,)`` with finite non-negative
    entries; the all-zero vector gives the uniform distribution.
    """
    try:
        vector = np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError):
        vector = None
    if vector is None or vector.shape != (n_actions,) or not np.isfinite(vector).all() or (
        vector < 0
    ).any():
        raise ValueError(
            f"invalid action for {LEADER}: {action!r} is not a vector of {n_actions} "
            "non-negative weights (her mixed strategy)"
        )
    total = vector.sum()
    return np.full(n_actions, 1.0 / n_actions) if total == 0 else vector / total


class StackelbergCommitmentEnv(StackelbergAECEnv):
    """Leader-first AEC environment where the leader's action is her mixed strategy.

    See the module docstring. Parameters are those of :class:`StackelbergAECEnv`, except that
    ``observation`` must be ``"onehot"``.
    """

    def __init__(
        self,
        model: GameModel,
        max_cycles: int | None = None,
        render_mode: str | None = None,
        observation: str = observations.ONEHOT,
        discount_as_termination: bool = False,
        name: str | None = None,
    ) -> None:
        if observation != observations.ONEHOT:
            raise ValueError(
                f"observation must be {observations.ONEHOT!r} in the commitment variant (the "
                f"follower observes a distribution), got {observation!r}"
            )
        super().__init__(model, max_cycles, render_mode, observation, discount_as_termination,
                         name)
        self._realized: int | None = None

    def _leader_action_space(self) -> spaces.Space:
        return observations.unit_box(self.model.n_leader_actions)

    def _checked_leader_move(self, action: Any) -> np.ndarray:
        return commitment_from_action(action, self.model.n_leader_actions)

    def _realized_leader_action(self) -> int:
        self._realized = self._sample(self._leader_action)
        return self._realized

    def _leader_part(self) -> np.ndarray:
        if self._leader_action is None:
            return np.zeros(self.model.n_leader_actions, dtype=np.float32)
        return self._leader_action.astype(np.float32)

    def _round_infos(self, played: Round) -> dict[str, dict[str, Any]]:
        infos = self._infos()
        for agent in (LEADER, FOLLOWER):
            infos[agent]["leader_action"] = played.leader_action
        return infos

    def _pending_row(self) -> int | None:
        return None

    def _pending_text(self) -> str | None:
        if self._leader_action is None:
            return None
        names = self.model.leader_action_names
        return "commitment " + ", ".join(
            f"{names[b]} {p:.2f}" for b, p in enumerate(self._leader_action) if p > 0
        )
