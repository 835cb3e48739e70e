"""The embedded PostgreSQL (pgserver) that `make run` and the tests use when no DATABASE_URL is given."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import orjson
import psutil

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A PostgreSQL server of our own (pgserver) with its data in `data_dir`, reused across starts.

    pgserver lists the processes using the server in `.handle_pids.json` in the data directory, and
    the last one to leave stops it. A process killed before its exit hooks ran (SIGKILL, the OOM
    killer) stays listed for good, so that no later exit is the last and the server is left running
    after each one. Handles of processes that are gone are forgotten on the way in and on the way out.
    """

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        logging.getLogger("pgserver").setLevel(logging.WARNING)  # it narrates every command at INFO
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            from pgserver.postgres_server import get_server

            pgdata = data_dir.resolve()
            self._handles = pgdata / ".handle_pids.json"
            _forget_dead_handles(self._handles)
            self._server = get_server(str(pgdata), cleanup_mode="stop")

    @property
    def dsn(self) -> str:
        return str(self._server.get_uri())

    def stop(self) -> None:
        """Leaves the server, stopping it when no live process uses it any more."""
        _forget_dead_handles(self._handles)
        self._server.cleanup()


def _forget_dead_handles(handles: Path) -> None:
    """Drops from pgserver's handle list the processes that cannot hold a handle any more: gone, or
    a later process that was given a dead one's id (created after the list was last written)."""
    from pgserver.postgres_server import PostgresServer

    with PostgresServer._lock:  # pgserver's own lock over every server's handle list
        try:
            listed: list[int] = orjson.loads(handles.read_bytes())
            written = handles.stat().st_mtime
        except FileNotFoundError:
            return
        alive = [pid for pid in listed if _may_hold_handle(pid, written)]
        if alive != listed:
            log.warning(
                "forgot embedded PostgreSQL handles of processes that are gone: %s",
                sorted(set(listed) - set(alive)),
            )
            handles.write_bytes(orjson.dumps(alive))


def _may_hold_handle(pid: int, written: float) -> bool:
    try:
        process = psutil.Process(pid)
        gone = process.status() == psutil.STATUS_ZOMBIE
        return not gone and float(process.create_time()) <= written + 1
    except psutil.NoSuchProcess:
        return False
