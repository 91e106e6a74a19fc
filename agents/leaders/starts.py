"""Where the global search of the exact leaders starts (docs/theory.md §4, "Global search").

The candidate commitments of :class:`agents.leaders.search.SearchLeader`: the uniform one, one
tilted towards each leader action, random ones (:func:`starting_points`), and those found by
screening the simplex's vertices and sparse random commitments (:func:`sparse_points`), of
which the best of each follower response is kept (:func:`one_per_response`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Logit of a screened vertex over the other actions (1e-4 of the mass on each of them).
CORNER_TILT = math.log(1e4)


def starting_points(initial_x: np.ndarray, n_random: int, rng: np.random.Generator,
                    tilt: float = math.log(8.0)) -> list[np.ndarray]:
    """Candidate starting logits, in the order a search tries them.

    First ``initial_x`` (the uniform commitment); then, for each leader action ``b``,
    ``initial_x`` with ``tilt`` added to ``b`` in every state (``8 / (8 + m - 1)`` of the mass
    on ``b`` for ``m`` actions); then ``n_random`` random points from ``rng``: when ``x`` has
    several rows (a Markov game), the first half are per-state vertices (an independent random
    action tilted in each state), the rest interior points (rows of flat Dirichlet draws, as
    logits).

    Parameters
    ----------
    initial_x : numpy.ndarray
        The problem's default start, shape ``(rows, m)``.
    n_random : int
        Number of random points.
    rng : numpy.random.Generator
        The leader's stream.
    tilt : float
        Logit added for a tilted point.
    """
    rows, m = initial_x.shape
    points = [initial_x.copy()]
    for b in range(m):
        tilted = initial_x.copy()
        tilted[:, b] += tilt
        points.append(tilted)
    vertices = n_random // 2 if rows > 1 else 0
    for _ in range(vertices):
        tilted = initial_x.copy()
        tilted[np.arange(rows), rng.integers(m, size=rows)] += tilt
        points.append(tilted)
    for _ in range(n_random - vertices):
        points.append(np.log(rng.dirichlet(np.ones(m), size=rows)))
    return points


def sparse_points(shape: tuple[int, int], count: int,
                  rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` random commitments (as logits), each row drawn from a Dirichlet(1/2).

    Below 1 the Dirichlet puts its mass on few actions, so corners and edges of the simplex
    are drawn often: the response region where a game's optimum lies is often a thin one
    along an edge or at a vertex (docs/theory.md §4, "Global search"), which uniform draws and
    the tilted points of :func:`starting_points` miss. Masses are floored at ``1e-4`` so the
    logits stay finite and a local method can leave the corner.
    """
    return [np.log(np.maximum(rng.dirichlet(np.full(shape[1], 0.5), size=shape[0]), 1e-4))
            for _ in range(count)]


@dataclass(frozen=True)
class Assessment:
    """A commitment ``x`` as the leader's own model sees it: the follower's response (the
    argmax action in each state) and the upper objective against it."""

    x: np.ndarray
    response: tuple[int, ...]
    score: float


def one_per_response(assessed: Sequence[Assessment]) -> list[np.ndarray]:
    """The best-scoring (lowest) point of each follower response among ``assessed``, best
    first; ties keep the earlier point."""
    best: dict[tuple[int, ...], Assessment] = {}
    for a in assessed:
        if a.response not in best or a.score < best[a.response].score:
            best[a.response] = a
    return [a.x for a in sorted(best.values(), key=lambda a: a.score)]
