"""The tournament results store: one transaction per match, spec binding, round trips."""

import sqlite3

import numpy as np
import pytest

from stackelberg.results import MatchRecord, ResultStore, StoreError


def _record(match_id: str, status: str = "ok", **summary) -> MatchRecord:
    return MatchRecord(match_id=match_id, game="g", leader="l", follower="f", seed=1,
                       status=status, error=None if status == "ok" else "boom",
                       config={"a": 1}, summary=summary, wall_seconds=0.5)


def test_round_trip_and_alignment(tmp_path):
    with ResultStore(tmp_path) as store:
        store.write_match(_record("m1", leader_value=0.25),
                          [{"iteration": 1, "f": 2.0}, {"iteration": 3, "f": 1.0, "gap": 1e-3}])
        store.write_match(_record("m2", status="failed"))
    with ResultStore(tmp_path / "results.sqlite") as store:
        records = store.records()
        assert [r.match_id for r in records] == ["m1", "m2"]
        assert records[0].summary == {"leader_value": 0.25} and records[0].ok
        assert records[1].error == "boom" and records[1].summary == {} and not records[1].ok
        m = store.metrics("m1")
        np.testing.assert_array_equal(m["iteration"], [1, 3])
        np.testing.assert_array_equal(m["f"], [2.0, 1.0])
        assert np.isnan(m["gap"][0]) and m["gap"][1] == 1e-3
        assert store.stored_ids() == {"m1", "m2"}


def test_a_duplicate_match_changes_nothing(tmp_path):
    with ResultStore(tmp_path) as store:
        store.write_match(_record("m1", leader_value=1.0), [{"iteration": 1, "f": 1.0}])
        with pytest.raises(sqlite3.IntegrityError):
            store.write_match(_record("m1", leader_value=2.0), [{"iteration": 2, "f": 5.0}])
        assert store.records()[0].summary == {"leader_value": 1.0}
        np.testing.assert_array_equal(store.metrics("m1")["iteration"], [1])


def test_a_different_spec_is_refused(tmp_path):
    with ResultStore(tmp_path) as store:
        store.bind_spec({"seeds": [1, 2], "games": ["a"]})
        store.bind_spec({"games": ["a"], "seeds": [1, 2]})  # same data, other key order
        with pytest.raises(StoreError, match="different tournament spec"):
            store.bind_spec({"seeds": [1, 2, 3], "games": ["a"]})
        assert store.spec() == {"seeds": [1, 2], "games": ["a"]}
