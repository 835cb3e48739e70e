"""A PostgreSQL of a test's own that the test can freeze: every process of the server stopped with
SIGSTOP while its sockets stay open, which is what a failover, a lock storm or a network partition
looks like to a client (connections neither answer nor fail). SIGCONT thaws it.

The session's embedded PostgreSQL is shared by every test, so a test that freezes starts its own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

from app.embedded_postgres import EmbeddedPostgres
from tests.support.postgres import scratch_data_dir


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError:  # the process ended meanwhile
        return b""


def _parent(pid: int) -> int | None:
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith(b"PPid:"):
            return int(line.split()[1])
    return None


def server_processes(data_dir: Path) -> list[int]:
    """The postmaster started on `data_dir` (found by its command line) and all its children."""
    marker = f"-D {data_dir.resolve()} ".encode()
    pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    roots = {pid for pid in pids if marker in _read(f"/proc/{pid}/cmdline").replace(b"\0", b" ")}
    found = set(roots)
    while True:
        children = {pid for pid in pids if pid not in found and _parent(pid) in found}
        if not children:
            return sorted(found)
        found |= children


class FreezablePostgres:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.server = EmbeddedPostgres(data_dir)
        self._stopped: set[int] = set()

    @property
    def dsn(self) -> str:
        return self.server.dsn

    def freeze(self) -> None:
        pids = server_processes(self.data_dir)
        assert pids, f"no PostgreSQL process found for {self.data_dir}"
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
                self._stopped.add(pid)

    def thaw(self) -> None:
        for pid in sorted(self._stopped | set(server_processes(self.data_dir))):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._stopped.clear()

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Frozen for the block; always thawed on the way out."""
        try:
            self.freeze()
            yield
        finally:
            self.thaw()


@contextlib.contextmanager
def freezable_postgres() -> Iterator[FreezablePostgres]:
    data_dir = scratch_data_dir("modelgate-frozen-pg-")
    postgres = FreezablePostgres(data_dir)
    try:
        yield postgres
    finally:
        postgres.thaw()
        postgres.server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
