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

from stackelberg.app.tournament.executors import Executor, make_executor
from stackelberg.app.tournament.lock import WriterLock, refuse_if_locked
from stackelberg.app.tournament.play import MatchOutcome
from stackelberg.app.tournament.spec import Match, TournamentSpec
from stackelberg.results import FILENAME, MatchRecord, ResultStore, StoreError, canonical_json


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


def check_store(spec: TournamentSpec, store: ResultStore) -> None:
    """Raise :class:`StoreError` unless ``store`` is new or holds results of ``spec`` only.

    Reads only: the check made before anything is started or written.
    """
    stored_spec = store.spec()
    if stored_spec is not None and canonical_json(stored_spec) != canonical_json(spec.as_data()):
        raise StoreError(
            f"{store.path} holds the results of a different tournament spec; use another "
            "output directory (or delete it) rather than mixing results")
    foreign = store.stored_ids() - {m.match_id for m in spec.matches}
    if foreign:
        raise StoreError(
            f"{store.path} holds {len(foreign)} match(es) that this spec does not produce: its "
            "matches resolve to other configs now (were they played by another version of the "
            "code, with other defaults?); use another output directory")


def pending(spec: TournamentSpec, store: ResultStore, retry_failed: bool = False) -> list[Match]:
    """The matches of ``spec`` that ``store`` does not hold (a failed one counts as held
    unless ``retry_failed``); ``store`` must have passed :func:`check_store`."""
    held = store.stored_ids("ok" if retry_failed else None)
    return [m for m in spec.matches if m.match_id not in held]


def matches_to_play(spec: TournamentSpec, store: ResultStore) -> list[Match]:
    """Bind ``store`` (open for writing) to ``spec`` and return the spec's matches it does not
    hold yet.

    Raises
    ------
    StoreError
        If the store belongs to another spec, or holds matches this spec does not produce (the
        same spec resolved differently: results of another version of the code).
    """
    check_store(spec, store)
    store.bind_spec(spec.as_data())
    return pending(spec, store)


def _survey(spec: TournamentSpec, out_dir: Path, retry_failed: bool) -> list[Match]:
    """What is left to play in ``out_dir``, found without creating or changing anything there.

    Raises StoreError if ``out_dir`` cannot hold this tournament's results: not a directory,
    another writer at work, a results file that is not a store of this spec.
    """
    if not out_dir.exists():
        return list(spec.matches)
    if not out_dir.is_dir():
        raise StoreError(f"{out_dir} is not a directory: the output of a tournament is a "
                         "directory (--out)")
    refuse_if_locked(out_dir)
    if not (out_dir / FILENAME).exists():
        return list(spec.matches)
    with ResultStore(out_dir, readonly=True) as store:
        check_store(spec, store)
        return pending(spec, store, retry_failed)


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
        for another spec, or a directory another tournament is writing into (its
        ``results.lock``), is refused with :class:`~stackelberg.results.StoreError`.
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
    executor = make_executor(workers, ray_address)  # Ray is installed, workers make sense
    out_dir = Path(out_dir)
    failures: list[MatchRecord] = []
    todo = _survey(spec, out_dir, retry_failed)
    retried, path = 0, out_dir / FILENAME
    if todo:
        # the executor starts (Ray is reached, or fails fast) before anything is written, so
        # a failure to start leaves the output directory as it was
        with executor:
            try:
                out_dir.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise StoreError(f"cannot create the output directory {out_dir}: "
                                 f"{err.strerror or err}") from None
            with WriterLock(out_dir), ResultStore(out_dir) as store:
                # checked again, now that no other writer can come in between
                matches_to_play(spec, store)  # binds a new store to the spec
                retried = store.forget_failed() if retry_failed else 0
                todo = pending(spec, store)
                from tqdm.auto import tqdm  # here: a refused spec's process draws no bar

                with tqdm(total=len(todo), unit="match", desc="tournament",
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
    else:
        with ResultStore(out_dir, readonly=True) as store:
            stored = len(store.stored_ids())
    return TournamentResult(path=path, matches=len(spec.matches), ran=len(todo),
                            skipped=len(spec.matches) - len(todo), failed=len(failures),
                            stored=stored, failures=tuple(failures),
                            wall_seconds=time.perf_counter() - start, retried=retried)


__all__ = ["TournamentResult", "check_store", "matches_to_play", "pending", "play_all",
           "run_tournament"]
