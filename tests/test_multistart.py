"""The multi-start option of the PBRL leader (``PBRLConfig.starts``): where it starts, that it
resumes the best start, and that the coordinator's stopping rule waits for it."""

from __future__ import annotations

import numpy as np
import pytest

import games
from agents.leaders.pbrl import PBRLConfig, PBRLLeader, starting_points
from agents.registry import FOLLOWERS
from stackelberg.coordinator import MatchConfig, run_match
from stackelberg.problem import StackelbergProblem
from stackelberg.seeding import run_streams
from stackelberg.tabular import softmax

# a random 3x3 game (the tests' generator, seed 1017) on which one start from the uniform
# commitment ends in the wrong follower-response region (sse_gap 0.27)
_payoffs = np.random.default_rng(1017)
TRAPPED = games.matrix_game(_payoffs.uniform(size=(3, 3)).tolist(),
                            _payoffs.uniform(size=(3, 3)).tolist())
TAU = 0.002


def play(model, iterations: int, match: dict | None = None, **leader_params):
    follower = FOLLOWERS["best-response"]
    return run_match(
        StackelbergProblem(model, TAU),
        PBRLLeader(PBRLConfig(**leader_params)),
        [follower.factory(follower.make_config())],
        MatchConfig(iterations=iterations, progress=False, **(match or {})),
        run_streams(0),
    )


@pytest.mark.parametrize("shape", [(1, 3), (4, 2)])
def test_starting_points_are_uniform_then_tilted_then_random(shape):
    points = starting_points(np.zeros(shape), 6, np.random.default_rng(0))
    again = starting_points(np.zeros(shape), 6, np.random.default_rng(0))
    m = shape[-1]
    assert len(points) == 6
    assert np.array_equal(points[0], np.zeros(shape))
    for j in range(m):
        mu = softmax(points[1 + j], axis=-1)
        assert np.allclose(mu[..., j], 8 / (8 + m - 1))
    random = points[1 + m:]
    assert len(random) == 6 - 1 - m
    assert all(np.allclose(softmax(x, axis=-1).sum(axis=-1), 1) for x in random)
    assert not np.allclose(random[0], random[1])
    assert all(np.array_equal(a, b) for a, b in zip(points, again, strict=True))


def test_the_first_start_is_the_plain_method():
    plain = play(TRAPPED, 50)
    multi = play(TRAPPED, 50, starts=4, start_iterations=100)
    columns = ("hyper_objective", "lower_level_gap", "penalty")
    for a, b in zip(plain.metrics, multi.metrics, strict=True):
        assert all(a[c] == b[c] for c in columns)


def test_multistart_resumes_the_best_start_and_escapes_a_local_optimum():
    single = play(TRAPPED, 1500)
    multi = play(TRAPPED, 1500, starts=4, start_iterations=300)
    rows = multi.metrics
    scored = [row for row in rows if "start_score" in row]
    assert [row["iteration"] for row in scored] == [301 * j for j in range(1, 5)]
    best = int(np.argmin([row["start_score"] for row in scored]))
    assert best != 0  # the plain start is the trapped one
    assert all(row["start"] == best for row in rows[rows.index(scored[-1]):])
    assert single.summary["sse_gap"] > 0.1
    assert multi.summary["sse_gap"] < 0.02


def test_the_tolerance_rule_waits_until_every_start_was_tried():
    result = play(TRAPPED, 2000, {"tolerance": 1e9, "patience": 1},
                  starts=3, start_iterations=20)
    assert result.summary["stopped_by"] == "tolerance"
    assert result.summary["iterations"] == PBRLConfig(starts=3,
                                                      start_iterations=20).minimum_iterations()
