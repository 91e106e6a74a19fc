"""Tournaments (DESIGN, "A tournament, as data"): a spec of games x leaders x followers x seeds,
expanded into matches with stable ids, played locally or on Ray, each finished match committed
to a results store.

- :mod:`.spec`: the TOML spec -> validated :class:`TournamentSpec` and its matches
- :mod:`.play`: playing one match (what a worker does)
- :mod:`.executors`: in-process, local worker processes, Ray tasks
- :mod:`.runner`: :func:`run_tournament`, the results store's only writer
- :mod:`.lock`: one writer per results directory
"""

from stackelberg.app.tournament.executors import ExecutorError, WorkerCrashed
from stackelberg.app.tournament.lock import StoreBusy
from stackelberg.app.tournament.runner import TournamentResult, run_tournament
from stackelberg.app.tournament.spec import Match, TournamentSpec, load_spec, parse_spec

__all__ = ["ExecutorError", "Match", "StoreBusy", "TournamentResult", "TournamentSpec",
           "WorkerCrashed", "load_spec", "parse_spec", "run_tournament"]
