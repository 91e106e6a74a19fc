"""Running a tournament: the matches not yet stored, on an executor, into a results store.

The parent process is the store's only writer: workers (processes or Ray tasks) play a match
and send back its record and metrics, and each finished match is committed in one transaction
(:meth:`~stackelberg.results.ResultStore.write_match`). A tournament killed at any point
therefore leaves whole matches only, and rerunning the same spec into the same directory plays
just the matches whose ids are not stored yet (a failed match counts as stored, unless the
rerun asks to retry failed matches).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from stackelberg.app.tournament.executors import Executor, make_executor
from stackelberg.app.tournament.play import MatchOutcome
from stackelberg.app.tournament.spec import Match, TournamentSpec
from stackelberg.results import MatchRecord, ResultStore, StoreError


@dataclass(frozen=True)
class TournamentResult:
    """What a call of :func:`run_tournament` did.

    Attributes
    ----------
    path : Path
        The results store (``OUT_DIR/results.sqlite``).
    matches : int
        Matches in the spec.
    ran : int
        Matches played by this call (``failed`` of them failed).
    skipped : int
        Matches already stored by an earlier call, not played again.
    retried : int
        Failed matches of earlier calls deleted to be played again (``retry_failed``).
    failed : int
    stored : int
        Matches in the store now.
    failures : tuple of MatchRecord
        The records of the matches that failed in this call.
    wall_seconds : float
    """

    path: Path
    matches: int
    ran: int
    skipped: int
    failed: int
    stored: int
    failures: tuple[MatchRecord, ...]
    wall_seconds: float
    retried: int = 0


def matches_to_play(spec: TournamentSpec, store: ResultStore) -> list[Match]:
    """Bind ``store`` to ``spec`` and return the spec's matches it does not hold yet.

    Raises
    ------
    StoreError
        If the store belongs to another spec, or holds matches this spec does not produce (the
        same spec resolved differently: results of another version of the code).
    """
    store.bind_spec(spec.as_data())
    stored = store.stored_ids()
    foreign = stored - {m.match_id for m in spec.matches}
    if foreign:
        raise StoreError(
            f"{store.path} holds {len(foreign)} match(es) that this spec does not produce: its "
            "matches resolve to other configs now (were they played by another version of the "
            "code, with other defaults?); use another output directory")
    return [m for m in spec.matches if m.match_id not in stored]


def play_all(executor: Executor, matches: Sequence[Match]) -> Iterator[tuple[MatchOutcome, int]]:
    """Keep ``executor.slots`` matches in flight; yield each outcome as it finishes, with the
    number of matches running then (the next one is submitted before the outcome is yielded,
    so workers do not wait while the caller stores it)."""
    waiting, running = deque(matches), 0

    def fill() -> None:
        nonlocal running
        while waiting and running < executor.slots:
            executor.submit(waiting.popleft())
            running += 1

    fill()
    while running:
        outcome = executor.next_finished()
        running -= 1
        fill()
        yield outcome, running


def run_tournament(
    spec: TournamentSpec,
    out_dir: str | Path,
    workers: int | None = None,
    ray_address: str | None = None,
    progress: bool = True,
    retry_failed: bool = False,
) -> TournamentResult:
    """Play every match of ``spec`` not yet stored in ``out_dir``'s results store.

    Parameters
    ----------
    spec : TournamentSpec
        A validated spec (:func:`~stackelberg.app.tournament.spec.load_spec`).
    out_dir : str or Path
        Directory of the results store ``results.sqlite`` (created if needed). A store made
        for another spec is refused.
    workers : int, optional
        Matches played at once. Locally (no ``ray_address``): ``None`` or 1 plays them in this
        process, more use a pool of worker processes. On Ray: ``None`` uses every CPU of the
        cluster.
    ray_address : str, optional
        Run the matches as Ray tasks: ``"local"`` starts a private Ray instance on this
        machine, ``"auto"`` joins the running cluster, or a ``"host:port"`` /
        ``"ray://host:port"`` address (see :class:`~.executors.RayExecutor`).
    progress : bool
        Show a progress bar (done / running / failed) on stderr.
    retry_failed : bool
        Play the matches that failed in earlier calls again (they are deleted from the store
        first); by default a failed match counts as stored.

    Returns
    -------
    TournamentResult

    Notes
    -----
    A match that raises is stored with status ``"failed"`` and its error text; the others go
    on. Each match seeds itself from its own seed, so results do not depend on ``workers`` or
    the executor (a ``max_seconds`` budget aside, which stops on wall time).
    """
    start = time.perf_counter()
    executor = make_executor(workers, ray_address)  # before any file is written
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    failures: list[MatchRecord] = []
    with ResultStore(out_dir) as store:
        store.bind_spec(spec.as_data())  # refuse another spec's store before deleting anything
        retried = store.forget_failed() if retry_failed else 0
        todo = matches_to_play(spec, store)
        if todo:
            with executor, tqdm(total=len(todo), unit="match", desc="tournament",
                                disable=not progress, dynamic_ncols=True) as bar:
                bar.set_postfix_str(f"running {min(executor.slots, len(todo))}, failed 0")
                for outcome, running in play_all(executor, todo):
                    store.write_match(outcome.record, outcome.metrics)
                    if not outcome.record.ok:
                        failures.append(outcome.record)
                    bar.set_postfix_str(f"running {running}, failed {len(failures)}",
                                        refresh=False)
                    bar.update()
        stored = len(store.stored_ids())
        path = store.path
    return TournamentResult(path=path, matches=len(spec.matches), ran=len(todo),
                            skipped=len(spec.matches) - len(todo), failed=len(failures),
                            stored=stored, failures=tuple(failures),
                            wall_seconds=time.perf_counter() - start, retried=retried)


__all__ = ["TournamentResult", "matches_to_play", "play_all", "run_tournament"]
