"""How a tournament scores a match: its distance to the truth, one objective for every leader.

Every match is scored on the leader's value ``V_L`` against an exact, *unregularized* best
response of the follower (ties broken in the leader's favour; docs/theory.md §1 and §5). The
coordinator records it at every recorded iteration and in the summary (``leader_value``). It
depends on the game and the leader's commitment only: neither a leader's entropy schedule
(``rac`` decays its ``tau_k``) nor the follower's ``tau`` changes it, so every leader is scored
on the same objective. A bilevel problem that is no game (RLHF, Four-Rooms) records as
``leader_value`` the leader's objective ``-Phi(x)`` at the follower's configured ``tau``
(:class:`stackelberg.metrics.ExactMetrics`); an economy, the planner's net welfare at the
followers' equilibrium. A game known only through a simulator (or text samples) has no exact
best response to evaluate: its ``leader_value`` is a Monte-Carlo estimate of the leader's value
against the follower as learned, with a standard error (summary entry ``metrics`` =
``"sampled ..."``), and the report says so for that game.

**Exact reference.** In a matrix game the strong Stackelberg value ``V_SSE`` is known (an LP)
and the score is ``V_SSE - V_L`` (the coordinator stores it as ``sse_gap``).

**Best value found.** Elsewhere the score is ``V_best - V_L``, where ``V_best`` is the highest
``V_L`` recorded by any successful match of the game at any iteration (every recorded row is the
value of a commitment that was actually found). Scores are then >= 0, and 0 means "as good as
anything the tournament found"; the report says which kind of reference a game has.

The hyper-objective ``Phi(x) = f(x, pi*_tau(x))`` at the follower's configured ``tau`` is shown
beside the score, never ranked on: a leader with an entropy schedule has its rows recorded at its
own ``tau_k`` (:func:`hyper_objective_at_tau` leaves those out).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: The per-iteration column and summary entry every match is scored on.
LEADER_VALUE = "leader_value"
#: The per-iteration column and summary entry of the exact distance (matrix games).
SSE_GAP = "sse_gap"
#: The summary entry of the SSE value itself.
SSE_VALUE = "sse_leader_value"
#: The per-iteration column and summary entry of the hyper-objective (at that row's tau).
HYPER = "hyper_objective"
#: Relative tolerance when comparing a row's tau to the follower's configured tau.
TAU_RTOL = 1e-9


def _number(value: object) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok else math.nan


@dataclass(frozen=True)
class Reference:
    """What the matches of one game are scored against.

    Attributes
    ----------
    kind : {"exact", "best-found", "none"}
        ``exact``: the strong Stackelberg value of a matrix game; ``best-found``: the highest
        leader value any match recorded; ``none``: no match could be scored.
    value : float
        ``V_SSE`` or ``V_best`` (NaN for ``none``, or when an exact value was not stored).
    sampled : bool
        The game's values are Monte-Carlo estimates (a simulator or text game), not exact.
    """

    kind: str
    value: float
    sampled: bool = False

    @property
    def exact(self) -> bool:
        return self.kind == "exact"

    @property
    def score_label(self) -> str:
        """The score in a few words, for table headers and axis labels."""
        if self.exact:
            return "distance to SSE value, V_SSE - V_L"
        return "distance to best value found, V_best - V_L"

    def describe(self) -> str:
        """One sentence for a reader: what the scores of this game are measured against."""
        if self.exact:
            return (f"Exact reference: the strong Stackelberg value V_SSE = {self.value:.6g}. "
                    "Score = V_SSE - V_L, V_L being the leader's value against an exact "
                    "unregularized best response (lower is better, 0 = the equilibrium).")
        if self.kind == "best-found" and self.sampled:
            return (f"This game is known only through sampling: V_L is a Monte-Carlo estimate "
                    "of the leader's value against the follower as learned (its standard error "
                    "is in each match's summary). Score = V_best - V_L, V_best = "
                    f"{self.value:.6g} being the highest estimate any match recorded (the "
                    "largest of noisy estimates, so it sits above the true best by about their "
                    "noise; lower is better, 0 = as good as the best found).")
        if self.kind == "best-found":
            return (f"No exact reference is known for this game: score = V_best - V_L, "
                    f"V_best = {self.value:.6g} being the highest leader value (against an "
                    "exact unregularized best response) any match recorded (lower is better, "
                    "0 = as good as the best found).")
        return "No match of this game could be scored."


def configured_tau(config: Mapping) -> float:
    """The follower's entropy weight in a resolved match config (NaN when absent)."""
    follower = config.get("follower") if isinstance(config, Mapping) else None
    return _number(follower.get("tau")) if isinstance(follower, Mapping) else math.nan


def hyper_objective_at_tau(summary: Mapping, metrics: Mapping[str, np.ndarray],
                           config: Mapping) -> float:
    """The final hyper-objective if it was recorded at the follower's configured tau, else NaN
    (a leader's own entropy schedule moved it; the store has no ``x`` to recompute it)."""
    value = _number(summary.get(HYPER))
    tau, row_tau = configured_tau(config), metrics.get("tau")
    if row_tau is None or len(row_tau) == 0 or not math.isfinite(tau):
        return value
    return value if math.isclose(float(row_tau[-1]), tau, rel_tol=TAU_RTOL) else math.nan


def is_exact(summary: Mapping) -> bool:
    """Whether a match's summary carries the exact (SSE) distance."""
    return math.isfinite(_number(summary.get(SSE_GAP)))


def leader_values(metrics: Mapping[str, np.ndarray]) -> np.ndarray:
    """The recorded ``V_L`` column (empty when absent)."""
    return np.asarray(metrics.get(LEADER_VALUE, ()), dtype=float)


def is_sampled(summary: Mapping) -> bool:
    """Whether a match's values are Monte-Carlo estimates (its summary says ``sampled``)."""
    metrics = summary.get("metrics")
    return isinstance(metrics, str) and metrics.startswith("sampled")


def game_reference(summaries: Sequence[Mapping], metrics: Sequence[Mapping[str, np.ndarray]]
                   ) -> Reference:
    """The reference of one game's successful matches (their summaries and metrics).

    Exact when every summary carries the SSE distance; else the highest leader value recorded
    in any row or summary (marked sampled when the matches' values are estimates).
    """
    if summaries and all(is_exact(s) for s in summaries):
        values = [_number(s.get(SSE_VALUE)) for s in summaries]
        if not all(math.isfinite(v) for v in values):  # an older store: V_SSE = V_L + gap
            values = [_number(s.get(LEADER_VALUE)) + _number(s.get(SSE_GAP)) for s in summaries]
        return Reference("exact", float(np.median(values)))
    found = [leader_values(m) for m in metrics]
    found.append(np.array([_number(s.get(LEADER_VALUE)) for s in summaries]))
    values = np.concatenate(found)
    values = values[np.isfinite(values)]
    sampled = any(is_sampled(s) for s in summaries)
    return Reference("best-found", float(values.max()), sampled) if values.size else Reference(
        "none", math.nan, sampled)


def final_score(summary: Mapping, ref: Reference) -> float:
    """A match's score: its final distance to ``ref`` (lower is better)."""
    if ref.exact:
        return _number(summary.get(SSE_GAP))
    return ref.value - _number(summary.get(LEADER_VALUE))


def score_curve(metrics: Mapping[str, np.ndarray], ref: Reference) -> np.ndarray:
    """A match's distance to ``ref`` at every recorded row (NaN where unrecorded)."""
    if ref.exact and SSE_GAP in metrics:
        return np.asarray(metrics[SSE_GAP], dtype=float)
    return ref.value - leader_values(metrics)


__all__ = ["HYPER", "LEADER_VALUE", "SSE_GAP", "SSE_VALUE", "Reference", "configured_tau",
           "final_score", "game_reference", "hyper_objective_at_tau", "is_exact", "is_sampled",
           "leader_values", "score_curve"]
