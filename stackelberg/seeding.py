"""One seed per run, independent random streams for each component (DESIGN, "Conventions")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RunStreams:
    """Independent ``numpy.random.Generator`` streams derived from one run seed.

    ``followers`` holds one stream per follower role; ``torch_seed`` is an integer for learners
    that build a ``torch.Generator``.
    """

    environment: np.random.Generator
    leader: np.random.Generator
    followers: tuple[np.random.Generator, ...]
    scheduler: np.random.Generator
    torch_seed: int


def run_streams(seed: int, n_followers: int = 1) -> RunStreams:
    """Derive the streams of one run from ``seed`` with ``numpy.random.SeedSequence.spawn``."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    root = np.random.SeedSequence(int(seed))
    env, leader, scheduler, torch_seq, *followers = root.spawn(4 + n_followers)
    return RunStreams(
        environment=np.random.default_rng(env),
        leader=np.random.default_rng(leader),
        followers=tuple(np.random.default_rng(f) for f in followers),
        scheduler=np.random.default_rng(scheduler),
        torch_seed=int(torch_seq.generate_state(1)[0]),
    )
