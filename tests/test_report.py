"""Tournament rankings, scores, bands, heatmaps and the report, on synthetic stores with known
answers (tests/test_report_html.py opens the HTML page in a browser)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from analysis.bands import band, common_grid, facets_by_leader, game_bands, mean_band, on_grid
from analysis.palette import color_limits, make_palette
from analysis.report import ReportError, settings_table, slugs, write_report
from analysis.scoring import game_reference, hyper_objective_at_tau
from analysis.tables import failures_table, game_table, overall_table
from analysis.tournament import (
    Competitor,
    MatchData,
    ToleranceRule,
    average_ranks,
    failed_matches,
    first_reach,
    game_heatmap,
    overall_heatmap,
    overall_ranking,
    rank_game,
    rank_games,
    read_matches,
    settled_reach,
    t_interval,
)
from stackelberg.app.cli import main
from stackelberg.results import MatchRecord, ResultStore

ITERATIONS = 10


def metrics_rows(value: float, reach_at: int, samples_per_iteration: int = 100,
                 sse: float | None = None, tau: float = 0.1) -> list[dict]:
    """A curve whose leader value sits 1.0 below ``value`` until iteration ``reach_at``, then
    at ``value``; ``samples = samples_per_iteration * k``, ``wall_seconds = 0.1 k``."""
    rows = []
    for k in range(1, ITERATIONS + 1):
        v = value - (1.0 if k < reach_at else 0.0)
        row = {"iteration": k, "leader_value": v, "hyper_objective": -v, "tau": tau,
               "samples": samples_per_iteration * k, "wall_seconds": 0.1 * k,
               "lower_level_gap": 1e-3}
        if sse is not None:
            row["sse_gap"] = sse - v
        rows.append(row)
    return rows


def record(game: str, leader: str, follower: str, seed: int, value: float | None,
           samples_per_iteration: int = 100, error: str = "", sse: float | None = None,
           hyper: float | None = None) -> MatchRecord:
    """An ok match ending at leader value ``value``, or a failed one when ``value`` is None."""
    summary = {} if value is None else {
        "hyper_objective": -value if hyper is None else hyper, "leader_value": value,
        "lower_level_gap": 1e-3, "samples": samples_per_iteration * ITERATIONS,
        "wall_seconds": 0.1 * ITERATIONS}
    if value is not None and sse is not None:
        summary.update(sse_gap=sse - value, sse_leader_value=sse)
    return MatchRecord(match_id=f"{game}-{leader}-{follower}-{seed}", game=game, leader=leader,
                       follower=follower, seed=seed, status="ok" if value is not None else "failed",
                       error=error or None, config={"follower": {"tau": 0.1}}, summary=summary,
                       wall_seconds=1.0)


def data(rec: MatchRecord, rows: list[dict]) -> MatchData:
    return MatchData(rec, {k: np.array([row[k] for row in rows], dtype=float) for k in rows[0]})


# game "alpha": (leader, follower, seed, final leader value or None = failed, iteration reaching
# it); the best value found is 1.2 (A/x seed 1), so scores are 1.2 - V_L. "beta" is a matrix game
# with an exact SSE value 3.0; B/x is exact (no samples).
ALPHA = [("A", "x", 0, 1.0, 3), ("A", "x", 1, 1.2, 5), ("A", "x", 2, 1.1, 4),
         ("B", "x", 0, 0.5, 2), ("B", "x", 1, None, 0),
         ("A", "y", 0, 0.5, 2), ("A", "y", 1, 0.5, 2),
         ("B", "y", 0, None, 0)]
BETA = [("A", "x", 0, 2.0, 3), ("A", "x", 1, 2.0, 3), ("B", "x", 0, 2.9, 7),
        ("A", "y", 0, 1.0, 2), ("B", "y", 0, 1.0, 2)]
SSE = 3.0


def fill(store: ResultStore) -> None:
    for game, entries in (("alpha", ALPHA), ("beta", BETA)):
        sse = SSE if game == "beta" else None
        for leader, follower, seed, value, reach_at in entries:
            per_it = 0 if (game, leader, follower) == ("beta", "B", "x") else 100
            rec = record(game, leader, follower, seed, value, per_it, sse=sse,
                         error="Traceback ...\nValueError: diverged | at step 3")
            store.write_match(rec, metrics_rows(value, reach_at, per_it, sse) if rec.ok else ())


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tournament")
    with ResultStore(path) as store:
        store.bind_spec({"seeds": [0, 1, 2], "budget": {"iterations": ITERATIONS},
                         "leaders": [{"label": "B"}, {"label": "A"}],
                         "followers": [{"label": "y", "tau": 0.1}, {"label": "x", "tau": 0.1}],
                         "games": [{"label": "alpha", "id": "g/alpha"}]})
        fill(store)
    return path


@pytest.fixture(scope="module")
def matches(store_dir) -> list[MatchData]:
    with ResultStore(store_dir) as store:
        return read_matches(store)


@pytest.fixture(scope="module")
def alpha(matches):
    return rank_game(matches, "alpha")


@pytest.fixture(scope="module")
def beta(matches):
    return rank_game(matches, "beta")


def by_label(ranking):
    return {s.competitor.label: s for s in ranking.standings}


# -- statistics ---------------------------------------------------------------------------------
def test_t_interval_matches_a_hand_computation():
    interval = t_interval([-1.0, -1.2, -1.1])
    # s = 0.1, t_{0.975, 2} = 4.302653, half-width = t s / sqrt(3)
    assert interval.mean == pytest.approx(-1.1)
    assert interval.half_width == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-6)
    assert interval.n == 3
    single = t_interval([2.0])
    assert single.mean == 2.0 and math.isnan(single.half_width)
    assert math.isnan(t_interval([]).mean)


def test_ties_share_the_average_rank_and_nan_ranks_last():
    np.testing.assert_array_equal(average_ranks([3.0, 1.0, 3.0, np.nan, 2.0]),
                                  [3.5, 1, 3.5, 5, 2])
    np.testing.assert_array_equal(average_ranks([np.inf, np.nan, 0.0]), [2.5, 2.5, 1])
    # values equal up to rounding tie when a tolerance is given, and only then
    close = [0.048, 0.048 + 1e-15, 0.5]
    np.testing.assert_array_equal(average_ranks(close), [1, 2, 3])
    np.testing.assert_array_equal(average_ranks(close, 1e-9), [1.5, 1.5, 3])


def test_tolerance_is_relative_to_the_range_or_absolute_when_it_is_zero():
    assert ToleranceRule().tolerance([-1.1, -0.5, np.nan]) == pytest.approx(6e-3)
    assert ToleranceRule().tolerance([2.0, 2.0]) == 1e-3
    assert ToleranceRule(relative=0.5, absolute=0.1).tolerance([1.0, 3.0]) == 1.0
    with pytest.raises(ValueError, match="relative"):
        ToleranceRule(relative=0.0)


def test_reaching_a_target_means_staying_there():
    metrics = {"iteration": np.arange(1.0, 7.0), "samples": 10 * np.arange(1.0, 7.0),
               "wall_seconds": np.arange(1.0, 7.0),
               "score": np.array([3.0, 0.5, 2.0, 0.9, 0.4, 0.1])}
    assert first_reach(metrics, 1.0, "score").iteration == 2  # passes through at 2
    reach = settled_reach(metrics, 1.0)
    assert (reach.iteration, reach.samples) == (4, 40)  # and stays from 4 on
    assert settled_reach(metrics, 0.05) is None
    leaves = {**metrics, "score": np.array([0.1, 0.1, 0.1, 0.1, 0.1, 2.0])}
    assert first_reach(leaves, 1.0, "score").iteration == 1 and settled_reach(leaves, 1.0) is None


# -- scores -------------------------------------------------------------------------------------
def test_the_reference_is_exact_in_a_matrix_game_and_the_best_value_found_elsewhere(
        alpha, beta):
    assert beta.reference.exact and beta.reference.value == SSE
    assert "V_SSE = 3" in beta.reference.describe()
    assert alpha.reference.kind == "best-found" and alpha.reference.value == pytest.approx(1.2)
    s = by_label(alpha)
    assert s["A / x"].score.mean == pytest.approx(0.1)  # 1.2 - mean(1.0, 1.2, 1.1)
    assert s["A / x"].leader_value == pytest.approx(1.1)
    assert s["A / x"].score.half_width == pytest.approx(0.248414, rel=1e-5)
    assert by_label(beta)["B / x"].score.mean == pytest.approx(0.1)  # 3.0 - 2.9


def test_a_higher_value_found_mid_run_is_the_reference():
    rows = metrics_rows(1.0, 3)
    rows[1]["leader_value"] = 1.7  # a commitment found at iteration 2 and then lost
    ref = game_reference([record("g", "A", "x", 0, 1.0).summary], [data(record(
        "g", "A", "x", 0, 1.0), rows).metrics])
    assert ref.value == 1.7


def test_a_sampled_game_is_described_as_sampled_not_as_an_exact_best_response():
    """A simulator or text game's leader value is an estimate against the learned follower:
    its reference, its description and its table say so; an exact game's do not."""
    def matches(sampled: bool) -> list[MatchData]:
        out = []
        for seed, value in enumerate([1.0, 1.3]):
            rec = record("g", "A", "x", seed, value)
            if sampled:
                rec.summary.update(metrics="sampled (2000 episodes per row; *_se: standard "
                                   "errors)", leader_value_se=0.01)
            out.append(data(rec, metrics_rows(value, 1)))
        return out

    sampled, exact = rank_game(matches(True), "g"), rank_game(matches(False), "g")
    assert sampled.reference.sampled and not exact.reference.sampled
    assert sampled.reference.value == exact.reference.value == pytest.approx(1.3)
    assert "Monte-Carlo" in sampled.reference.describe()
    assert "exact unregularized best response" in exact.reference.describe()
    assert "Monte-Carlo" not in exact.reference.describe()
    headers = [c.header for c in game_table(sampled).columns]
    assert "V_L (sampled, vs the learned follower)" in headers
    assert "V_L vs exact best response" in [c.header for c in game_table(exact).columns]


def test_the_textbook_case_ranks_by_distance_to_the_sse_not_by_the_leaders_own_f():
    """The issue's case: a leader with a decaying entropy weight reports f at its own tau_k
    (-3.47, better than -3.43), but its leader value is further from the SSE value 3.5."""
    decayed = record("textbook", "rac", "soft-q", 0, 3.4633, sse=3.5, hyper=-3.4687)
    plain = record("textbook", "rac", "mirror-descent", 0, 3.4884, sse=3.5, hyper=-3.43)
    rows = {decayed.match_id: metrics_rows(3.4633, 1, sse=3.5, tau=0.007),
            plain.match_id: metrics_rows(3.4884, 1, sse=3.5, tau=0.02)}
    matches = [data(rec, rows[rec.match_id]) for rec in (decayed, plain)]
    ranking = rank_game(matches, "textbook")
    assert [s.competitor.follower for s in ranking.standings] == ["mirror-descent", "soft-q"]
    assert ranking.standings[0].score.mean == pytest.approx(3.5 - 3.4884)
    # f recorded at the leader's own tau (0.007, the follower's is 0.1) is shown as missing
    assert math.isnan(ranking.standings[1].hyper_objective)


def test_f_at_the_followers_tau_is_kept_only_when_recorded_at_it():
    rows = data(record("g", "A", "x", 0, 1.0), metrics_rows(1.0, 1, tau=0.1)).metrics
    config = {"follower": {"tau": 0.1}}
    assert hyper_objective_at_tau({"hyper_objective": -1.0}, rows, config) == -1.0
    moved = {**rows, "tau": np.full(ITERATIONS, 0.05)}
    assert math.isnan(hyper_objective_at_tau({"hyper_objective": -1.0}, moved, config))


# -- one game -----------------------------------------------------------------------------------
def test_game_ranking_orders_by_mean_score(alpha):
    assert [s.competitor.label for s in alpha.standings] == [
        "A / x", "A / y", "B / x", "B / y"]  # A/y and B/x tie, listed by name
    s = by_label(alpha)
    assert [s[k].rank for k in ("A / x", "A / y", "B / x", "B / y")] == [1, 2.5, 2.5, 4]
    assert math.isnan(s["B / x"].score.half_width)  # one successful seed


def test_seeds_that_change_nothing_are_said_so(alpha):
    s = by_label(alpha)
    assert s["A / y"].deterministic and not s["A / x"].deterministic
    assert not s["B / x"].deterministic  # a single seed proves nothing
    table = game_table(alpha).to_markdown()
    row = {line.split("|")[2].strip() + "/" + line.split("|")[3].strip(): line
           for line in table.splitlines()[2:]}
    assert "identical over seeds" in row["A/y"] and "1 seed" in row["B/x"]
    assert "identical over seeds" not in row["A/x"] and "± 0 " not in table


def test_failed_matches_are_counted_excluded_and_listed(matches, alpha):
    s = by_label(alpha)
    assert (s["B / x"].seeds_ok, s["B / x"].seeds_failed) == (1, 1)
    assert s["B / x"].score.mean == pytest.approx(0.7)  # the failed seed is not in the mean
    assert (s["B / y"].seeds_ok, s["B / y"].seeds_failed) == (0, 1)
    assert math.isnan(s["B / y"].score.mean)  # no successful seed: ranked last
    failed = failed_matches(matches)
    assert [(f.game, f.competitor.label, f.seed) for f in failed] == [
        ("alpha", "B / x", 1), ("alpha", "B / y", 0)]
    markdown = failures_table(failed).to_markdown()
    assert "ValueError: diverged \\| at step 3" in markdown and "Traceback" not in markdown


def test_speed_is_samples_then_iterations_to_a_settled_target(alpha, beta):
    # alpha: best mean score 0.1, range 0.6 -> tolerance 6e-3, target 0.106: seed 1.0 (score
    # 0.2) never gets there, seeds 1.2 and 1.1 settle at iterations 5 and 4 -> median of
    # (inf, 500, 400) = 500 samples, iteration 5
    assert alpha.best == pytest.approx(0.1) and alpha.tolerance == pytest.approx(6e-3)
    s = by_label(alpha)
    assert s["A / x"].reached == 2
    assert (s["A / x"].samples_to_tol, s["A / x"].iterations_to_tol) == (500, 5)
    assert s["A / x"].seconds_to_tol == pytest.approx(0.5)
    assert s["A / y"].reached == 0 and s["A / y"].samples_to_tol == math.inf
    assert s["A / x"].speed_rank == 1 and s["A / y"].speed_rank == 3  # the rest tie
    # beta: B/x draws no samples and settles at iteration 7: first by samples
    assert by_label(beta)["B / x"].samples_to_tol == 0 and by_label(beta)["B / x"].speed_rank == 1
    table = game_table(alpha).to_markdown()
    assert "not reached" in table and "speed rank (samples, then iterations)" in table
    assert "wall s to target (not ranked)" in table


def test_wall_time_never_changes_a_ranking(matches):
    """Two runs of one tournament differ in wall time only: the rankings are the same."""
    slow = [MatchData(m.record, {**m.metrics, "wall_seconds": m.metrics["wall_seconds"]
                                 * (7.0 if m.competitor.leader == "A" else 0.01)})
            if m.ok else m for m in matches]
    for a, b in zip(rank_games(matches), rank_games(slow), strict=True):
        assert [(s.competitor, s.rank, s.speed_rank) for s in a.standings] == [
            (s.competitor, s.rank, s.speed_rank) for s in b.standings]


def test_a_single_competitor_uses_the_absolute_tolerance():
    ranking = rank_game([data(record("solo", "A", "x", 0, 5.0), metrics_rows(5.0, 3))], "solo")
    assert ranking.tolerance == 1e-3 and ranking.standings[0].samples_to_tol == 300


# -- across games -------------------------------------------------------------------------------
def test_overall_ranking_is_by_average_rank(matches):
    overall = overall_ranking(rank_games(matches))
    # alpha ranks A/x 1, A/y 2.5, B/x 2.5, B/y 4; beta: B/x 1, A/x 2, A/y 3.5, B/y 3.5
    assert [(s.competitor.label, s.average_rank, s.rank) for s in overall] == [
        ("A / x", 1.5, 1), ("B / x", 1.75, 2), ("A / y", 3.0, 3), ("B / y", 3.75, 4)]
    assert overall[1].game_ranks == {"alpha": 2.5, "beta": 1.0}
    assert (overall[1].seeds_ok, overall[1].seeds_failed) == (2, 1)


def test_equal_average_ranks_share_the_overall_rank():
    rows = [MatchData(record(game, leader, "x", 0, value), {})
            for game, leader, value in (("g1", "P", 2.0), ("g1", "Q", 1.0),
                                        ("g2", "P", 1.0), ("g2", "Q", 2.0), ("g2", "R", 0.0))]
    overall = overall_ranking(rank_games(rows))
    assert [(s.competitor.leader, s.rank) for s in overall] == [("P", 1.5), ("Q", 1.5),
                                                                ("R", 3.0)]
    assert overall[2].games == 1


def test_a_pair_that_skipped_games_cannot_top_the_overall_ranking_nor_the_heatmap():
    # S plays only g1 and wins it; P and Q play both games: they rank ahead of S
    rows = [MatchData(record(game, leader, "x", 0, value), {})
            for game, leader, value in (("g1", "S", 3.0), ("g1", "P", 2.0), ("g1", "Q", 1.0),
                                        ("g2", "P", 2.0), ("g2", "Q", 1.0))]
    overall = overall_ranking(rank_games(rows))
    assert [(s.competitor.leader, s.rank, s.average_rank) for s in overall] == [
        ("P", 1.0, 1.5), ("Q", 2.0, 2.5), ("S", 3.0, 1.0)]
    heat = overall_heatmap(overall)
    assert [heat.leaders[i] for i, _ in heat.best] == ["P"]


def test_the_heatmaps_best_pairs_are_the_tables_first(matches):
    rankings = rank_games(matches)
    overall = overall_ranking(rankings)
    heat = overall_heatmap(overall)
    first = overall_table(overall, [r.game for r in rankings]).rows[0]
    assert [(heat.leaders[i], heat.followers[j]) for i, j in heat.best] == [
        (first["leader"], first["follower"])]
    i, j = heat.best[0]
    assert heat.values[i, j] == np.nanmin(heat.values) == first["rank"]
    for ranking in rankings:
        game = game_heatmap(ranking)
        top = game_table(ranking).rows[0]
        assert (game.leaders[game.best[0][0]], game.followers[game.best[0][1]]) == (
            top["leader"], top["follower"])


def test_tables_name_the_objective_direction(matches):
    rankings = rank_games(matches)
    overall = overall_table(overall_ranking(rankings), ["alpha", "beta"]).to_markdown()
    assert "lower is better" in overall and "rank in beta" in overall
    assert "distance to best value found" in game_table(rankings[0]).to_markdown()
    assert "distance to SSE value" in game_table(rankings[1]).to_markdown()


# -- bands, facets, heatmaps, palette -----------------------------------------------------------
def test_band_interpolates_seeds_onto_a_common_grid():
    a = (np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0]))
    b = (np.array([1.0, 3.0, 5.0]), np.array([4.0, 2.0, 0.0]))
    late = (np.array([2.0, 5.0]), np.array([6.0, 6.0]))
    result = band(Competitor("A", "x"), [a, b, late])
    np.testing.assert_array_equal(result.x, [1, 2, 3, 5])
    # a held at 1 after x=3; b interpolated at 2 -> 3; late is missing at x=1
    np.testing.assert_allclose(result.median, [3.5, 3, 2, 1])
    np.testing.assert_allclose(result.mean, [3.5, 11 / 3, 3, 7 / 3])
    np.testing.assert_allclose(result.low, [3, 2, 1, 0])
    np.testing.assert_allclose(result.high, [4, 6, 6, 6])
    assert result.seeds == 3
    assert np.isnan(on_grid(*late, np.array([1.0, 2.0]))[0])
    np.testing.assert_allclose(common_grid([np.arange(1000.0)], max_points=5),
                               [0, 249.75, 499.5, 749.25, 999])


def test_mean_band_is_a_t_interval_for_the_mean():
    a = (np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0]))
    b = (np.array([1.0, 3.0, 5.0]), np.array([4.0, 2.0, 0.0]))
    late = (np.array([2.0, 5.0]), np.array([6.0, 6.0]))
    result = mean_band(Competitor("A", "x"), [a, b, late])
    # at x = 2 the seeds are 2, 3, 6: mean 11/3, sd sqrt(13/3), t(0.975, 2) = 4.302653
    half = 4.302653 * np.sqrt(13 / 3) / np.sqrt(3)
    np.testing.assert_allclose(result.mean[1], 11 / 3)
    np.testing.assert_allclose([result.low[1], result.high[1]], [11 / 3 - half, 11 / 3 + half],
                               rtol=1e-6)
    single = mean_band(Competitor("A", "x"), [a])
    assert np.isnan(single.low).all() and np.isnan(single.high).all()


def test_game_bands_are_scores_in_ranking_order(matches, alpha, beta):
    bands = game_bands(matches, alpha, "iteration")
    assert [b.competitor.label for b in bands.bands] == ["A / x", "A / y", "B / x"]  # B/y failed
    first = bands.bands[0]
    np.testing.assert_array_equal(first.x, np.arange(1, ITERATIONS + 1))
    # seeds end at V_L 1.0, 1.2, 1.1 (best 1.2) after 1.0 less until iterations 3, 5, 4
    np.testing.assert_allclose(first.median[-1], 0.1)
    np.testing.assert_allclose(first.median[2], 1.0)  # iteration 3: 0.2, 1.0, 1.1
    assert bands.y_label.startswith("distance to best value found") and not bands.exact
    by_samples = game_bands(matches, beta, "samples")
    assert by_samples.exact and "B / x" not in {b.competitor.label for b in by_samples.bands}
    with pytest.raises(ValueError, match="x_name"):
        game_bands(matches, alpha, "seconds")


def test_facets_hold_at_most_eight_curves_per_leader():
    x = np.arange(1.0, 4.0)
    bands = [band(Competitor(leader, f"f{k}"), [(x, x)]) for leader in ("L1", "L2")
             for k in range(11 if leader == "L1" else 2)]
    from analysis.bands import GameBands

    facets = facets_by_leader(GameBands("g", "iteration", "d", tuple(bands), 1.0, True),
                              ["L2", "L1", "L3"])
    assert [(f.leader, len(f.bands), f.hidden) for f in facets] == [("L2", 2, 0), ("L1", 8, 3)]
    assert [b.competitor.follower for b in facets[1].bands] == [f"f{k}" for k in range(8)]


def test_heatmaps_keep_one_order_and_outline_the_first(matches, alpha):
    heat = game_heatmap(alpha, leaders=("B", "A"), followers=("y", "x"))
    assert heat.leaders == ("B", "A") and heat.followers == ("y", "x")
    np.testing.assert_allclose(heat.values, [[np.nan, 0.7], [0.7, 0.1]])
    assert heat.best == ((1, 1),) and heat.log
    overall = overall_heatmap(overall_ranking(rank_games(matches)), ("B", "A"), ("y", "x"))
    np.testing.assert_allclose(overall.values, [[4, 2], [3, 1]])
    assert not overall.log


def test_palette_follows_the_spec_order_and_is_fixed():
    spec = {"leaders": [{"label": "zeta"}, {"label": "alpha"}],
            "followers": [{"learner": "soft-q", "label": "sq"}, {"label": "br"}]}
    palette = make_palette(["alpha", "extra", "zeta"], ["br", "sq"], spec)
    assert palette.leaders == ("zeta", "alpha", "extra")
    assert palette.followers == ("sq", "br")
    assert palette.follower_style("sq") != palette.follower_style("br")
    again = make_palette(["zeta", "alpha", "extra"], ["sq", "br"], spec)
    assert again.follower_style("br") == palette.follower_style("br")


def test_colour_limits_clip_outliers_at_percentiles():
    values = np.array([[0.01, 0.02, 0.03], [0.04, 0.05, 1e6], [np.nan, 0.0, 0.02]])
    low, high = color_limits(values, log=True, percentiles=(0, 80))
    assert low == pytest.approx(0.01) and high < 1.0  # the outlier does not stretch it
    assert color_limits(np.array([[2.0, 2.0]]), log=False) == (1.5, 2.5)
    assert color_limits(np.full((2, 2), np.nan), log=True) is None


# -- the report and the command -----------------------------------------------------------------
@pytest.fixture(scope="module")
def report(store_dir):
    return write_report(store_dir, dpi=60)


@pytest.mark.xdist_group("report")  # one worker writes the module's report once
def test_report_index_opens_with_the_overall_ranking(report, store_dir):
    assert report.out_dir == store_dir / "report"
    text = report.index.read_text()
    first_table = text[text.index("\n|"):].split("\n\n")[0]
    assert "average rank" in first_table.splitlines()[1]
    assert first_table.splitlines()[3].startswith("| 1 | A | x | 1.5 |")
    assert text.index("Best overall") < text.index("\n|") < text.index("## Game alpha")
    assert text.index("## Game beta") < text.index("## Failed matches (2)")
    assert "V_SSE = 3" in text and "V_best = 1.2" in text
    assert "seeds [0, 1, 2]" in text  # the settings the tables come from


@pytest.mark.xdist_group("report")
def test_report_links_only_files_it_wrote_every_figure_as_png_and_svg(report):
    text = report.index.read_text()
    links = set(re.findall(r"\]\(([^)#]+)\)", text))
    assert {"rankings_overall.csv", "rankings_alpha.csv", "convergence_alpha.png",
            "convergence_alpha.svg", "heatmap_alpha.png", "heatmap_overall.png",
            "heatmap_overall.svg", "failed_matches.csv"} <= links
    assert all((report.out_dir / link).is_file() for link in links)
    assert {p.name for p in report.figures} == {link for link in links
                                                if link.endswith((".png", ".svg"))}
    stems = {p.stem for p in report.figures}
    assert {p.stem for p in report.figures if p.suffix == ".png"} == stems
    assert {p.stem for p in report.figures if p.suffix == ".svg"} == stems


@pytest.mark.xdist_group("report")
def test_report_html_is_one_page_with_the_figures_inside(report):
    page = report.html.read_text()
    assert page.count("data:image/png;base64,") == len(report.figures) // 2
    assert 'src="' not in page.replace('src="data:image/png;base64,', "")  # nothing external
    assert '<table id="ranking-overall">' in page and "Failed matches (2)" in page
    assert page.index('<table id="ranking-overall">') < page.index('<h2 id="game-alpha">')


@pytest.mark.xdist_group("report")
def test_report_csv_holds_numbers(report):
    lines = (report.out_dir / "rankings_alpha.csv").read_text().splitlines()
    header = lines[0].split(",")
    first = dict(zip(header, lines[1].split(","), strict=True))
    assert first["leader"] == "A" and float(first["score_mean"]) == pytest.approx(0.1)
    assert float(first["score_ci_high"]) - float(first["score_ci_low"]) == pytest.approx(
        2 * 0.248414, rel=1e-5)
    assert lines[4].split(",")[header.index("score_mean")] == ""  # B/y: no successful seed


def test_settings_table_lists_every_spec_entry():
    table = settings_table({"seeds": [0, 1], "budget": {"iterations": 5},
                            "games": [{"label": "g", "id": "x/y", "n": 3}],
                            "followers": [{"label": "br", "tau": 0.02}],
                            "exclude": [{"leader": ["a"]}]})
    cells = [(r["kind"], r["name"], r["settings"]) for r in table.rows]
    assert cells == [("seeds", "", "[0, 1]"), ("budget", "every match", "iterations = 5"),
                     ("game", "g", 'id = x/y, n = 3'), ("follower", "br", "tau = 0.02"),
                     ("exclude", "", 'leader = ["a"]')]


def test_slugs_are_file_safe_and_distinct():
    assert slugs(["stackelberg/matrix-v0", "a b", "a_b"]) == {
        "stackelberg/matrix-v0": "stackelberg_matrix-v0", "a b": "a_b", "a_b": "a_b_2"}


def test_report_refuses_what_is_not_a_store(tmp_path):
    with pytest.raises(ReportError, match="not a directory"):
        write_report(tmp_path / "nowhere")
    with pytest.raises(ReportError, match="holds no results.sqlite"):
        write_report(tmp_path)
    assert not (tmp_path / "results.sqlite").exists()  # nothing created by looking


def test_a_store_of_failures_still_gets_a_report(tmp_path):
    with ResultStore(tmp_path) as store:
        store.write_match(record("g", "A", "x", 0, None, error="RuntimeError: boom"))
    files = write_report(tmp_path, tmp_path / "out")
    text = files.index.read_text()
    assert "No match succeeded" in text and "RuntimeError: boom" in text
    assert files.figures == () and "nan" not in text
    assert "RuntimeError: boom" in files.html.read_text()


@pytest.fixture
def cli(monkeypatch, capsys, tmp_path):
    def call(*args: str):
        monkeypatch.chdir(tmp_path)
        code = main(list(args))
        return code, capsys.readouterr()

    return call


def test_cli_report_exit_codes(tmp_path, cli):
    code, out = cli("report", "missing")
    assert code == 2 and "missing is not a directory" in out.err and "Traceback" not in out.err
    (tmp_path / "plain").mkdir()
    code, out = cli("report", "plain")
    assert code == 2 and "holds no results.sqlite" in out.err
    (tmp_path / "empty").mkdir()
    ResultStore(tmp_path / "empty").close()
    code, out = cli("report", "empty")
    assert code == 2 and "holds no match" in out.err
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "results.sqlite").write_text("not a database")
    code, out = cli("report", "junk")
    assert code == 2 and "cannot be read" in out.err
    code, out = cli("report", "empty", "--tolerance", "0")
    assert code == 2 and "--tolerance" in out.err


def test_cli_report_writes_the_report(tmp_path, cli):
    with ResultStore(tmp_path) as store:
        store.write_match(record("g", "A", "x", 0, 1.0), metrics_rows(1.0, 2))
        store.write_match(record("g", "B", "x", 0, 2.0), metrics_rows(2.0, 2))
    code, out = cli("report", ".", "--out", "rep")
    assert code == 0, out.err
    assert "rep/index.md" in out.out
    assert (tmp_path / "rep" / "rankings_g.csv").is_file()
    assert (tmp_path / "rep" / "index.html").is_file()
    drawn = {p.name for p in (tmp_path / "rep").iterdir()}
    assert {"heatmap_g.png", "heatmap_g.svg", "convergence_g.png"} <= drawn
    # --no-figures: the same tables, an index that shows no figure, nothing drawn
    code, out = cli("report", ".", "--out", "bare", "--no-figures")
    assert code == 0, out.err
    bare = tmp_path / "bare"
    assert {p.name for p in bare.iterdir()} == \
        {n for n in drawn if not n.endswith((".png", ".svg"))}
    for name in ("rankings_g.csv", "rankings_overall.csv"):
        assert (bare / name).read_bytes() == (tmp_path / "rep" / name).read_bytes()
    assert ".png" in (tmp_path / "rep" / "index.md").read_text()
    assert ".png" not in (bare / "index.md").read_text()
    assert "<img" not in (bare / "index.html").read_text()
    # the ranking rule mentions the overall heatmap only where there is one
    assert "overall heatmap" in (tmp_path / "rep" / "index.md").read_text()
    assert "heatmap" not in (bare / "index.md").read_text()


# -- a real tournament, played twice --------------------------------------------------------------
TINY_SPEC = {
    "seeds": [0, 1], "budget": {"iterations": 20, "metrics_every": 5},
    "games": [{"label": "textbook", "id": "stackelberg/matrix-v0",
               "leader_payoffs": [[2, 4], [1, 3]], "follower_payoffs": [[1, 0], [0, 1]]},
              {"label": "markov", "id": "stackelberg/random-markov-v0", "n_states": 3,
               "seed": 1}],
    "leaders": [{"algorithm": "pbrl-value"}, {"algorithm": "hypergradient"},
                {"algorithm": "rac"}, {"algorithm": "zeroth-order", "budget": {"iterations": 8}}],
    "followers": [{"learner": "best-response", "tau": 0.05}, {"learner": "soft-q", "tau": 0.05}],
    "exclude": [{"leader": ["rac"], "game": ["markov"]}],
}


@pytest.fixture(scope="module")
def played_twice(tmp_path_factory):
    from analysis.report import read_store
    from stackelberg.app.tournament.runner import run_tournament
    from stackelberg.app.tournament.spec import parse_spec

    runs = []
    for k in range(2):
        out = tmp_path_factory.mktemp(f"tiny{k}")
        run_tournament(parse_spec(TINY_SPEC), out, workers=1, progress=False)
        runs.append(read_store(out))
    return runs


def _ranking_view(matches):
    rankings = rank_games(matches)
    games = [(r.game, r.reference, [(s.competitor, s.rank, s.speed_rank, s.score.mean,
                                     s.samples_to_tol, s.iterations_to_tol)
                                    for s in r.standings]) for r in rankings]
    overall = [(s.competitor, s.rank) for s in overall_ranking(rankings)]
    return games, overall


@pytest.mark.xdist_group("played-twice")  # one worker plays the two tournaments once
def test_two_runs_of_a_tournament_give_identical_rankings(played_twice):
    first, second = played_twice
    seconds = [[m.record.wall_seconds for m in run] for run in played_twice]
    assert seconds[0] != seconds[1]  # the machine's timing differs, the rankings do not
    assert _ranking_view(first) == _ranking_view(second)


@pytest.mark.xdist_group("played-twice")
def test_a_real_matrix_game_is_ranked_by_distance_to_its_sse_value(played_twice):
    matches = played_twice[0]
    textbook = rank_game(matches, "textbook")
    assert textbook.reference.exact and textbook.reference.value == pytest.approx(3.5)
    by_pair = {}
    for m in matches:
        if m.game == "textbook":
            by_pair.setdefault(m.competitor, []).append(3.5 - m.final("leader_value"))
    means = [float(np.mean(by_pair[s.competitor])) for s in textbook.standings]
    np.testing.assert_allclose([s.score.mean for s in textbook.standings], means, atol=1e-12)
    assert means == sorted(means)
    # rac reports its f at its own decayed tau_k: shown as missing, never ranked on
    rac = [s for s in textbook.standings if s.competitor.leader == "rac"]
    assert rac and all(math.isnan(s.hyper_objective) for s in rac)
    markov = rank_game(matches, "markov")
    assert markov.reference.kind == "best-found" and min(
        s.score.mean for s in markov.standings) >= 0
    overall = overall_ranking(rank_games(matches))
    heat = overall_heatmap(overall)
    assert (heat.leaders[heat.best[0][0]], heat.followers[heat.best[0][1]]) == (
        overall[0].competitor.leader, overall[0].competitor.follower)
