"""Tournament rankings, bands, heatmaps and the report, on synthetic stores with known answers."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from analysis.bands import band, common_grid, game_bands, mean_band, on_grid
from analysis.report import ReportError, slugs, write_report
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
    t_interval,
)
from stackelberg.app.cli import main
from stackelberg.results import MatchRecord, ResultStore

ITERATIONS = 10


def metrics_rows(final: float, reach_at: int, samples_per_iteration: int = 100) -> list[dict]:
    """A curve that sits 1.0 above ``final`` until iteration ``reach_at``, then at ``final``;
    ``samples = samples_per_iteration * k`` and ``wall_seconds = 0.1 k``."""
    return [{"iteration": k, "hyper_objective": final + (1.0 if k < reach_at else 0.0),
             "samples": samples_per_iteration * k, "wall_seconds": 0.1 * k,
             "lower_level_gap": 1e-3, "leader_value": -final}
            for k in range(1, ITERATIONS + 1)]


def record(game: str, leader: str, follower: str, seed: int, final: float | None,
           samples_per_iteration: int = 100, error: str = "") -> MatchRecord:
    """An ok match ending at ``final``, or a failed one when ``final`` is None."""
    summary = {} if final is None else {
        "hyper_objective": final, "leader_value": -final, "lower_level_gap": 1e-3,
        "samples": samples_per_iteration * ITERATIONS, "wall_seconds": 0.1 * ITERATIONS}
    return MatchRecord(match_id=f"{game}-{leader}-{follower}-{seed}", game=game, leader=leader,
                       follower=follower, seed=seed, status="ok" if final is not None else "failed",
                       error=error or None, config={}, summary=summary, wall_seconds=1.0)


# game "alpha": (leader, follower, seed, final f or None = failed, iteration reaching the end
# value); "beta": B/x is exact (no samples), so its speed is measured in seconds.
ALPHA = [("A", "x", 0, -1.0, 3), ("A", "x", 1, -1.2, 5), ("A", "x", 2, -1.1, 4),
         ("B", "x", 0, -0.5, 2), ("B", "x", 1, None, 0),
         ("A", "y", 0, -0.5, 2), ("A", "y", 1, -0.5, 2),
         ("B", "y", 0, None, 0)]
BETA = [("A", "x", 0, 2.0, 3), ("A", "x", 1, 2.0, 3), ("B", "x", 0, 1.0, 7),
        ("A", "y", 0, 3.0, 2), ("B", "y", 0, 3.0, 2)]


def fill(store: ResultStore) -> None:
    for game, entries in (("alpha", ALPHA), ("beta", BETA)):
        for leader, follower, seed, final, reach_at in entries:
            per_it = 0 if (game, leader, follower) == ("beta", "B", "x") else 100
            rec = record(game, leader, follower, seed, final, per_it,
                         error="Traceback ...\nValueError: diverged | at step 3")
            store.write_match(rec, metrics_rows(final, reach_at, per_it) if rec.ok else ())


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tournament")
    with ResultStore(path) as store:
        fill(store)
    return path


@pytest.fixture(scope="module")
def matches(store_dir) -> list[MatchData]:
    with ResultStore(store_dir) as store:
        return read_matches(store)


@pytest.fixture(scope="module")
def alpha(matches):
    return rank_game(matches, "alpha")


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


def test_tolerance_is_relative_to_the_range_or_absolute_when_it_is_zero():
    assert ToleranceRule().tolerance([-1.1, -0.5, np.nan]) == pytest.approx(6e-3)
    assert ToleranceRule().tolerance([2.0, 2.0]) == 1e-3
    assert ToleranceRule(relative=0.5, absolute=0.1).tolerance([1.0, 3.0]) == 1.0
    with pytest.raises(ValueError, match="relative"):
        ToleranceRule(relative=0.0)


def test_first_reach_picks_the_first_row_at_or_below_the_threshold():
    metrics = {k: np.array([row[k] for row in metrics_rows(-1.0, 4)], dtype=float)
               for k in ("iteration", "hyper_objective", "samples", "wall_seconds")}
    reach = first_reach(metrics, -1.0)
    assert (reach.iteration, reach.samples, reach.seconds) == (4, 400, pytest.approx(0.4))
    assert first_reach(metrics, -1.01) is None
    # any column can be the objective (e.g. the unregularized -leader_value)
    assert first_reach({**metrics, "g": -np.asarray(metrics["hyper_objective"])}, -1.0,
                       objective="g") is None


# -- one game -----------------------------------------------------------------------------------
def test_game_ranking_orders_by_mean_final_objective(alpha):
    assert [s.competitor.label for s in alpha.standings] == [
        "A / x", "A / y", "B / x", "B / y"]  # A/y and B/x tie, listed by name
    s = by_label(alpha)
    assert [s[k].rank for k in ("A / x", "A / y", "B / x", "B / y")] == [1, 2.5, 2.5, 4]
    assert s["A / x"].hyper_objective.mean == pytest.approx(-1.1)
    assert s["A / x"].leader_value == pytest.approx(1.1)
    assert s["A / x"].hyper_objective.half_width == pytest.approx(0.248414, rel=1e-5)
    assert math.isnan(s["B / x"].hyper_objective.half_width)  # one successful seed


def test_failed_matches_are_counted_excluded_and_listed(matches, alpha):
    s = by_label(alpha)
    assert (s["B / x"].seeds_ok, s["B / x"].seeds_failed) == (1, 1)
    assert s["B / x"].hyper_objective.mean == -0.5  # the failed seed is not in the mean
    assert (s["B / y"].seeds_ok, s["B / y"].seeds_failed) == (0, 1)
    assert math.isnan(s["B / y"].hyper_objective.mean)  # no successful seed: ranked last
    failed = failed_matches(matches)
    assert [(f.game, f.competitor.label, f.seed) for f in failed] == [
        ("alpha", "B / x", 1), ("alpha", "B / y", 0)]
    assert "ValueError: diverged" in failed[0].error
    markdown = failures_table(failed).to_markdown()
    assert "ValueError: diverged \\| at step 3" in markdown and "Traceback" not in markdown


def test_speed_to_tolerance_is_the_median_over_seeds(alpha):
    # best -1.1, range 0.6 -> tolerance 6e-3, target -1.094: seed f=-1.0 never gets there,
    # seeds -1.2 and -1.1 reach it at iterations 5 and 4 -> median of (inf, 500, 400) = 500
    assert alpha.best == pytest.approx(-1.1) and alpha.tolerance == pytest.approx(6e-3)
    assert alpha.speed_basis == "samples"
    s = by_label(alpha)
    assert s["A / x"].reached == 2
    assert s["A / x"].samples_to_tol == 500
    assert s["A / x"].seconds_to_tol == pytest.approx(0.5)
    assert s["A / y"].reached == 0 and s["A / y"].samples_to_tol == math.inf  # not reached
    assert s["A / x"].speed_rank == 1 and s["A / y"].speed_rank == 3  # the rest tie
    table = game_table(alpha).to_markdown()
    assert "not reached" in table and "speed rank (by samples)" in table


def test_speed_is_measured_in_seconds_when_a_match_draws_no_samples(matches):
    beta = rank_game(matches, "beta")
    assert beta.speed_basis == "seconds"
    s = by_label(beta)
    assert s["B / x"].seconds_to_tol == pytest.approx(0.7) and s["B / x"].speed_rank == 1
    assert [s[k].rank for k in ("B / x", "A / x", "A / y", "B / y")] == [1, 2, 3.5, 3.5]


def test_a_single_competitor_uses_the_absolute_tolerance():
    data = [MatchData(record("solo", "A", "x", 0, 5.0), {
        k: np.array([row[k] for row in metrics_rows(5.0, 3)], dtype=float)
        for k in ("iteration", "hyper_objective", "samples", "wall_seconds")})]
    ranking = rank_game(data, "solo")
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
    data = [MatchData(record(game, leader, "x", 0, final), {})
            for game, leader, final in (("g1", "P", 1.0), ("g1", "Q", 2.0),
                                        ("g2", "P", 2.0), ("g2", "Q", 1.0), ("g2", "R", 3.0))]
    overall = overall_ranking(rank_games(data))
    assert [(s.competitor.leader, s.rank) for s in overall] == [("P", 1.5), ("Q", 1.5),
                                                                ("R", 3.0)]
    assert overall[2].games == 1


def test_tables_name_the_objective_direction(matches):
    rankings = rank_games(matches)
    overall = overall_table(overall_ranking(rankings), ["alpha", "beta"]).to_markdown()
    assert "lower is better" in overall and "rank in beta" in overall
    assert "lower is better" in game_table(rankings[0]).to_markdown()
    assert "–" in game_table(rankings[0]).to_markdown()  # one-seed CI


# -- bands and heatmaps -------------------------------------------------------------------------
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
    # at x = 1 only two seeds: t(0.975, 1) = 12.7062, sd = sqrt(0.5)
    np.testing.assert_allclose(result.high[0] - result.mean[0], 12.7062 * 0.5, rtol=1e-5)
    single = mean_band(Competitor("A", "x"), [a])
    assert np.isnan(single.low).all() and np.isnan(single.high).all()


def test_game_bands_are_gaps_to_the_best_value_in_ranking_order(matches, alpha):
    bands = game_bands(matches, alpha, "iteration")
    assert [b.competitor.label for b in bands.bands] == ["A / x", "A / y", "B / x"]  # B/y failed
    first = bands.bands[0]
    np.testing.assert_array_equal(first.x, np.arange(1, ITERATIONS + 1))
    # seeds end at -1.0, -1.2, -1.1 (best -1.1) after +1.0 until iterations 3, 5, 4
    np.testing.assert_allclose(first.median[-1], 0.0, atol=1e-12)
    np.testing.assert_allclose(first.median[2], 0.9)  # iteration 3: -1.0, -0.2, -0.1 + 1.1
    assert bands.y_label.startswith("f - best")
    by_samples = game_bands(matches, rank_game(matches, "beta"), "samples")
    assert "B / x" not in {b.competitor.label for b in by_samples.bands}  # exact: no samples
    with pytest.raises(ValueError, match="x_name"):
        game_bands(matches, alpha, "seconds")


def test_heatmaps_are_leaders_by_followers_best_first(matches, alpha):
    heat = game_heatmap(alpha)
    assert heat.leaders == ("A", "B") and heat.followers == ("x", "y")
    np.testing.assert_allclose(heat.values, [[-1.1, -0.5], [-0.5, np.nan]])
    overall = overall_heatmap(overall_ranking(rank_games(matches)))
    assert overall.leaders == ("A", "B")
    np.testing.assert_allclose(overall.values, [[1.5, 3.0], [1.75, 3.75]])


# -- the report and the command -----------------------------------------------------------------
@pytest.fixture(scope="module")
def report(store_dir):
    return write_report(store_dir)


def test_report_index_opens_with_the_overall_ranking(report, store_dir):
    assert report.out_dir == store_dir / "report"
    text = report.index.read_text()
    first_table = text[text.index("\n|"):].split("\n\n")[0]
    assert "average rank" in first_table.splitlines()[1]
    assert first_table.splitlines()[3].startswith("| 1 | A | x | 1.5 |")
    assert text.index("Best overall") < text.index("\n|") < text.index("## Game `alpha`")
    assert text.index("## Game `beta`") < text.index("## Failed matches (2)")


def test_report_links_only_files_it_wrote(report):
    text = report.index.read_text()
    links = re.findall(r"\]\(([^)#]+)\)", text)
    assert {"rankings_overall.csv", "rankings_alpha.csv", "convergence_alpha.png",
            "heatmap_alpha.png", "heatmap_overall.png", "failed_matches.csv"} <= set(links)
    assert all((report.out_dir / link).is_file() for link in links)
    assert {p.name for p in report.figures} <= set(links)
    assert all(p.stat().st_size > 5_000 for p in report.figures)


def test_report_csv_holds_numbers(report):
    lines = (report.out_dir / "rankings_alpha.csv").read_text().splitlines()
    header = lines[0].split(",")
    first = dict(zip(header, lines[1].split(","), strict=True))
    assert first["leader"] == "A" and float(first["f_mean"]) == pytest.approx(-1.1)
    assert float(first["f_ci_high"]) - float(first["f_ci_low"]) == pytest.approx(2 * 0.248414,
                                                                                 rel=1e-5)
    assert lines[4].split(",")[header.index("f_mean")] == ""  # B/y: no successful seed


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



def test_a_pair_that_skipped_games_cannot_top_the_overall_ranking():
    # S plays only g1 and wins it; P and Q play both games: they rank ahead of S
    data = [MatchData(record(game, leader, "x", 0, final), {})
            for game, leader, final in (("g1", "S", 0.0), ("g1", "P", 1.0), ("g1", "Q", 2.0),
                                        ("g2", "P", 1.0), ("g2", "Q", 2.0))]
    overall = overall_ranking(rank_games(data))
    assert [(s.competitor.leader, s.rank, s.average_rank) for s in overall] == [
        ("P", 1.0, 1.5), ("Q", 2.0, 2.5), ("S", 3.0, 1.0)]
