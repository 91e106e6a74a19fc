"""Bad input, through the real command line: every case exits 2 with a message naming the
problem (file, section and key, or the argument), prints no traceback, leaves nothing that looks
like a finished output, and changes no file at all (the whole working tree is compared before
and after). Game ids that name library functions (``os:system``, ``shutil:rmtree``,
``builtins:eval``) are refused without being called: the files they would create or delete are
checked.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stackelberg.results import MatchRecord, ResultStore

BASE = {
    "game": {"id": "stackelberg/matrix-v0"},
    "leader": {"algorithm": "pbrl-value"},
    "follower": {"learner": "best-response", "tau": 0.05},
    "run": {"iterations": 5},
}

GAME_FILE = '''
import sys
from games import matrix_game


def ok(temptation=5.0):
    return matrix_game([[3, 0], [temptation, 1]], [[3, temptation], [0, 1]])


def raises_key():
    return {}["missing"]


def raises_runtime():
    raise RuntimeError("the builder broke")


class GameOver(BaseException):  # not even an Exception
    pass


def raises_custom():
    raise GameOver("odd")


def raises_type():
    return len(3)


def imports_missing():
    import stackelberg_no_such_module  # noqa: F401


def exits_0():
    sys.exit(0)


def exits_1():
    sys.exit(1)


def exits_text():
    sys.exit("goodbye")


def returns_list():
    return [[1, 2], [3, 4]]


def needs_size(size):
    return ok()


def invalid_model():
    import numpy as np
    from stackelberg.model import GameModel
    P = np.full((2, 1, 1, 2), 0.5)
    P[1, 0, 0] = [0.7, 0.2]
    r = np.zeros((2, 1, 1))
    return GameModel(P, r, r, np.array([0.5, 0.5]), 0.9)


not_a_function = 3
'''

SPEC = {
    "seeds": [0],
    "budget": {"iterations": 5},
    "games": [{"id": "stackelberg/matrix-v0"}],
    "leaders": [{"algorithm": "pbrl-value"}],
    "followers": [{"learner": "best-response", "tau": 0.05}],
}


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(value)


def toml(data: dict[str, Any]) -> str:
    """A small TOML writer: top-level values, tables, and arrays of tables."""
    lines = [f"{k} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, (dict, list))
             or (isinstance(v, list) and not (v and isinstance(v[0], dict)))]
    for key, value in data.items():
        tables = [value] if isinstance(value, dict) else value if (
            isinstance(value, list) and value and isinstance(value[0], dict)) else []
        for table in tables:
            lines.append(f"[{key}]" if isinstance(value, dict) else f"[[{key}]]")
            lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def config(**sections: dict[str, Any]) -> str:
    """The base config with some sections' entries replaced (``None`` drops an entry)."""
    data = {name: dict(entries) for name, entries in BASE.items()}
    for name, entries in sections.items():
        table = data.setdefault(name, {})
        for key, value in entries.items():
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
    return toml(data)


def spec(**changes: Any) -> str:
    data = {**SPEC, **changes}
    return toml(data)


def game(game_id: str, **params: Any) -> str:
    return config(game={"id": game_id, **params})


def leader(algorithm: str, **params: Any) -> str:
    return config(leader={"algorithm": algorithm, **params})


@dataclass(frozen=True)
class Case:
    """One bad input: the command line, the files it needs, what the message must say.

    ``config`` / ``spec_text`` (text or bytes) are written as ``case.toml`` / ``spec.toml``;
    ``absent`` lists paths (relative to the working directory) that must not exist afterwards.
    """

    id: str
    argv: tuple[str, ...]
    expect: tuple[str, ...]
    config: str | bytes | None = None
    spec_text: str | bytes | None = None
    setup: Callable[[Path], None] | None = None
    absent: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)


RUN = ("run", "case.toml", "--out", "out", "--quiet")
TOURNAMENT = ("tournament", "spec.toml", "--out", "tour", "--quiet")


def run_case(id: str, text: str | bytes, *expect: str, absent: tuple[str, ...] = (),
             argv: tuple[str, ...] = RUN, setup=None) -> Case:
    return Case(id, argv, ("case.toml", *expect), config=text, absent=("out", *absent),
                setup=setup)


def tour_case(id: str, text: str | bytes, *expect: str, absent: tuple[str, ...] = ()) -> Case:
    return Case(id, TOURNAMENT, ("spec.toml", *expect), spec_text=text,
                absent=("tour", *absent))


# -- configs ---------------------------------------------------------------------------------

CONFIG_CASES = [
    run_case("non-utf8", "[game]\nid = \"caf\xe9\"\n".encode("latin-1"), "not UTF-8"),
    run_case("malformed-toml", config().replace("[run]", "[run\n"), "not valid TOML"),
    Case("missing-file", ("run", "nowhere.toml", "--out", "out"), ("nowhere.toml",
                                                                  "does not exist"),
         absent=("out",)),
    Case("config-is-a-directory", ("run", "adir", "--out", "out"), ("adir", "cannot read"),
         absent=("out",)),
    run_case("unknown-section", config() + "[extra]\nx = 1\n", "unknown section [extra]"),
    run_case("section-not-a-table", "game = 3\n", "[game] must be a table"),
    run_case("game-id-missing", config(game={"id": None}), "game.id is missing"),
    run_case("game-id-not-a-string", config(game={"id": 3}), "game.id must be a string"),
    run_case("unknown-game", game("stackelberg/nope-v0"), "unknown game 'stackelberg/nope-v0'"),
    run_case("os-system", game("os:system", command="touch PWNED"), "unknown game 'os:system'",
             absent=("PWNED",)),
    run_case("builtins-eval", game("builtins:eval", source="open('PWNED', 'w')"),
             "unknown game 'builtins:eval'", absent=("PWNED",)),
    run_case("subprocess-call", game("subprocess:call", args=["touch", "PWNED"]),
             "unknown game 'subprocess:call'", absent=("PWNED",)),
    run_case("shutil-rmtree", game("shutil:rmtree", path="victim"),
             "unknown game 'shutil:rmtree'"),  # the snapshot shows victim/ is intact
    run_case("dotted-module", game("games.matrix:matrix_game"), "unknown game"),
    run_case("unknown-algorithm", leader("pbrl-magic"), "pbrl-magic"),
    run_case("algorithm-not-a-string", leader(3), "leader.algorithm must be a string"),
    run_case("unknown-learner", config(follower={"learner": "oracle"}), "oracle"),
    run_case("unknown-leader-key", leader("pbrl-value", lamda=3), "leader.lamda"),
    run_case("unknown-follower-key", config(follower={"speed": 3}), "follower.speed"),
    run_case("unknown-run-key", config(run={"speed": 3}), "run.speed"),
    run_case("seed-negative", config(run={"seed": -1}), "run.seed"),
    run_case("seed-boolean", config(run={"seed": True}), "run.seed"),
    run_case("seed-float", config(run={"seed": 1.5}), "run.seed"),
    run_case("iterations-zero", config(run={"iterations": 0}), "run.iterations"),
    run_case("iterations-string", config(run={"iterations": "10"}),
             "run.iterations must be an integer"),
    run_case("iterations-float", config(run={"iterations": 2.5}),
             "run.iterations must be an integer"),
    run_case("max-seconds-boolean", config(run={"max_seconds": True}),
             "run.max_seconds must be a number, got True"),
    run_case("max-seconds-string", config(run={"max_seconds": "inf"}),
             "run.max_seconds must be a number"),
    run_case("tolerance-negative", config(run={"tolerance": -1.0}), "run.tolerance"),
    run_case("metrics-every-boolean", config(run={"metrics_every": False}),
             "run.metrics_every must be an integer"),
    run_case("tau-negative", config(follower={"tau": -0.5}), "follower.tau"),
    run_case("tau-string", config(follower={"tau": "0.1"}), "follower.tau"),
    run_case("tau-boolean", config(follower={"tau": True}), "follower.tau"),
    run_case("tau-nan", config(follower={"tau": math.nan}), "follower.tau"),
    run_case("lam-boolean", leader("pbrl-value", lam=True), "leader.lam must be a number"),
    run_case("lam-string", leader("pbrl-value", lam="100"), "leader.lam must be a number"),
    run_case("lam-negative", leader("pbrl-value", lam=-1.0), "leader.lam"),
    run_case("starts-float", leader("pbrl-value", starts=2.5),
             "leader.starts must be an integer"),
    run_case("string-field-number", leader("pbrl-value", pi_update=3),
             "leader.pi_update must be a string"),
    run_case("string-field-unknown-choice", leader("pbrl-value", pi_update="magic"),
             "pi_update"),
    run_case("fixed-key", leader("pbrl-bellman", penalty="value"), "leader.penalty"),
    run_case("boolean-as-string", leader("rac", xi_per_penalty="no"),
             "leader.xi_per_penalty must be a boolean (true or false), got 'no'"),
    run_case("boolean-as-integer", leader("rac", common_random_numbers=1),
             "leader.common_random_numbers must be a boolean"),
    run_case("number-as-string", leader("pbrl-value-sampled", critic_step="0.5"),
             "leader.critic_step must be a number, got '0.5'"),
    run_case("sampled-boolean-as-string", leader("pbrl-value-sampled", penalty_floor="yes"),
             "leader.penalty_floor must be a boolean"),
    run_case("follower-boolean-as-string",
             config(follower={"learner": "model-based", "observes_commitment": "true"}),
             "follower.observes_commitment must be a boolean"),
    run_case("batch-size-zero", config(follower={"learner": "soft-q", "batch_size": 0}),
             "follower.batch_size"),
    run_case("unknown-game-parameter", game("stackelberg/matrix-v0", foo=1),
             "unknown parameter 'foo'"),
    run_case("boolean-payoffs", game("stackelberg/matrix-v0",
                                     leader_payoffs=[[True, 4], [1, 3]],
                                     follower_payoffs=[[1, 0], [0, 1]]),
             "game.leader_payoffs must be a list of lists of numbers"),
    run_case("string-payoffs", game("stackelberg/matrix-v0", leader_payoffs="abc",
                                    follower_payoffs=[[1, 0], [0, 1]]),
             "game.leader_payoffs"),
    run_case("payoff-shape", game("stackelberg/matrix-v0", leader_payoffs=[[2, 4], [1, 3]],
                                  follower_payoffs=[[1, 0]]), "shape"),
    run_case("payoff-nan", game("stackelberg/matrix-v0", leader_payoffs=[[math.nan, 4], [1, 3]],
                                follower_payoffs=[[1, 0], [0, 1]]), "leader_payoffs"),
    run_case("states-zero", game("stackelberg/random-markov-v0", n_states=0), "n_states"),
    run_case("states-boolean", game("stackelberg/random-markov-v0", n_states=True),
             "game.n_states must be an integer"),
    run_case("gamma-one", game("stackelberg/random-markov-v0", gamma=1.0), "gamma"),
    run_case("slip-above-one", game("stackelberg/patrol-v0", slip=2.0), "slip"),
    run_case("hypergradient-tau-zero", config(leader={"algorithm": "hypergradient"},
                                              follower={"tau": 0.0}), "tau > 0"),
    run_case("too-few-iterations", leader("pbrl-value", starts=2, start_iterations=300),
             "run.iterations = 5"),
]

# -- game files ------------------------------------------------------------------------------

GAME_FILE_CASES = [
    run_case("file-missing", game("absent.py:ok"), "no such file", "absent.py"),
    run_case("function-missing", game("usergames.py:nothing"), "has no function 'nothing'"),
    run_case("attribute-not-callable", game("usergames.py:not_a_function"),
             "has no function 'not_a_function'"),
    run_case("file-without-function", game("usergames.py:"), "usergames.py"),
    run_case("not-a-python-file", game("notes.txt:ok"), "unknown game 'notes.txt:ok'"),
    run_case("builder-key-error", game("usergames.py:raises_key"), "raised KeyError"),
    run_case("builder-runtime-error", game("usergames.py:raises_runtime"),
             "raised RuntimeError: the builder broke"),
    run_case("builder-any-exception", game("usergames.py:raises_custom"),
             "raised GameOver: odd"),
    run_case("builder-type-error", game("usergames.py:raises_type"), "len()"),
    run_case("builder-failing-import", game("usergames.py:imports_missing"),
             "ModuleNotFoundError"),
    run_case("builder-exit-0", game("usergames.py:exits_0"), "sys.exit(0)"),
    run_case("builder-exit-1", game("usergames.py:exits_1"), "sys.exit(1)"),
    run_case("builder-exit-text", game("usergames.py:exits_text"), "sys.exit('goodbye')"),
    run_case("builder-returns-list", game("usergames.py:returns_list"),
             "returned list, not a GameModel"),
    run_case("builder-missing-parameter", game("usergames.py:needs_size"),
             "needs parameter(s) size"),
    run_case("builder-unknown-parameter", game("usergames.py:ok", sucker=1),
             "unknown parameter 'sucker'"),
    run_case("builder-invalid-model", game("usergames.py:invalid_model"),
             "transitions[1, 0, 0]"),
    run_case("file-syntax-error", game("syntax.py:f"), "SyntaxError"),
    run_case("file-failing-import", game("badimport.py:f"), "ModuleNotFoundError"),
    run_case("file-raises-on-import", game("raising.py:f"), "raised RuntimeError: at import"),
    run_case("file-exits-on-import", game("exiting.py:f"), "sys.exit(0)"),
]

# -- command-line overrides ------------------------------------------------------------------

OVERRIDE_CASES = [
    Case("override-without-dot", (*RUN, "seed=3"), ("seed=3", "section.key=value"),
         config=config(), absent=("out",)),
    Case("override-empty-key", (*RUN, "run.=3"), ("run.=3", "section.key=value"),
         config=config(), absent=("out",)),
    Case("override-unknown-section", (*RUN, "extra.x=1"), ("extra.x=1", "unknown section"),
         config=config(), absent=("out",)),
    Case("override-string-for-int", (*RUN, "run.iterations=abc"),
         ("run.iterations=abc", "run.iterations must be an integer"), config=config(),
         absent=("out",)),
    Case("override-boolean-as-word", (*RUN, "leader.algorithm=\"rac\"", "leader.xi_per_penalty=no"),
         ("leader.xi_per_penalty must be a boolean",), config=config(), absent=("out",)),
    Case("override-boolean-for-number", (*RUN, "run.max_seconds=true"),
         ("run.max_seconds must be a number",), config=config(), absent=("out",)),
    Case("override-game-id-os-system", (*RUN, "game.id=os:system", "game.command=touch PWNED"),
         ("unknown game 'os:system'",), config=config(), absent=("out", "PWNED")),
    Case("override-unknown-key", (*RUN, "leader.lamda=3"), ("leader.lamda",),
         config=config(), absent=("out",)),
]

# -- output locations ------------------------------------------------------------------------

OUT_CASES = [
    Case("out-current-directory", ("run", "case.toml", "--out", ".", "--quiet"),
         ("--out .", "current directory"), config=config()),
    Case("out-parent-directory", ("run", "case.toml", "--out", "..", "--quiet"),
         ("--out ..", "current directory or one of its parents"), config=config()),
    Case("out-home", ("run", "case.toml", "--out", "~", "--quiet"), ("home directory",),
         config=config()),
    Case("out-root", ("run", "case.toml", "--out", "/", "--quiet"), ("root",),
         config=config()),
    Case("out-is-a-file", ("run", "case.toml", "--out", "notes.txt", "--quiet"),
         ("--out notes.txt", "not a directory"), config=config()),
    Case("out-users-directory", ("run", "case.toml", "--out", "mine", "--quiet"),
         ("--out mine", "not a run directory"), config=config()),
    Case("out-users-directory-overwrite",
         ("run", "case.toml", "--out", "mine", "--overwrite", "--quiet"),
         ("--out mine", "not a run directory"), config=config()),
    Case("out-earlier-run", ("run", "case.toml", "--out", "earlier", "--quiet"),
         ("--out earlier", "--overwrite"), config=config()),
    Case("out-under-a-file", ("run", "case.toml", "--out", "notes.txt/run", "--quiet"),
         ("--out notes.txt/run", "cannot write"), config=config()),
    Case("out-not-writable", ("run", "case.toml", "--out", "/proc/stackelberg-test/run",
                              "--quiet"), ("cannot write",), config=config()),
    Case("out-symlink", ("run", "case.toml", "--out", "link", "--quiet"),
         ("--out link", "symbolic link"), config=config()),
    Case("out-bad-config-first", ("run", "case.toml", "--out", "fresh/deeper", "--quiet"),
         ("run.speed",), config=config(run={"speed": 1}), absent=("fresh",)),
]

# -- tournament specs (validation only) -------------------------------------------------------

SPEC_CASES = [
    tour_case("spec-non-utf8", b"seeds = [0]\n# \xff\xfe\n", "not UTF-8"),
    tour_case("spec-unknown-key", spec(speed=3), "unknown key 'speed'"),
    tour_case("spec-seeds-boolean", spec(seeds=[True]), "seeds[0]"),
    tour_case("spec-game-os-system", spec(games=[{"id": "os:system", "command": "touch PWNED"}]),
              "games[0]", "unknown game 'os:system'", absent=("PWNED",)),
    tour_case("spec-game-shutil-rmtree", spec(games=[{"id": "shutil:rmtree", "path": "victim"}]),
              "unknown game 'shutil:rmtree'"),
    tour_case("spec-game-builtins-eval",
              spec(games=[{"id": "builtins:eval", "source": "open('PWNED', 'w')"}]),
              "unknown game 'builtins:eval'", absent=("PWNED",)),
    tour_case("spec-game-builder-raises", spec(games=[{"id": "usergames.py:raises_runtime"}]),
              "games[0]", "RuntimeError"),
    tour_case("spec-game-builder-exits", spec(games=[{"id": "usergames.py:exits_0"}]),
              "games[0]", "sys.exit(0)"),
    tour_case("spec-unknown-algorithm", spec(leaders=[{"algorithm": "magic"}]),
              "leaders[0]", "magic"),
    tour_case("spec-leader-unknown-key", spec(leaders=[{"algorithm": "pbrl-value", "lamda": 1}]),
              "leaders[0]", "lamda"),
    tour_case("spec-leader-boolean-as-string",
              spec(leaders=[{"algorithm": "rac", "xi_per_penalty": "no"}]),
              "leaders[0]", "xi_per_penalty must be a boolean"),
    tour_case("spec-follower-tau-string",
              spec(followers=[{"learner": "best-response", "tau": "0.1"}]),
              "followers[0]", "tau"),
    tour_case("spec-budget-boolean", spec(budget={"iterations": 5, "max_seconds": True}),
              "max_seconds must be a number"),
    tour_case("spec-budget-unknown-key", spec(budget={"speed": 1}), "budget.speed"),
]

# -- plot and report inputs ------------------------------------------------------------------

PLOT_CASES = [
    Case("plot-missing-directory", ("plot", "nowhere"), ("nowhere", "not a directory")),
    Case("plot-not-a-run", ("plot", "mine"), ("mine", "missing")),
    Case("plot-header-only", ("plot", "header_only"), ("header_only/metrics.csv", "no rows")),
    Case("plot-empty-metrics", ("plot", "empty_metrics"), ("empty_metrics/metrics.csv",
                                                           "no rows")),
    Case("plot-not-a-number", ("plot", "nonnumeric"),
         ("nonnumeric/metrics.csv", "line 3", "'upper_objective'", "'abc' is not a number")),
    Case("plot-missing-column", ("plot", "no_gap"), ("no_gap/metrics.csv", "lower_level_gap")),
    Case("plot-bad-json", ("plot", "bad_json"), ("bad_json/config.json",)),
    Case("plot-json-not-an-object", ("plot", "json_list"), ("json_list/config.json",)),
    Case("plot-non-utf8-summary", ("plot", "latin_summary"), ("latin_summary/summary.json",)),
    Case("plot-out-missing-directory", ("plot", "earlier", "--out", "nowhere/fig.png"),
         ("--out nowhere/fig.png", "does not exist")),
    Case("plot-out-is-a-directory", ("plot", "earlier", "--out", "mine"),
         ("--out mine", "is a directory")),
    Case("plot-out-unknown-format", ("plot", "earlier", "--out", "fig.xyz"),
         ("--out fig.xyz", "xyz"), absent=("fig.xyz",)),
]

REPORT_CASES = [
    Case("report-tolerance-inf", ("report", "store", "--tolerance", "inf"),
         ("--tolerance", "finite")),
    Case("report-tolerance-nan", ("report", "store", "--tolerance", "nan"), ("--tolerance",)),
    Case("report-tolerance-zero", ("report", "store", "--tolerance", "0"), ("--tolerance",)),
    Case("report-tolerance-negative", ("report", "store", "--tolerance", "-1"),
         ("--tolerance",)),
    Case("report-tolerance-word", ("report", "store", "--tolerance", "abc"), ("--tolerance",)),
    Case("report-missing-directory", ("report", "nowhere"), ("nowhere", "not a directory")),
    Case("report-no-store", ("report", "mine"), ("mine", "holds no results.sqlite")),
    Case("report-empty-store", ("report", "empty_store"), ("holds no match",)),
    Case("report-out-current-directory", ("report", "store", "--out", "."),
         ("--out .", "current directory")),
    Case("report-out-is-a-file", ("report", "store", "--out", "notes.txt"),
         ("--out notes.txt", "not a directory")),
    Case("report-out-users-directory", ("report", "store", "--out", "mine"),
         ("--out mine", "not a report directory")),
]

ARGUMENT_CASES = [
    Case("unknown-command", ("fly",), ("invalid choice",)),
    Case("workers-zero", ("tournament", "spec.toml", "--workers", "0"), ("--workers",),
         spec_text=spec()),
    Case("run-without-config", ("run",), ("config",)),
    Case("stray-argument", ("plot", "earlier", "--colour", "red"),
         ("unrecognized arguments",)),
]

CASES = (CONFIG_CASES + GAME_FILE_CASES + OVERRIDE_CASES + OUT_CASES + SPEC_CASES + PLOT_CASES
         + REPORT_CASES + ARGUMENT_CASES)

RUN_FILES = {"config.json": json.dumps({"game": {"id": "g"}, "leader": {"algorithm": "a"},
                                        "follower": {"learner": "b"}}),
             "summary.json": "{}"}


def make_run_dir(path: Path, metrics: str, **files: str | bytes) -> None:
    path.mkdir()
    for name, text in {**RUN_FILES, "metrics.csv": metrics, **files}.items():
        (path / name).write_bytes(text if isinstance(text, bytes) else text.encode())


def workspace(root: Path, stores: bool = False) -> Path:
    """The user's working directory: their files, an earlier run, a results store."""
    work = root / "world" / "work"  # the snapshot covers world/; HOME is elsewhere
    work.mkdir(parents=True)
    (work / "usergames.py").write_text(GAME_FILE)
    (work / "syntax.py").write_text("def f(:\n")
    (work / "badimport.py").write_text("import stackelberg_no_such_module\n")
    (work / "raising.py").write_text("raise RuntimeError('at import')\n")
    (work / "exiting.py").write_text("import sys\nsys.exit(0)\n")
    (work / "notes.txt").write_text("the user's notes\n")
    (work / "adir").mkdir()
    (work / "mine").mkdir()
    (work / "mine" / "thesis.tex").write_text("years of work\n")
    (work / "victim").mkdir()
    (work / "victim" / "data.csv").write_text("1,2,3\n")
    (work / "link").symlink_to(work / "adir")
    header = "iteration,upper_objective,hyper_objective,lower_level_gap\n"
    make_run_dir(work / "earlier", header + "1,-3,-3,0.1\n2,-3.2,-3.2,0.01\n",
                 **{".stackelberg-run": "", "convergence.png": b"png"})
    make_run_dir(work / "header_only", header)
    make_run_dir(work / "empty_metrics", "")
    make_run_dir(work / "nonnumeric", header + "1,-3,-3,0.1\n2,abc,-3,0.1\n")
    make_run_dir(work / "no_gap", "iteration,upper_objective,hyper_objective\n1,-3,-3\n")
    make_run_dir(work / "bad_json", header + "1,-3,-3,0.1\n", **{"config.json": "{oops"})
    make_run_dir(work / "json_list", header + "1,-3,-3,0.1\n", **{"config.json": "[1, 2]"})
    make_run_dir(work / "latin_summary", header + "1,-3,-3,0.1\n",
                 **{"summary.json": '{"x": "caf\xe9"}'.encode("latin-1")})
    if stores:
        add_stores(work)
    return work


def add_stores(work: Path) -> None:
    """An empty results store and one holding a match (SQLite: only for the report cases)."""
    (work / "empty_store").mkdir()
    ResultStore(work / "empty_store").close()
    (work / "store").mkdir()
    with ResultStore(work / "store") as store:
        summary = {"hyper_objective": -1.0, "leader_value": 1.0, "lower_level_gap": 1e-3,
                   "samples": 0, "wall_seconds": 1.0}
        store.write_match(MatchRecord(match_id="m0", game="g", leader="A", follower="x",
                                      seed=0, status="ok", error=None, config={},
                                      summary=summary, wall_seconds=1.0),
                          [{"iteration": 1, "hyper_objective": -1.0, "samples": 0,
                            "wall_seconds": 1.0, "lower_level_gap": 1e-3, "leader_value": 1.0}])


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its content hash (directories and links as such)."""
    state = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            state[key] = f"link -> {os.readlink(path)}"
        elif path.is_dir():
            state[key] = "dir"
        else:
            state[key] = hashlib.sha1(path.read_bytes()).hexdigest()
    return state


def check_refused(result, case: Case, work: Path, before: dict[str, str]) -> None:
    message = result.stderr
    assert result.returncode == 2, (result.returncode, result.stdout, message)
    for text in case.expect:
        assert text in message, (text, message)
    assert "Traceback" not in message + result.stdout
    assert "internal error" not in message
    assert snapshot(work.parent) == before  # nothing created, changed or deleted
    for name in case.absent:
        assert not (work / name).exists()


def prepare(case: Case, tmp_path: Path, monkeypatch) -> tuple[Path, dict[str, str]]:
    work = workspace(tmp_path, stores=case.argv[0] == "report")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    if case.config is not None:
        data = case.config
        (work / "case.toml").write_bytes(data if isinstance(data, bytes) else data.encode())
    if case.spec_text is not None:
        data = case.spec_text
        (work / "spec.toml").write_bytes(data if isinstance(data, bytes) else data.encode())
    return work, snapshot(work.parent)


def test_there_are_enough_cases():
    assert len(CASES) >= 80
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_exits_2_and_changes_nothing(case, tmp_path, monkeypatch, cli):
    work, before = prepare(case, tmp_path, monkeypatch)
    result = cli(*case.argv, cwd=work)
    check_refused(result, case, work, before)


# -- a few as real processes: what a user's shell sees -----------------------------------------

PROCESS_CASES = ["non-utf8", "os-system", "builder-exit-0",
                 "report-tolerance-inf"]  # report imports no torch: fast


@pytest.mark.parametrize("case_id", PROCESS_CASES)
def test_bad_input_as_a_process(case_id, tmp_path, monkeypatch, cli_process):
    case = next(c for c in CASES if c.id == case_id)
    work, before = prepare(case, tmp_path, monkeypatch)
    result = cli_process(*case.argv, cwd=work)
    check_refused(result, case, work, before)


# -- what is NOT refused: a file builder runs only when named; plug-ins; replacing a run -------


def test_a_file_builder_runs_only_when_named(tmp_path, monkeypatch, cli):
    work = workspace(tmp_path)
    (work / "marking.py").write_text(
        "from pathlib import Path\nPath(__file__).with_name('RAN').touch()\n"
        "from games import matrix_game\n\n"
        "def game():\n    return matrix_game([[2, 4], [1, 3]], [[1, 0], [0, 1]])\n")
    # the config is checked before the named file runs: a bad key, and the file stays unrun
    (work / "case.toml").write_text(config(game={"id": "marking.py:game"}, run={"speed": 1}))
    assert cli("run", "case.toml", "--out", "a", "--quiet", cwd=work).returncode == 2
    assert not (work / "RAN").exists()
    # named from another directory: the path is relative to the config file
    (work / "case.toml").write_text(game("marking.py:game"))
    elsewhere = work.parent / "elsewhere"
    elsewhere.mkdir()
    result = cli("run", str(work / "case.toml"), "--out", "b", "--quiet", "--no-figure",
                 cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert (work / "RAN").exists()
    resolved = json.loads((elsewhere / "b" / "config.json").read_text())
    assert resolved["game"]["id"] == f"{(work / 'marking.py').resolve()}:game"
    assert not (work / "__pycache__").exists()  # running the file wrote nothing next to it


def test_a_plugin_game_registered_through_an_entry_point(tmp_path, monkeypatch, cli):
    site = tmp_path / "site"
    (site / "acme_games-1.0.dist-info").mkdir(parents=True)
    (site / "acme_games-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-games\nVersion: 1.0\n")
    (site / "acme_games-1.0.dist-info" / "entry_points.txt").write_text(
        "[stackelberg.games]\nacme/textbook-v0 = acme_games:textbook\n\n"
        "[console_scripts]\nacme-system = os:system\n")
    (site / "acme_games.py").write_text(
        "from games import matrix_game\n\n"
        "def textbook(scale=1.0):\n"
        "    return matrix_game([[2 * scale, 4 * scale], [1, 3]], [[1, 0], [0, 1]])\n")
    monkeypatch.syspath_prepend(str(site))
    work = workspace(tmp_path)
    listing = cli("games", "--json", cwd=work)
    assert "acme/textbook-v0" in {row["id"] for row in json.loads(listing.stdout)}
    assert "acme-system" not in listing.stdout and "acme_games" not in sys.modules  # not run
    (work / "case.toml").write_text(game("acme/textbook-v0", scale=1.0))
    result = cli("run", "case.toml", "--out", "plugin", "--quiet", "--no-figure", cwd=work)
    assert result.returncode == 0, result.stderr
    summary = json.loads((work / "plugin" / "summary.json").read_text())
    assert summary["sse_leader_value"] == pytest.approx(3.5)  # the textbook game's SSE
    # an entry point of another group is not a game
    (work / "case.toml").write_text(game("acme-system", command="touch PWNED"))
    result = cli("run", "case.toml", "--out", "other", "--quiet", cwd=work)
    assert result.returncode == 2 and "unknown game 'acme-system'" in result.stderr
    assert "acme/textbook-v0" in result.stderr  # listed among the known ids
    assert not (work / "PWNED").exists() and not (work / "other").exists()
    sys.modules.pop("acme_games", None)


def test_a_plugin_that_fails_to_load_is_a_user_error(tmp_path, monkeypatch, cli):
    site = tmp_path / "site"
    (site / "broken_games-1.0.dist-info").mkdir(parents=True)
    (site / "broken_games-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: broken-games\nVersion: 1.0\n")
    (site / "broken_games-1.0.dist-info" / "entry_points.txt").write_text(
        "[stackelberg.games]\nbroken/game-v0 = broken_games_absent_module:build\n")
    monkeypatch.syspath_prepend(str(site))
    work = workspace(tmp_path)
    (work / "case.toml").write_text(game("broken/game-v0"))
    result = cli("run", "case.toml", "--out", "out", "--quiet", cwd=work)
    assert result.returncode == 2, result.stderr
    assert "broken_games_absent_module" in result.stderr and "Traceback" not in result.stderr
    assert not (work / "out").exists()


def test_an_earlier_run_is_replaced_only_with_overwrite(tmp_path, monkeypatch, cli):
    work = workspace(tmp_path)
    (work / "case.toml").write_text(config())
    (work / "runs" / "a").mkdir(parents=True)  # an empty directory may take a run
    # (no figures: a run directory is told by its marker file, not by its figure)
    assert cli("run", "case.toml", "--out", "runs/a", "--quiet", "--no-figure",
               cwd=work).returncode == 0
    first = (work / "runs" / "a" / "metrics.csv").read_text()
    (work / "case.toml").write_text(config(run={"iterations": 7}))
    refused = cli("run", "case.toml", "--out", "runs/a", "--quiet", cwd=work)
    assert refused.returncode == 2 and "--overwrite" in refused.stderr
    assert (work / "runs" / "a" / "metrics.csv").read_text() == first
    again = cli("run", "case.toml", "--out", "runs/a", "--overwrite", "--quiet", "--no-figure",
                cwd=work)
    assert again.returncode == 0, again.stderr
    assert len((work / "runs" / "a" / "metrics.csv").read_text().splitlines()) == 8
    assert sorted(p.name for p in (work / "runs").iterdir()) == ["a"]  # no staging left
    assert (work / "mine" / "thesis.tex").read_text() == "years of work\n"


def test_an_unwritable_out_is_reported_before_the_match_runs(tmp_path, monkeypatch, cli):
    import stackelberg.app.rundir as rundir

    def no_match(*args, **kwargs):
        raise AssertionError("the match ran although the output cannot be written")

    monkeypatch.setattr(rundir, "run_match", no_match)
    work = workspace(tmp_path)
    (work / "case.toml").write_text(config())
    result = cli("run", "case.toml", "--out", "notes.txt/run", "--quiet", cwd=work)
    assert result.returncode == 2 and "cannot write" in result.stderr


def test_running_out_of_memory_is_a_user_error(tmp_path, monkeypatch, cli):
    import stackelberg.app.rundir as rundir

    def too_big(*args, **kwargs):  # what numpy raises for e.g. n_states = 100000
        raise MemoryError("Unable to allocate 298. GiB for an array")

    monkeypatch.setattr(rundir, "run_match", too_big)
    work = workspace(tmp_path)
    (work / "case.toml").write_text(config())
    before = snapshot(work.parent)
    result = cli("run", "case.toml", "--out", "out", "--quiet", cwd=work)
    assert result.returncode == 2 and "more memory" in result.stderr
    assert "case.toml" in result.stderr and "298. GiB" in result.stderr
    assert snapshot(work.parent) == before


def test_a_report_is_replaced_whole_and_never_written_over_other_files(tmp_path, cli):
    work = workspace(tmp_path, stores=True)
    # without figures (2 CPU s of drawing each): what is replaced is the same either way
    first = cli("report", "store", "--no-figures", cwd=work)
    assert first.returncode == 0, first.stderr
    report = work / "store" / "report"
    names = {p.name for p in report.iterdir()}
    assert {".stackelberg-report", "index.md", "rankings_overall.csv"} <= names
    (report / "stale.csv").write_text("from an earlier report\n")  # ours: replaced whole
    again = cli("report", "store", "--no-figures", cwd=work)
    assert again.returncode == 0, again.stderr
    assert {p.name for p in report.iterdir()} == names
    assert [p.name for p in (work / "store").iterdir() if p.name.startswith(".")] == []
