"""The global search every exact leader runs (agents/leaders/search.py): where it starts, how it
plans its budget, that it resumes the best start, and that the coordinator's stopping rule
waits for it."""

from __future__ import annotations

import numpy as np
import pytest

import games
from agents.leaders.search import (
    MIN_START_ITERATIONS,
    SearchLeader,
    SearchSettings,
    halving_rounds,
    plan_search,
    search_length,
)
from agents.leaders.starts import CORNER_TILT, sparse_points, starting_points
from agents.registry import FOLLOWERS, LEADERS
from stackelberg.coordinator import MatchConfig, run_match
from stackelberg.problem import StackelbergProblem
from stackelberg.seeding import run_streams
from stackelberg.tabular import softmax

EXACT_LEADERS = ("pbrl-value", "pbrl-bellman", "hypergradient", "partial-gradient")
# a random 3x3 game (the tests' generator, seed 1002) on which the local method from the uniform
# commitment ends in the wrong follower-response region
_payoffs = np.random.default_rng(1002)
TRAPPED = games.matrix_game(_payoffs.uniform(size=(3, 3)).tolist(),
                            _payoffs.uniform(size=(3, 3)).tolist())
TAU = 0.01


def play(model, iterations: int, match: dict | None = None, leader: str = "pbrl-value",
         seed: int = 0, **leader_params):
    spec, follower = LEADERS[leader], FOLLOWERS["best-response"]
    return run_match(
        StackelbergProblem(model, TAU),
        spec.factory(spec.make_config(**leader_params)),
        [follower.factory(follower.make_config())],
        MatchConfig(iterations=iterations, progress=False, **(match or {})),
        run_streams(seed),
    )


@pytest.mark.parametrize("shape", [(1, 3), (4, 2)])
def test_starting_points_cover_every_leader_action_then_random_points(shape):
    points = starting_points(np.zeros(shape), 4, np.random.default_rng(0))
    again = starting_points(np.zeros(shape), 4, np.random.default_rng(0))
    other = starting_points(np.zeros(shape), 4, np.random.default_rng(1))
    rows, m = shape
    assert len(points) == 1 + m + 4
    assert np.array_equal(points[0], np.zeros(shape))
    for b in range(m):  # one start tilted towards each leader action, in every state
        mu = softmax(points[1 + b], axis=-1)
        assert np.allclose(mu[:, b], 8 / (8 + m - 1))
    random = points[1 + m:]
    if rows > 1:  # per-state vertices: a random tilted action in each state
        for x in random[:2]:
            mu = softmax(x, axis=-1)
            assert np.allclose(mu.max(axis=1), 8 / (8 + m - 1))
        assert not all(np.array_equal(softmax(x, axis=-1).argmax(axis=1),
                                      softmax(points[1], axis=-1).argmax(axis=1))
                       for x in random[:2] + other[1 + m:][:2])
    assert all(np.allclose(softmax(x, axis=-1).sum(axis=-1), 1) for x in random)
    assert all(np.array_equal(a, b) for a, b in zip(points, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(points, other, strict=True))


def test_successive_halving_keeps_the_better_half_for_twice_as_long():
    assert halving_rounds(7, 10) == ((7, 10), (4, 20), (2, 40))
    assert halving_rounds(2, 5) == ((2, 5),)
    assert halving_rounds(1, 5) == ()
    assert search_length(halving_rounds(7, 10)) == 7 * 11 + 4 * 21 + 2 * 41


def test_the_plan_adapts_to_the_game_and_the_budget():
    settings = SearchSettings()
    for candidates in (3, 7, 15):
        plan = plan_search(settings, candidates, 1000)
        assert plan.starts == candidates
        assert plan.rounds == halving_rounds(candidates, plan.start_iterations)
        # the first round is as long as the search's share of the match allows
        assert plan.search_end == search_length(plan.rounds) <= 400
        assert search_length(halving_rounds(candidates, plan.start_iterations + 1)) > 400
        assert plan.anneal_iterations == 400
    short = plan_search(settings, 15, 100)  # a short match scales the search down
    assert short.start_iterations >= MIN_START_ITERATIONS
    assert 1 < short.starts < 15 and short.search_end <= 40
    assert plan_search(settings, 9, 10).starts == 1
    explicit = SearchSettings(starts=3, start_iterations=20)
    assert plan_search(explicit, 9, 1000).rounds == ((3, 20), (2, 40))
    assert explicit.minimum_iterations() == 3 * 21 + 2 * 41 + 1
    assert settings.minimum_iterations() == 1
    assert plan_search(SearchSettings(tau_ratio=1.0), 5, 1000).anneal_iterations == 0


def test_screening_adds_one_start_per_follower_response():
    """Each vertex and sparse random point is judged by the exact response at the final tau;
    the best point of every response met becomes a start, after the uniform one."""
    problem = StackelbergProblem(TRAPPED, TAU)
    leader = LEADERS["hypergradient"].factory(LEADERS["hypergradient"].make_config())
    leader.reset(problem, np.random.default_rng(0))
    plain = starting_points(problem.initial_x(), 2, np.random.default_rng(0))
    screened = leader._points[1:len(leader._points) - len(plain) + 1]
    assert np.array_equal(leader._points[0], plain[0])
    assessed = [leader.assess(x) for x in screened]
    responses = [a.response for a in assessed]
    assert len(set(responses)) == len(responses) >= 2
    assert [a.score for a in assessed] == sorted(a.score for a in assessed)
    rng = np.random.default_rng(0)
    starting_points(problem.initial_x(), 2, rng)
    candidates = (starting_points(problem.initial_x(), 0, rng, tilt=CORNER_TILT)[1:]
                  + sparse_points(problem.x_shape, SearchSettings().screen_points, rng))
    for a in assessed:  # no candidate with the same response scores better
        assert all(leader.assess(x).score >= a.score for x in candidates
                   if leader.assess(x).response == a.response)


def test_every_exact_leader_runs_the_search():
    for name in EXACT_LEADERS:
        spec = LEADERS[name]
        leader = spec.factory(spec.make_config())
        assert isinstance(leader, SearchLeader)


def test_the_first_start_is_the_plain_method():
    plain = play(TRAPPED, 40, starts=1, tau_ratio=1.0)
    multi = play(TRAPPED, 40, starts=4, start_iterations=60, tau_ratio=1.0)
    columns = ("hyper_objective", "lower_level_gap", "penalty")
    for a, b in zip(plain.metrics, multi.metrics, strict=True):
        assert all(a[c] == b[c] for c in columns)


def new_leader(**params) -> SearchLeader:
    return LEADERS["pbrl-value"].factory(LEADERS["pbrl-value"].make_config(**params))


def play_leader(leader, model, iterations: int, match: dict | None = None):
    follower = FOLLOWERS["best-response"]
    return run_match(StackelbergProblem(model, TAU), leader,
                     [follower.factory(follower.make_config())],
                     MatchConfig(iterations=iterations, progress=False, **(match or {})),
                     run_streams(0))


def test_the_search_resumes_the_best_start_and_escapes_a_local_optimum():
    single = play(TRAPPED, 1000, starts=1)
    leader = new_leader()
    multi = play_leader(leader, TRAPPED, 1000)
    rows = multi.metrics
    scored = [row for row in rows if "start_score" in row]
    ends, done = [], 0
    for survivors, length in leader.plan.rounds:  # a scoring step after every run
        ends += [done + (length + 1) * j for j in range(1, survivors + 1)]
        done = ends[-1]
    assert [row["iteration"] for row in scored] == ends
    last_round = scored[-leader.plan.rounds[-1][0]:]
    best = min(last_round, key=lambda row: row["start_score"])
    assert best["start"] != 0  # the uniform start is the trapped one
    assert all(row["start"] == best["start"] for row in rows[rows.index(scored[-1]):])
    assert single.summary["sse_gap"] > 0.1
    assert multi.summary["sse_gap"] < 0.01
    # tau falls round by round towards its final value, and never rises again
    taus = [row["tau"] for row in rows]
    assert taus[0] == TAU and taus[-1] == pytest.approx(TAU / 100)
    assert all(a >= b for a, b in zip(taus, taus[1:], strict=False))
    assert len({row["tau"] for row in rows if row["iteration"] <= leader.plan.search_end}) \
        == len(leader.plan.rounds)


def test_the_order_of_the_leader_actions_does_not_matter():
    """The old multi-start tilted towards the first actions only: reordering the rows of a game
    moved its misses. Now every leader action gets a start."""
    L, F = (np.asarray(m) for m in (TRAPPED.leader_rewards[0], TRAPPED.follower_rewards[0]))
    for order in ([0, 1, 2], [2, 0, 1], [1, 2, 0]):
        model = games.matrix_game(L[order].tolist(), F[order].tolist())
        assert play(model, 600).summary["sse_gap"] < 0.01


def test_the_tolerance_rule_waits_for_the_search_and_the_continuation():
    leader = new_leader()
    result = play_leader(leader, TRAPPED, 1000, {"tolerance": 1e9, "patience": 1})
    plan = leader.plan
    assert result.summary["stopped_by"] == "tolerance"
    assert result.summary["iterations"] == plan.search_end + plan.anneal_iterations + 1


def test_an_explicit_search_that_does_not_fit_the_match_is_refused():
    from stackelberg.app.config import ConfigError, parse_config

    data = {"game": {"id": "stackelberg/matrix-v0"}, "run": {"iterations": 50},
            "leader": {"algorithm": "hypergradient", "starts": 3, "start_iterations": 20}}
    with pytest.raises(ConfigError, match="at least 146"):
        parse_config(data)
    data["leader"].pop("start_iterations")  # a planned search scales down instead
    assert parse_config(data).run.iterations == 50
