"""Several server processes on one port (MODELGATE_WORKERS): a supervisor and its workers.

`modelgate serve` prepares the database once — the embedded PostgreSQL started, migrations applied,
the demo seeded — and with more than one worker hands over to `supervise`:

- Each worker is a fresh interpreter (multiprocessing's spawn) that builds the app and binds the
  port with SO_REUSEPORT: the kernel spreads new connections over the workers' listeners (Linux
  balances them; other systems may not). A connection, and every stream on it, stays with the
  worker that accepted it. Workers share nothing but PostgreSQL, as separate instances do.
- Each worker has its own database pool of MODELGATE_DB_POOL_MAX_SIZE connections, lowered when
  the workers' pools and LISTEN connections would not fit in what PostgreSQL allows.
- SIGTERM or SIGINT is forwarded to every worker; each drains as a single server does
  (app/shutdown.py) and the supervisor exits once all have, killing any still there past the drain
  grace plus `EXIT_MARGIN`. The embedded PostgreSQL is stopped after that, by the caller.
- A worker that dies once it listens (a crash, the OOM killer) is replaced at once: its calls in
  flight are lost, and what it had leased from the shared limits stops counting after the lease
  timeouts. A worker that dies before it listens (the port taken, a setting it cannot use) would
  fail again each time: the whole server stops instead, with status 1. Workers whose supervisor
  was killed outright drain and exit by themselves.
- Metrics are prometheus_client's multiprocess mode in a directory of the supervisor's
  (app/metrics.py); log lines carry the worker's number.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from pathlib import Path
from types import FrameType

import asyncpg
from prometheus_client.multiprocess import mark_process_dead

from app.cli_input import CommandError
from app.config import Settings
from app.logs import configure_logging

log = logging.getLogger("modelgate.workers")

# Connections each worker opens beside its pool: the LISTEN connection (app/listener.py).
CONNECTIONS_BESIDE_POOL = 1
# Connections left over for the command line (migrate, rotate-secrets) and an operator's psql.
SPARE_CONNECTIONS = 5
# Workers exit within the drain grace plus 2 s (app/shutdown.py); past this margin they are killed.
EXIT_MARGIN = 3.0
_WATCH_EVERY = 0.2  # seconds between looks at the stop deadline while waiting for workers


def pool_size_per_worker(wanted: int, workers: int, allowed: int) -> int:
    """Each worker's pool: `wanted`, lowered so that every worker's pool and LISTEN connection fit
    in the `allowed` connections with a few to spare."""
    fits = (allowed - SPARE_CONNECTIONS) // workers - CONNECTIONS_BESIDE_POOL
    if fits < 1:
        needed = workers * (1 + CONNECTIONS_BESIDE_POOL) + SPARE_CONNECTIONS
        raise CommandError(
            f"MODELGATE_WORKERS={workers} needs at least {needed} database connections and "
            f"PostgreSQL allows {allowed}: run fewer workers or raise max_connections"
        )
    return min(wanted, fits)


async def _allowed_connections(dsn: str) -> int:
    """The connections PostgreSQL lets an ordinary role open."""
    conn = await asyncpg.connect(dsn)
    try:
        allowed: int = await conn.fetchval(
            """SELECT current_setting('max_connections')::int
                      - current_setting('superuser_reserved_connections')::int
                      - coalesce(current_setting('reserved_connections', true)::int, 0)"""
        )
        return allowed
    finally:
        await conn.close()


def _with_pool_per_worker(settings: Settings, workers: int) -> Settings:
    assert settings.database_url
    allowed = asyncio.run(_allowed_connections(settings.database_url))
    size = pool_size_per_worker(settings.db_pool_max_size, workers, allowed)
    if size < settings.db_pool_max_size:
        log.warning(
            "database pools lowered to %d connections per worker: %d workers of %d would not fit "
            "in the %d connections PostgreSQL allows",
            size,
            workers,
            settings.db_pool_max_size,
            allowed,
        )
    return settings.model_copy(
        update={"db_pool_max_size": size, "db_pool_min_size": min(settings.db_pool_min_size, size)}
    )


def run_worker(settings: Settings, index: int, listening: Event) -> None:
    """A worker process: the app on the shared port until SIGTERM or SIGINT."""
    from app.server import create_app
    from app.serving import SHUTDOWN_TIMEOUT, serve

    configure_logging(settings.log_level, worker=index)
    threading.Thread(target=_drain_when_orphaned, args=(os.getppid(),), daemon=True).start()
    serve(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        limits=settings.client_limits,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        reuse_port=True,
        on_listening=lambda: _listening(settings, listening),
    )


def _listening(settings: Settings, listening: Event) -> None:
    log.info("worker listening", extra={"host": settings.host, "port": settings.port})
    listening.set()


def _drain_when_orphaned(supervisor: int) -> None:
    """A supervisor killed outright (SIGKILL) forwards nothing: its workers stop by themselves."""
    while os.getppid() == supervisor:
        time.sleep(1)
    log.error("the supervisor is gone: stopping")
    os.kill(os.getpid(), signal.SIGTERM)


@dataclass(frozen=True, slots=True)
class _Worker:
    index: int
    process: BaseProcess
    listening: Event


class Supervisor:
    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings
        self.count = count
        self._spawn = multiprocessing.get_context("spawn")
        self._workers: dict[int, _Worker] = {}
        self._stop_by: float | None = None  # set by the first SIGTERM or SIGINT
        self._failed = False

    def run(self) -> int:
        """Starts the workers and keeps them until a stop; the exit status."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._stop)
        for index in range(self.count):
            self._start(index)
        while self._workers:
            by_sentinel = {w.process.sentinel: w for w in self._workers.values()}
            for sentinel in wait(list(by_sentinel), timeout=_WATCH_EVERY):
                self._ended(by_sentinel[sentinel])  # type: ignore[index]
            if self._stop_by is not None and time.monotonic() > self._stop_by:
                for worker in self._workers.values():
                    log.error("worker still running after the drain: killed", extra=_about(worker))
                    worker.process.kill()
                self._failed = True
                self._stop_by = float("inf")  # killed once; their ends are collected above
        return 1 if self._failed else 0

    def _start(self, index: int) -> None:
        listening = self._spawn.Event()
        process = self._spawn.Process(
            target=run_worker, args=(self.settings, index, listening), name=f"modelgate-worker-{index}"
        )
        process.start()
        worker = _Worker(index, process, listening)
        self._workers[index] = worker
        log.info("worker started", extra=_about(worker))
        if self._stop_by is not None:  # the stop came while it was starting
            process.terminate()

    def _ended(self, worker: _Worker) -> None:
        worker.process.join()
        del self._workers[worker.index]
        # Its gauges stop counting; its counters stay in the sums, so that they never go back.
        mark_process_dead(worker.process.pid)  # type: ignore[no-untyped-call]
        code = worker.process.exitcode
        if self._stop_by is not None:
            if code != 0:
                log.error("worker did not stop cleanly", extra=_about(worker, code))
                self._failed = True
        elif not worker.listening.is_set():
            log.error("worker exited before it listened: stopping", extra=_about(worker, code))
            self._failed = True
            self._stop(signal.SIGTERM, None)
        else:
            log.error("worker exited: starting another", extra=_about(worker, code))
            self._start(worker.index)

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        """SIGTERM/SIGINT (a signal handler: no logging here): passed on to every worker."""
        if self._stop_by is None:
            self._stop_by = time.monotonic() + self.settings.drain_grace + EXIT_MARGIN
        for worker in self._workers.values():
            if worker.process.pid is not None:
                os.kill(worker.process.pid, signum)


def _about(worker: _Worker, exit_code: int | None = None) -> dict[str, object]:
    about: dict[str, object] = {"worker": worker.index, "pid": worker.process.pid}
    if exit_code is not None:
        about["exitCode"] = exit_code
    return about


def _refuse_a_taken_port(host: str, port: int) -> None:
    """With SO_REUSEPORT the workers would join the listeners of another server of the same user on
    this port and silently share its traffic: a port taken is refused here, as one process would."""
    family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    try:
        with socket.socket(family, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the workers bind
            probe.bind(address)
    except OSError as exc:
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def supervise(settings: Settings, count: int) -> int:
    """Serves with `count` workers until SIGTERM or SIGINT has stopped them all; the exit status."""
    _refuse_a_taken_port(settings.host, settings.port)
    settings = _with_pool_per_worker(settings, count)
    metrics = Path(tempfile.mkdtemp(prefix="modelgate-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)  # read by each worker as it starts
    try:
        return Supervisor(settings, count).run()
    finally:
        del os.environ["PROMETHEUS_MULTIPROC_DIR"]
        shutil.rmtree(metrics, ignore_errors=True)
