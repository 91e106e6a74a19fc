"""``stackelberg tolls CONFIG``: a run writes its result and figure; bad input exits 2 with a
message naming the file, the section and key (or the edge / pair), and no traceback."""

from __future__ import annotations

import json

import pytest

GOOD = """
[network]
name = "braess"
toll_max = 1.0

[drivers]
tau = 0.001

[planner]
anneal_from = 0.3
"""


def test_tolls_run_writes_result_and_figure(tmp_path, cli):
    (tmp_path / "braess.toml").write_text(GOOD)
    done = cli("tolls", "braess.toml", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["total_travel_time"] == pytest.approx(1.5, abs=1e-3)
    assert result["untolled_travel_time"] > 1.98
    assert result["relative_gap"] <= 1e-10
    assert {e["edge"] for e in result["per_edge"]} == {"s->v", "s->w", "v->t", "v->w", "w->t"}
    assert all(0 <= e["toll"] <= 1 for e in result["per_edge"])
    assert (tmp_path / "out" / "network.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tolls_output_never_replaces_what_it_did_not_write(tmp_path, cli):
    """As for ``run``: a user's directory is refused untouched; an earlier tolls run needs
    ``--overwrite``; the directory appears only complete."""
    (tmp_path / "braess.toml").write_text(GOOD)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    done = cli("tolls", "braess.toml", "--out", "mine", cwd=tmp_path)
    assert done.returncode == 2 and "not a run directory" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert cli("tolls", "braess.toml", "--out", "out", cwd=tmp_path).returncode == 0
    again = cli("tolls", "braess.toml", "--out", "out", cwd=tmp_path)
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert cli("tolls", "braess.toml", "--out", "out", "--overwrite", cwd=tmp_path).returncode == 0
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        ".stackelberg-run", "result.json", "network.png"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


NET = """<NUMBER OF LINKS> 2
<END OF METADATA>
~ init term capacity length fft B power speed toll type ;
\t1\t2\t10\t1\t{fft}\t0.15\t4\t0\t0\t1\t;
\t2\t3\t10\t1\t1\t0.15\t4\t0\t0\t1\t;
"""
TRIPS = """<NUMBER OF ZONES> 3
<END OF METADATA>
Origin 1
    3 : {demand};
"""


@pytest.mark.parametrize(("config", "files", "expected"), [
    ("[network]\nname = 'nowhere'\n[drivers]\ntau = 0.1\n", {},
     "network.name must be one of pigou, braess"),
    ("[network]\nname = 'pigou'\n", {}, "drivers.tau is missing"),
    ("[network]\nname = 'pigou'\n[drivers]\ntau = -1.0\n", {}, "drivers.tau must be a finite "
     "number > 0, got -1.0"),
    ("[network]\nname = 'pigou'\n[drivers]\ntau = 0.1\nspeed = 3\n", {},
     "unknown key drivers.speed"),
    ("[network]\nname = 'pigou'\n[drivers]\ntau = 0.1\n[planner]\nmax_iterations = 0\n", {},
     "planner.max_iterations must be an integer >= 1"),
    ("[network]\nname = 'pigou'\ntoll_max = -1\n[drivers]\ntau = 0.1\n", {},
     "network.toll_max must be a finite number > 0"),
    ("[network]\nnet_file = 'x_net.tntp'\ntrips_file = 'x_trips.tntp'\n[drivers]\ntau = 0.1\n",
     {"x_net.tntp": NET.format(fft=-2), "x_trips.tntp": TRIPS.format(demand=5)},
     "edge 1->2: latency parameter free_flow_time must be a finite number >= 0, got -2.0"),
    ("[network]\nnet_file = 'x_net.tntp'\ntrips_file = 'x_trips.tntp'\n[drivers]\ntau = 0.1\n",
     {"x_net.tntp": NET.format(fft=2), "x_trips.tntp": TRIPS.format(demand=-5)},
     "x_trips.tntp, line 4: demand 1->3 must be a finite number >= 0, got -5.0"),
    ("[network]\nnet_file = 'x_net.tntp'\ntrips_file = 'x_trips.tntp'\n[drivers]\ntau = 0.1\n",
     {"x_net.tntp": NET.format(fft=2),
      "x_trips.tntp": TRIPS.format(demand=5).replace("3 :", "1 : 0; 3 : 0;\nOrigin 3\n 1 :")},
     "pair 3->1: unroutable demand, no path from 3 to 1"),
    ("[network]\nnet_file = 'missing_net.tntp'\ntrips_file = 'x.tntp'\n[drivers]\ntau = 0.1\n",
     {}, "missing_net.tntp: cannot read the file"),
])
def test_bad_toll_configs_exit_2_naming_the_problem(tmp_path, cli, config, files, expected):
    (tmp_path / "bad.toml").write_text(config)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    done = cli("tolls", "bad.toml", "--out", "out", cwd=tmp_path)
    assert done.returncode == 2
    assert "bad.toml" in done.stderr and expected in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
