"""``devmesh serve --workers N``: N processes answering on one listening socket.

One Python process spends one core at most, so a busy service needs more of them.
The parent binds the socket, then forks N children before it has an event loop, a
thread or a database connection; each child builds its own app (pools, caches,
metrics values) and serves the inherited socket, and the kernel spreads connections
among them. The parent only waits: SIGTERM or SIGINT is passed on to every child,
each drains as a single process does, and the parent exits 0 when all exited 0. A
child that dies on its own makes the parent stop the others and exit 1, so the
orchestrator restarts the whole service rather than running it short-handed.

What the processes share is what replicas share (the database, Redis), plus the
metrics: each child writes its values to files in a directory of the parent's
(prometheus_client's multiprocess mode), and ``/metrics`` from any child sums them.
Background work (the event worker, build watcher, notifier, retention) runs in
every child on PostgreSQL, whose claims use ``SKIP LOCKED``, and in the first child
only on SQLite, which has one writer at a time anyway.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from types import FrameType

import structlog
from prometheus_client.multiprocess import mark_process_dead

from devmesh.config import Settings

__all__ = ["background_in", "default_workers", "run_workers"]

_log = structlog.get_logger(__name__)
_PR_SET_PDEATHSIG = 1
# Beyond the children's own graceful shutdown, how long the parent waits before SIGKILL.
_KILL_GRACE_S = 10.0


def default_workers(settings: Settings) -> int:
    """``serve.workers``, else one per CPU this process may run on where the state the
    processes must share (rate-limit windows, breakers) lives in Redis, else one: on
    the embedded default each process would keep its own, and SQLite has one writer."""
    if settings.serve.workers:
        return settings.serve.workers
    if settings.redis_url is None:
        return 1
    return max(1, len(os.sched_getaffinity(0)))


def background_in(settings: Settings, index: int) -> bool:
    """Whether child ``index`` runs the background work (when the settings want it in
    ``serve`` at all): every child on PostgreSQL, the first only on SQLite."""
    return index == 0 or not settings.resolved_database_url.startswith("sqlite")


def run_workers(
    settings: Settings, sock: socket.socket, workers: int, serve: Callable[[int], int]
) -> int:
    """Fork ``workers`` children that each run ``serve(index)`` (which serves ``sock``
    and returns an exit code); wait for them. The parent's exit code."""
    metrics_dir = tempfile.mkdtemp(prefix="devmesh-metrics-")
    children: dict[int, int] = {}
    stopping = False

    def stop_children(signum: int = signal.SIGTERM) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def on_signal(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            stop_children()
            # Bounded: a child that will not drain is killed after its grace.
            signal.setitimer(signal.ITIMER_REAL, settings.shutdown_timeout + _KILL_GRACE_S)

    def on_alarm(_: int, __: FrameType | None) -> None:
        stop_children(signal.SIGKILL)

    previous = {
        sig: signal.signal(sig, handler)
        for sig, handler in (
            (signal.SIGTERM, on_signal),
            (signal.SIGINT, on_signal),
            (signal.SIGALRM, on_alarm),
        )
    }
    parent = os.getpid()
    try:
        for index in range(workers):
            if stopping:
                break  # told to stop while starting: start no more
            pid = os.fork()
            if pid == 0:  # pragma: no cover (the child; the process tests run it)
                os._exit(_child(index, parent, metrics_dir, serve))
            children[pid] = index
        _log.info("workers_started", workers=workers, pids=sorted(children))
        failed = False
        while children:
            pid, status = os.wait()
            index = children.pop(pid, -1)
            if index < 0:
                continue  # not one of ours (nothing else should be a child, but be sure)
            code = os.waitstatus_to_exitcode(status)
            # Its live gauges (breakers open, queue depth) leave the sums with it.
            mark_process_dead(pid, metrics_dir)  # type: ignore[no-untyped-call]
            # A child told to stop while still starting (before its server took over
            # the signal) dies of the SIGTERM itself: it held no request, so that is a
            # clean stop too. It used to make a prompt SIGTERM end the service with 1.
            stopped = code == 0 or code == -signal.SIGTERM
            if not stopped or not stopping:
                failed = True
                _log.error("worker_exited", worker=index, pid=pid, exit_code=code)
            if not stopping:
                on_signal(signal.SIGTERM, None)
        return 1 if failed else 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop_children(signal.SIGKILL)
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _child(index: int, parent: int, metrics_dir: str, serve: Callable[[int], int]) -> int:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(sig, signal.SIG_DFL)
    if sys.platform == "linux":
        # A parent killed outright (SIGKILL) cannot pass anything on: the kernel does.
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        return 1  # the parent died before the line above
    from devmesh.observability.metrics import share_across_processes

    share_across_processes(metrics_dir)
    try:
        return serve(index)
    except BaseException:  # a child must never return into the parent's code
        _log.exception("worker_failed", worker=index)
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
