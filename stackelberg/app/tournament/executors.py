"""Where the matches of a tournament run: in-process, in local worker processes, or on Ray.

Every executor has the same small interface, driven by the runner (the only writer of the
results store): ``slots`` matches may be in flight at once; ``submit(match)`` hands one over;
``next_finished()`` blocks until one has finished and returns its
:class:`~stackelberg.app.tournament.play.MatchOutcome`. Executors are context managers that
start their workers on entry and stop them on exit.

Wherever a match runs, BLAS runs on one thread (:mod:`stackelberg.app.threads`), and a local
worker process dies with the tournament (:mod:`.worker_setup`).

Ray is an optional extra (``pip install 'stackelberg[ray]'``), imported only by
:class:`RayExecutor`.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from stackelberg.app.threads import pin_threads
from stackelberg.app.tournament import worker_setup
from stackelberg.app.tournament.play import MatchOutcome, failed_outcome, play_match
from stackelberg.app.tournament.spec import Match

#: ``ray_address`` value that starts a private local Ray instance (Ray's own meaning of it).
RAY_LOCAL = "local"
#: Ray's own default port of a ``ray://`` (Ray Client) address.
RAY_CLIENT_PORT = 10001
#: How long the cluster's address may take to accept a TCP connection. Ray itself retries an
#: unreachable address for minutes (13 of them in issue 10) before it says so.
RAY_CONNECT_SECONDS = 10.0
RAY_INSTALL_HINT = ("pip install 'stackelberg[ray]' (in a checkout: .venv/bin/pip install -e "
                    "'.[ray]')")


#: What the fork server imports once for all the workers forked from it: the match code, and
#: the libraries it imports only when it first computes (stackelberg.scipy_functions, the
#: leaders' L-BFGS and the SSE's linear program, the progress bar), which every worker would
#: otherwise import again for itself.
PRELOAD = (play_match.__module__, worker_setup.__name__,
           "scipy.special", "scipy.linalg.lapack", "scipy.optimize", "tqdm.auto")


class ExecutorError(RuntimeError):
    """The executor cannot be set up as asked (Ray not installed, no cluster at the address)."""


class WorkerCrashed(RuntimeError):
    """A local worker process died (killed, out of memory); the pool cannot go on."""


class Executor(Protocol):
    slots: int

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...

    def submit(self, match: Match) -> None: ...

    def next_finished(self) -> MatchOutcome: ...


class InProcessExecutor:
    """Plays the matches one at a time in this process (``workers=1``), with BLAS on one
    thread while the executor is open (the earlier limits are restored on exit)."""

    slots = 1

    def __init__(self) -> None:
        self._queue: deque[Match] = deque()
        self._limits: Any = None

    def __enter__(self) -> InProcessExecutor:
        from threadpoolctl import threadpool_limits

        self._limits = threadpool_limits(limits=1)
        return self

    def __exit__(self, *exc: object) -> None:
        self._queue.clear()
        if self._limits is not None:
            self._limits.restore_original_limits()
            self._limits = None

    def submit(self, match: Match) -> None:
        self._queue.append(match)

    def next_finished(self) -> MatchOutcome:
        return play_match(self._queue.popleft())


class ProcessExecutor:
    """A pool of ``workers`` local processes (``concurrent.futures.ProcessPoolExecutor``).

    Workers are forked from a fork server that has imported the match code once
    (``forkserver`` start method): they start fast and inherit no threads, open files or
    database connections of this process. Each runs BLAS on one thread and exits when this
    process dies (:func:`~.worker_setup.setup_worker`).
    """

    def __init__(self, workers: int):
        self.slots = workers
        self._pool: ProcessPoolExecutor | None = None
        self._running: dict[Future[MatchOutcome], Match] = {}

    def __enter__(self) -> ProcessExecutor:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(PRELOAD))
        self._pool = ProcessPoolExecutor(max_workers=self.slots, mp_context=context,
                                         initializer=worker_setup.setup_worker,
                                         initargs=(os.getpid(),))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            # after an error, do not wait for the matches still running
            self._pool.shutdown(wait=exc[0] is None, cancel_futures=True)
        self._running.clear()

    def submit(self, match: Match) -> None:
        assert self._pool is not None, "use the executor in a with block"
        self._running[self._pool.submit(play_match, match)] = match

    def next_finished(self) -> MatchOutcome:
        done, _ = wait(self._running, return_when=FIRST_COMPLETED)
        future = next(iter(done))
        match = self._running.pop(future)
        try:
            return future.result()
        except BrokenProcessPool:
            running = [match, *self._running.values()]
            raise WorkerCrashed(
                "a worker process died while playing "
                f"{'; '.join(m.describe() for m in running)} (killed, or out of memory?); the "
                "finished matches are stored: rerun the same command to resume") from None
        except Exception as err:  # e.g. an outcome that cannot be sent back
            return failed_outcome(match, f"{type(err).__name__}: {err}")


def _ray_endpoint(address: str) -> tuple[str, int] | None:
    """``(host, port)`` that ``address`` makes Ray connect to first; None for ``"local"``
    and for an ``"auto"`` that finds no cluster (Ray says so at once)."""
    if address == RAY_LOCAL:
        return None
    if address == "auto":
        try:  # Ray's own lookup (RAY_ADDRESS, then the cluster `ray start` made last)
            from ray._private.services import get_ray_address_from_environment

            address = get_ray_address_from_environment("auto", None)
        except Exception:  # a private function of Ray: if it moved, let ray.init decide
            return None
        if not address or address == RAY_LOCAL:
            return None
    scheme, _, rest = address.rpartition("://")
    host, colon, port = rest.rpartition(":")
    if not colon and scheme == "ray":
        host, port = rest, str(RAY_CLIENT_PORT)
    host = host.strip("[]")  # an IPv6 literal: [::1]:6379
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in host:
        raise ExecutorError(f"--ray-address {address!r}: expected 'local', 'auto', "
                            "host:port (a cluster's GCS) or ray://host[:port] (Ray Client)")
    return host, int(port)


def check_ray_reachable(address: str, timeout: float = RAY_CONNECT_SECONDS) -> None:
    """Raise :class:`ExecutorError` unless the host behind ``address`` accepts a TCP
    connection on its port within ``timeout`` seconds."""
    endpoint = _ray_endpoint(address)
    if endpoint is None:
        return
    host, port = endpoint
    try:
        with socket.create_connection(endpoint, timeout=timeout):
            pass
    except OSError as err:
        reason = "no answer" if isinstance(err, TimeoutError) else (err.strerror or str(err))
        raise ExecutorError(
            f"cannot reach Ray at --ray-address {address!r}: {host}:{port}: {reason}; is the "
            "cluster running (`ray start --head` prints its address) and is the address "
            "right? 'local' starts a private Ray instance instead") from None


def _play_on_ray(match: Match) -> MatchOutcome:
    """A Ray task: one BLAS thread in this Ray worker, then the match."""
    pin_threads()
    return play_match(match)


class RayExecutor:
    """Matches as Ray tasks (one CPU each) on the cluster at ``address``.

    Parameters
    ----------
    address : str
        ``"local"`` starts a private Ray instance on this machine (stopped at the end);
        ``"auto"`` joins the cluster this machine belongs to (``ray start``); ``"host:port"``
        or ``"ray://host:10001"`` a given one. If this process is already connected to Ray
        (``ray.init`` was called), that connection is used and ``address`` is ignored.
    workers : int, optional
        Matches in flight at once, and the CPUs of a ``"local"`` instance. Default: every CPU
        of the cluster (of this machine for ``"local"``).
    """

    def __init__(self, address: str, workers: int | None = None):
        try:
            import ray
        except ImportError:
            raise ExecutorError(
                f"--ray-address needs Ray, an optional extra that is not installed: "
                f"{RAY_INSTALL_HINT}") from None
        self._ray = ray
        self.address = address
        self.workers = workers
        self.slots = workers or 1
        self._owns_ray = False
        self._running: dict[Any, Match] = {}

    def _init_arguments(self) -> dict[str, Any]:
        arguments: dict[str, Any] = {"address": self.address, "log_to_driver": False,
                                     "configure_logging": False}
        if self.address == RAY_LOCAL:
            arguments.update(num_cpus=self.workers or os.cpu_count() or 1,
                             include_dashboard=False)
        return arguments

    def __enter__(self) -> RayExecutor:
        ray = self._ray
        if not ray.is_initialized():
            check_ray_reachable(self.address)
            try:
                ray.init(**self._init_arguments())
            except (ConnectionError, ValueError, RuntimeError) as err:
                raise ExecutorError(f"cannot start or reach Ray at {self.address!r}: {err}"
                                    ) from None
            self._owns_ray = True
        self.slots = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._task = ray.remote(num_cpus=1)(_play_on_ray)
        return self

    def __exit__(self, *exc: object) -> None:
        for ref in self._running:
            self._ray.cancel(ref, force=True)
        self._running.clear()
        if self._owns_ray:
            self._ray.shutdown()

    def submit(self, match: Match) -> None:
        self._running[self._task.remote(match)] = match

    def next_finished(self) -> MatchOutcome:
        [ref], _ = self._ray.wait(list(self._running), num_returns=1)
        match = self._running.pop(ref)
        try:
            return self._ray.get(ref)
        except self._ray.exceptions.RayError as err:  # the worker died, the node was lost, ...
            return failed_outcome(match, f"the Ray task failed: {type(err).__name__}: {err}")


def make_executor(workers: int | None = None, ray_address: str | None = None) -> Executor:
    """The executor for ``workers`` local processes, or for Ray at ``ray_address``.

    ``workers=None`` means one local process (this one), or every CPU of the Ray cluster.
    Ray is imported here, so a missing installation is reported before anything starts.
    """
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if ray_address is not None:
        return RayExecutor(ray_address, workers)
    if workers is None or workers == 1:
        return InProcessExecutor()
    return ProcessExecutor(workers)


__all__ = ["Executor", "ExecutorError", "InProcessExecutor", "ProcessExecutor", "RAY_LOCAL",
           "RayExecutor", "WorkerCrashed", "check_ray_reachable", "make_executor"]
