"""Entry points of Four-Rooms for the registry and the tournament (docs/theory.md §10).

What a registry entry ``stackelberg/four-rooms-v0`` and a tournament spec call:

- :func:`make_four_rooms_env`: the PettingZoo environment (``kind = "parallel"`` or ``"aec"``)
  with :func:`games.four_rooms.four_rooms_problem`'s keywords and ``max_steps``;
- :func:`four_rooms_problem_for`: the bilevel problem a leader plays on (the exact one, or with
  the game the sample-based learners draw from);
- :func:`play_four_rooms`: one match, scored by HPGD's measure (:class:`FourRoomsMatch`).

A tournament spec over the table's rows would read, e.g. (``configs/four_rooms.toml``)::

    [tournament]
    game = "stackelberg/four-rooms-v0"
    seeds = [100, 101, 102, 103, 104, 105, 106, 107, 108, 109]
    [tournament.sweep]
    lam = [0.001, 0.003, 0.005]
    beta = [1.0, 3.0, 5.0]
    [[tournament.pairing]]
    leader = "hypergradient"
    follower = "best-response"
    iterations = 200
    leader_params = { tau_ratio = 1.0 }

with one call ``play_four_rooms(leader, follower, seed, iterations, leader_params, lam=...,
beta=...)`` per cell; ``benchmarks/bench_four_rooms.py`` plays exactly these calls.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from games.four_rooms import FourRoomsProblem, four_rooms_problem
from games.four_rooms_env import FourRoomsParallelEnv, four_rooms_aec_env
from games.four_rooms_sampled import sampled_four_rooms_problem

FOUR_ROOMS_ID = "stackelberg/four-rooms-v0"
#: Leaders that draw samples from the game (they need :mod:`games.four_rooms_sampled`).
SAMPLE_BASED = frozenset({"rac", "rac-fixed-tau", "pbrl-value-sampled",
                          "partial-gradient-sampled", "zeroth-order"})
#: Followers that draw samples from the game.
SAMPLING_FOLLOWERS = frozenset({"soft-q", "model-based"})


def make_four_rooms_env(kind: str = "parallel", **params: Any):
    """The PettingZoo environment of Four-Rooms (``max_steps``, ``render_mode`` and the
    keywords of :func:`games.four_rooms.four_rooms_problem`)."""
    if kind == "parallel":
        return FourRoomsParallelEnv(**params)
    if kind == "aec":
        return four_rooms_aec_env(**params)
    raise ValueError(f"kind must be 'parallel' or 'aec', got {kind!r}")


def four_rooms_problem_for(leader: str, follower: str, **params: Any) -> FourRoomsProblem:
    """The problem a match of ``leader`` against ``follower`` plays on: with the game to sample
    from when either of them samples, else the exact one (lighter)."""
    if leader in SAMPLE_BASED or follower in SAMPLING_FOLLOWERS:
        return sampled_four_rooms_problem(**params)
    return four_rooms_problem(**params)


@dataclass(frozen=True)
class FourRoomsMatch:
    """One match, scored as HPGD score theirs: the planner's exact value from the start (both
    contexts) against the follower's exact soft best response at ``tau = lam``, at the final
    incentive (``value``) and at every recorded iteration (``curve``). ``horizon_gap`` is
    ``value`` minus the same value over HPGD's 200-step episodes (exact), at the final
    incentive."""

    leader: str
    follower: str
    seed: int
    params: dict
    value: float
    curve: tuple[tuple[int, float], ...]
    samples: int
    cpu_seconds: float
    horizon_gap: float = 0.0


def play_four_rooms(leader: str, follower: str, seed: int, iterations: int,
                    leader_params: Mapping[str, Any] | None = None,
                    follower_params: Mapping[str, Any] | None = None,
                    points: int = 20, **params: Any) -> FourRoomsMatch:
    """Play one match through :func:`stackelberg.coordinator.run_match` with the registry's
    agents, recording HPGD's measure at about ``points`` iterations."""
    from agents.registry import FOLLOWERS, LEADERS
    from stackelberg.coordinator import MatchConfig, run_match
    from stackelberg.seeding import run_streams

    start = time.process_time()
    judge = four_rooms_problem(**params)  # the measure: exact, at tau = lam
    problem = four_rooms_problem_for(leader, follower, **params)
    lead = LEADERS[leader].factory(LEADERS[leader].make_config(**dict(leader_params or {})))
    follow = FOLLOWERS[follower].factory(
        FOLLOWERS[follower].make_config(**dict(follower_params or {})))
    curve: list[tuple[int, float]] = []

    def record(row: dict) -> None:
        curve.append((int(row["iteration"]), judge.planner_value(lead.x)))

    config = MatchConfig(iterations=iterations, metrics_every=max(1, iterations // points),
                         progress=False)
    result = run_match(problem, lead, [follow], config, run_streams(seed), on_iteration=record)
    star = judge.best_response(result.x).pi
    value = judge.planner_value(result.x)
    episodic = judge.horizon_values(result.x, star, 200)[0]
    return FourRoomsMatch(leader, follower, seed, dict(params), value, tuple(curve),
                          int(result.summary["samples"]), time.process_time() - start,
                          value - episodic)


def four_rooms_registered_problem(tau: float, *, beta: float = 1.0, slip: float = 0.33,
                                  gamma: float = 0.99, scale: float = 0.2,
                                  slip_kernel: str = "table", sampled: bool = False
                                  ) -> FourRoomsProblem:
    """The registry's builder of ``stackelberg/four-rooms-v0`` (kind ``"problem"``): the
    follower's entropy weight ``tau`` ([follower] tau in a config) is HPGD's ``lambda``.
    ``sampled = true`` adds the game the sample-based learners draw from (about 150 MB)."""
    if not isinstance(sampled, bool):
        raise ValueError(f"sampled must be true or false, got {sampled!r}")
    params = dict(lam=tau, beta=beta, slip=slip, gamma=gamma, scale=scale,
                  slip_kernel=slip_kernel)
    return sampled_four_rooms_problem(**params) if sampled else four_rooms_problem(**params)


def four_rooms_registered_env(kind: str = "parallel", max_cycles: int | None = None,
                              render_mode: str | None = None, *, lam: float = 0.001,
                              sampled: bool = False, **params: Any):
    """The registry's environment factory: ``max_cycles`` is the episode limit (HPGD's 200
    steps when None); ``sampled`` only concerns the problem and is ignored here."""
    return make_four_rooms_env(kind, max_steps=200 if max_cycles is None else max_cycles,
                               render_mode=render_mode, lam=lam, **params)
