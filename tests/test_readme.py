"""The README's "Add a game" example runs as printed, from the user's own module."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from stackelberg.app.cli import main
from stackelberg.app.tournament import parse_spec

README = Path(__file__).resolve().parents[1] / "README.md"


def code_block_starting_with(first_line: str) -> str:
    for block in re.findall(r"```(?:python|toml)\n(.*?)```", README.read_text(), re.S):
        if block.startswith(first_line):
            return block
    raise AssertionError(f"README has no code block starting with {first_line!r}")


def test_add_a_game_example_runs(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_games.py").write_text(code_block_starting_with("# my_games.py"))
    (tmp_path / "inspection.toml").write_text(code_block_starting_with("# inspection.toml"))
    monkeypatch.chdir(tmp_path)
    code = main(["run", "inspection.toml", "--out", "out", "--quiet", "--no-figure",
                 "run.iterations=50"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["iterations"] == 50 and summary["lower_level_gap"] >= 0


def test_add_a_game_example_lines():
    # the issue asks for a complete example of about 30 lines
    assert len(code_block_starting_with("# my_games.py").splitlines()) <= 35


def test_tournament_example_is_a_valid_spec():
    spec = parse_spec(tomllib.loads(code_block_starting_with("# tournament.toml")))
    # 2 leaders x 2 followers on the matrix game, rac excluded from the random one; 3 seeds
    assert len(spec.matches) == (2 * 2 + 1 * 2) * 3
    assert {m.follower for m in spec.matches} == {"best-response", "sampled"}
