"""The ``stackelberg`` command line.

    stackelberg --version
    stackelberg games [--json]
    stackelberg algorithms [--json]
    stackelberg run CONFIG.toml [--out DIR] [--overwrite] [--quiet] [--no-figure]
                    [section.key=value ...]
    stackelberg tournament SPEC.toml [--out DIR] [--workers N] [--ray-address ADDR] [--quiet]
                           [key=value ...]
    stackelberg plot RUN_DIR [RUN_DIR ...] [--out FILE]
    stackelberg report DIR [--out OUT_DIR] [--tolerance REL] [--no-figures]
    stackelberg tolls CONFIG.toml [--out DIR] [--overwrite]
    stackelberg economy CONFIG.toml ...   (an alias of `run`, kept for economy configs)

Exit codes (DESIGN, "Conventions"): 0 on success, 2 on a user error (a bad config, game or run
directory) with a one-paragraph message and no traceback, 1 on an internal failure, 141
(128 + SIGPIPE, as a C tool killed by it) when the reader of stdout went away, with nothing on
stderr: ``stackelberg games --json | head -c 10`` ends quietly.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import traceback
from pathlib import Path

from stackelberg.app.output import OutputError, OutputKind, prepare

EXIT_OK, EXIT_INTERNAL, EXIT_USER = 0, 1, 2
EXIT_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a C tool whose reader went away
MAX_FAILURES_SHOWN = 5


class UserError(Exception):
    """Something the user can fix; printed without a traceback, exit code 2."""


def cmd_games(args: argparse.Namespace) -> int:
    import games
    from games.registry import plugin_games

    # one registry, each entry with its kind: two-player games (`stackelberg run`), economies
    # (a planner and n followers, `stackelberg run` with pbrl-nash), networks (`stackelberg
    # tolls`), bilevel problems built directly
    rows = [{"id": info.id, "kind": info.kind, "description": info.description,
             "parameters": info.parameters()} for info in games.REGISTRY.values()]
    # plug-ins are listed, not imported: listing must not run an installed package's code
    rows += [{"id": name, "kind": "game", "description": f"plug-in game {value} (entry point)",
              "parameters": {}} for name, value in plugin_games().items()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    width = max(len(r["id"]) for r in rows)
    kind_width = max(len(r["kind"]) for r in rows)
    print(f"{'id':<{width}}  {'kind':<{kind_width}}  description")
    for r in rows:
        print(f"{r['id']:<{width}}  {r['kind']:<{kind_width}}  {r['description']}")
        params = ", ".join(f"{k}={v!r}" for k, v in r["parameters"].items())
        if params:
            print(f"{'':<{width}}    parameters: {params}")
    return EXIT_OK


def cmd_algorithms(args: argparse.Namespace) -> int:
    from stackelberg.app.catalog import algorithms, as_text

    found = algorithms()
    print(json.dumps([a.as_json() for a in found], indent=2) if args.json else as_text(found))
    return EXIT_OK


def _note(command: str):
    return lambda line: print(f"stackelberg {command}: note: {line}", file=sys.stderr)


def _default_out(config_path: str, config) -> Path:
    return Path("runs") / f"{Path(config_path).stem}-{config.leader}-seed{config.seed}"


def cmd_run(args: argparse.Namespace) -> int:
    from stackelberg.app.config import ConfigError, in_file, load_config
    from stackelberg.app.rundir import run_experiment

    try:
        config = load_config(args.config, args.overrides, note=_note("run"))
    except ConfigError as err:
        raise UserError(str(err)) from None
    out = Path(args.out) if args.out else _default_out(args.config, config)
    try:
        result, out = run_experiment(config, out, progress=not args.quiet,
                                     overwrite=args.overwrite, figure=not args.no_figure)
    except OutputError as err:
        raise UserError(str(err)) from None
    except MemoryError as err:  # numpy: "Unable to allocate 298. GiB for an array ..."
        raise UserError(f"{args.config}: the experiment needs more memory than there is "
                        f"({err}); make the game or the batch sizes smaller") from None
    except ConfigError as err:  # building the game or the agents
        raise UserError(str(in_file(args.config, err, args.overrides))) from None
    s = result.summary
    print(f"run directory: {out}")
    if "equilibrium_net_welfare" in s:  # an economy
        print(f"net welfare at the followers' equilibrium {s['equilibrium_net_welfare']:.6g} "
              f"with the planner's incentives, {s['baseline_net_welfare']:.6g} without; Nash "
              f"gap of the followers' play {s['nash_gap']:.1e}; iterations {s['iterations']}  "
              f"{s['wall_seconds']:.1f}s")
        return EXIT_OK
    if "leader_value_se" in s:  # sampled metrics: Monte-Carlo values with standard errors
        print(sampled_line(s))
        return EXIT_OK
    # a bilevel problem that is no game (RLHF, Four-Rooms) has no leader value, only f
    line = (f"leader value {s['leader_value']:.6f}  " if "leader_value" in s else "")
    line += (f"hyper-objective {s['hyper_objective']:.6f}  "
             f"lower-level gap {s['lower_level_gap']:.2e}  iterations {s['iterations']}  "
             f"{s['wall_seconds']:.1f}s")
    if "sse_leader_value" in s:
        line += f"  (strong Stackelberg value {s['sse_leader_value']:.6f})"
    print(line)
    return EXIT_OK


def sampled_line(s: dict) -> str:
    """The one-line result of a run with sampled metrics: both values with their standard
    errors, each quantity that has a closed form next to it, and each other quantity with a
    standard error (with its value before the match where the summary has it)."""
    line = (f"sampled: leader value {s['leader_value']:.6g} (s.e. {s['leader_value_se']:.2g}), "
            f"follower value {s['follower_value']:.6g} (s.e. {s['follower_value_se']:.2g})")
    for key in s:
        if key.endswith("_closed_form") and key.removesuffix("_closed_form") in s:
            name = key.removesuffix("_closed_form")
            line += f"; {name} {s[name]:.4g} (closed form {s[key]:.4g})"
    shown = {"leader_value", "follower_value", "upper_objective"}
    for key in s:
        name = key.removesuffix("_se")
        if key.endswith("_se") and name in s and name not in shown and \
                not name.endswith("_before"):
            before = f" from {s[name + '_before']:.4g}" if name + "_before" in s else ""
            line += f"; {name} {s[name]:.4g} (s.e. {s[key]:.2g}){before}"
    return line + f"  iterations {s['iterations']}  {s['wall_seconds']:.1f}s"


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else "(no message)"


def cmd_tournament(args: argparse.Namespace) -> int:
    from stackelberg.app.config import ConfigError, in_file
    from stackelberg.app.tournament import ExecutorError, load_spec, run_tournament
    from stackelberg.results import StoreError

    out = Path(args.out) if args.out else Path("runs") / Path(args.spec).stem
    try:
        spec = load_spec(args.spec, args.overrides, note=_note("tournament"))
    except ConfigError as err:  # name the spec file, unless the message already does
        message = str(err)
        if message.startswith(str(args.spec)):
            raise UserError(message) from None
        raise UserError(str(in_file(args.spec, err, args.overrides))) from None
    try:
        result = run_tournament(spec, out, workers=args.workers, ray_address=args.ray_address,
                                progress=not args.quiet, retry_failed=args.retry_failed)
    except StoreError as err:
        given = f" (with {' '.join(args.overrides)} from the command line)" \
            if args.overrides and "different tournament spec" in str(err) else ""
        raise UserError(f"{err}{given}") from None
    except (ConfigError, ExecutorError) as err:
        raise UserError(str(err)) from None
    retried = f" ({result.retried} failed earlier, retried)" if result.retried else ""
    print(f"tournament: {result.matches} matches; ran {result.ran}{retried} "
          f"({result.failed} failed), skipped {result.skipped} already stored; "
          f"{result.wall_seconds:.1f}s")
    for record in result.failures[:MAX_FAILURES_SHOWN]:
        print(f"  failed: {record.game} x {record.leader} x {record.follower}, seed "
              f"{record.seed}: {_first_line(record.error)}")
    if result.failed > MAX_FAILURES_SHOWN:
        print(f"  ... and {result.failed - MAX_FAILURES_SHOWN} more failures (see the store)")
    print(f"results store: {result.path} ({result.stored} matches)")
    return EXIT_OK


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def cmd_plot(args: argparse.Namespace) -> int:
    from analysis.runs import directory_names, game_differences, load_run
    from stackelberg.app.rundir import comparison_file, is_run_figure, save_figure

    run_dirs = [Path(d) for d in args.run_dirs]
    try:
        runs = [load_run(d) for d in run_dirs]
    except ValueError as err:
        raise UserError(str(err)) from None
    names = directory_names(run_dirs)
    differ = game_differences(runs)
    if differ:
        games = "; ".join(
            f"{name}: " + ", ".join(f"{k}={json.dumps(run.config['game'].get(k))}"
                                    for k in differ) for name, run in zip(names, runs,
                                                                          strict=True))
        print(f"stackelberg plot: warning: the runs come from different games ({games}); "
              "their values are not comparable", file=sys.stderr)
    single = len(run_dirs) == 1
    if args.out:
        out = Path(args.out)
        if is_run_figure(out) and not (single and out.parent.resolve() == run_dirs[0].resolve()):
            raise UserError(f"--out {out} is the figure of the run in {out.parent}; a plot "
                            "never replaces a run's own figure: name another file")
    else:  # one run: its own figure, drawn again as `run` drew it
        out = run_dirs[0] / "convergence.png" if single else comparison_file(names)
    if not (single and is_run_figure(out)):  # a run's own figure names no directory
        runs = [dataclasses.replace(run, name=name) for run, name in zip(runs, names,
                                                                         strict=True)]
    try:
        save_figure(runs, out)
    except ValueError as err:
        raise UserError(str(err)) from None
    where = "" if single or args.out else \
        " (several runs: in the current directory, not in a run directory; --out FILE to choose)"
    print(f"figure: {out}{where}")
    return EXIT_OK


def _is_old_report(names: set[str], path: Path) -> bool:
    """A report directory written before the marker: its index.md is a tournament report."""
    try:
        return "index.md" in names and \
            (path / "index.md").read_text(encoding="utf-8").startswith("# Tournament report")
    except (OSError, UnicodeDecodeError):
        return False


#: A report directory: derived data, so an earlier report is replaced without asking.
REPORT = OutputKind(what="report", option="--out", marker=".stackelberg-report",
                    legacy=_is_old_report)


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def cmd_report(args: argparse.Namespace) -> int:
    from analysis.report import ReportError, read_store, write_report
    from analysis.tournament import ToleranceRule

    try:
        rule = ToleranceRule(relative=args.tolerance)
    except ValueError as err:
        raise UserError(f"--tolerance: {err}") from None
    try:  # the store first: nothing is created for a directory that holds none
        matches = read_store(args.dir)
    except ReportError as err:
        raise UserError(str(err)) from None
    try:
        output = prepare(REPORT, args.out or Path(args.dir) / "report")
    except OutputError as err:
        raise UserError(str(err)) from None
    files, out = output.write(lambda staging: write_report(args.dir, staging, rule,
                                                          matches=matches,
                                                          draw=not args.no_figures))
    print(f"report: {out / files.html.name} and {out / files.index.name} "
          f"({len(files.tables)} tables, {len(files.figures)} figures)")
    return EXIT_OK


def cmd_tolls(args: argparse.Namespace) -> int:
    from stackelberg.app.rundir import RUN
    from stackelberg.congestion.run import TollConfigError, load_toll_config, run_tolls

    try:
        config = load_toll_config(args.config)
        output = prepare(RUN, args.out or Path("runs") / Path(args.config).stem, args.overwrite)
    except (TollConfigError, OutputError, OSError) as err:
        raise UserError(str(err)) from None
    (result, _), out = output.write(lambda staging: run_tolls(config, staging))
    print(f"run directory: {out}")
    print(f"total travel time {result.untolled_travel_time:.6g} without tolls, "
          f"{result.total_travel_time:.6g} with the planner's; relative gap "
          f"{result.equilibrium.relative_gap:.1e}; {result.cpu_seconds:.1f} CPU s")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stackelberg",
        description="Leader-follower games and bilevel RL: run matches and tournaments, "
        "list games and algorithms, plot runs, report tournaments.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of failures")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    games = sub.add_parser("games", help="list the registered games")
    games.add_argument("--json", action="store_true", help="print a JSON list")
    games.set_defaults(func=cmd_games)
    algorithms = sub.add_parser(
        "algorithms", help="list the leaders and follower learners with their parameters",
        description="Every registered leader and follower learner, with each parameter of its "
        "config section: type, default and what it does.")
    algorithms.add_argument("--json", action="store_true", help="print a JSON list")
    algorithms.set_defaults(func=cmd_algorithms)
    # `economy` is the same command: an economy is one more kind of game `run` plays
    for name, text in (("run", "run one match from a TOML config (a game or an economy)"),
                       ("economy", "alias of `run` (an economy's config, configs/commons.toml)")):
        run = sub.add_parser(name, help=text)
        run.add_argument("config", help="the experiment's TOML file")
        run.add_argument("overrides", nargs="*", metavar="section.key=value",
                         help="override config entries, e.g. run.iterations=100")
        run.add_argument("--out", help="run directory (default runs/<config>-<leader>-seed<N>)")
        run.add_argument("--overwrite", action="store_true",
                         help="replace an earlier run in DIR (never anything else: a non-empty "
                         "directory that is not a run directory is refused)")
        run.add_argument("--quiet", action="store_true", help="no progress bar")
        run.add_argument("--no-figure", action="store_true",
                         help="write no convergence.png (`stackelberg plot DIR` draws it later)")
        run.set_defaults(func=cmd_run)
    tournament = sub.add_parser(
        "tournament", help="play every match of a tournament spec into a results store",
        description="Play games x leaders x followers x seeds of a TOML spec; each finished "
        "match is committed to DIR/results.sqlite. Rerunning the same spec into the same DIR "
        "plays only the matches not stored yet.")
    tournament.add_argument("spec", help="the tournament's TOML file")
    tournament.add_argument(
        "overrides", nargs="*", metavar="key=value",
        help="override spec entries: seeds=[0,1], budget.iterations=50 (or run.iterations=50), "
        "leaders.LABEL.KEY=value, followers.*.tau=0.05; a list sweeps (lam=[10,100])")
    tournament.add_argument("--out", help="directory of the results store "
                            "(default runs/<spec name>)")
    tournament.add_argument("--workers", type=_positive_int, metavar="N",
                            help="matches played at once (default: 1 locally; every CPU of the "
                            "cluster on Ray)")
    tournament.add_argument("--ray-address", metavar="ADDR",
                            help="play the matches as Ray tasks: 'local' starts a private Ray "
                            "instance, 'auto' joins the running cluster, or host:port / "
                            "ray://host:port (needs the extra: pip install 'stackelberg[ray]')")
    tournament.add_argument("--retry-failed", action="store_true",
                            help="play again the matches that failed in an earlier run into "
                            "DIR (by default a failed match counts as stored)")
    tournament.add_argument("--quiet", action="store_true", help="no progress bar")
    tournament.set_defaults(func=cmd_tournament)
    plot = sub.add_parser("plot", help="draw the convergence figure of one or more runs")
    plot.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    plot.add_argument("--out", help="figure file (default: for one run its own "
                      "RUN_DIR/convergence.png, drawn again; for several, "
                      "convergence_<dir>_vs_<dir>.png in the current directory)")
    plot.set_defaults(func=cmd_plot)
    report = sub.add_parser("report", help="rank a tournament's results: tables, figures, index")
    report.add_argument("dir", metavar="DIR", help="a tournament output directory")
    report.add_argument("--out", help="report directory (default DIR/report)")
    report.add_argument("--tolerance", type=_tolerance, default=1e-2, metavar="REL",
                        help="speed tolerance as a fraction of the range of mean final "
                             "hyper-objectives in a game (default 0.01)")
    report.add_argument("--no-figures", action="store_true",
                        help="write the tables and the index without figures (drawing them is "
                        "most of the time a report takes)")
    report.set_defaults(func=cmd_report)
    tolls = sub.add_parser("tolls", help="optimize a road network's tolls (congestion game)")
    tolls.add_argument("config", help="the TOML file (stackelberg/congestion/run.py)")
    tolls.add_argument("--out", help="run directory (default runs/<config name>)")
    tolls.add_argument("--overwrite", action="store_true",
                       help="replace an earlier run in the --out directory")
    tolls.set_defaults(func=cmd_tolls)
    return parser


def version() -> str:
    """The installed distribution's version, else the package's ``__version__`` (a source tree
    run with ``PYTHONPATH``)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("stackelberg")
    except PackageNotFoundError:
        from stackelberg import __version__

        return __version__


def _closed_pipe() -> int:
    """The reader of stdout went away (``| head``): stop quietly. Python would report the
    error again when it flushes stdout at exit, so stdout is pointed at /dev/null first."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no file descriptor (a captured stdout): nothing to flush
        pass
    return EXIT_PIPE


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:  # argparse exits 2 with its message on a bad argument; return that code instead
        # overrides may come after options (`run exp.toml --quiet run.seed=3`)
        args, extra = parser.parse_known_args(argv)
        if extra:
            if args.command not in ("run", "tournament") or any("=" not in item
                                                                 for item in extra):
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            args.overrides = [*args.overrides, *extra]
    except SystemExit as err:  # --help exits 0
        return err.code if isinstance(err.code, int) else EXIT_USER
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit where it cannot be caught
        return code
    except BrokenPipeError:
        return _closed_pipe()
    except UserError as err:
        print(f"stackelberg {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit as err:  # only a user's code exits on its own; never report success then
        print(f"stackelberg {args.command}: internal error: something called "
              f"sys.exit({err.code!r}) (rerun with --debug, and please report it)",
              file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as err:  # an internal failure: say so, keep the traceback for --debug
        if args.debug:
            traceback.print_exc()
        print(f"stackelberg {args.command}: internal error: {type(err).__name__}: {err}\n"
              "(rerun with --debug for the traceback, and please report it)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
