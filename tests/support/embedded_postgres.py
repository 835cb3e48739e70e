"""The embedded PostgreSQL a server process starts without DATABASE_URL, seen from outside: its
server processes (from /proc) and a data directory that PostgreSQL's own user can enter."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

from tests.support.postgres import scratch_data_dir


def postmasters(data_dir: Path) -> list[int]:
    """PostgreSQL server processes whose command line names `data_dir` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if Path(argv[0].decode()).name == "postgres" and str(data_dir).encode() in b" ".join(argv):
                found.append(int(entry.name))
    return found


@contextlib.contextmanager
def embedded_data_dir() -> Iterator[Path]:
    """A data directory for an embedded PostgreSQL (see `scratch_data_dir`). Whatever PostgreSQL is
    left running for it is killed at the end."""
    path = scratch_data_dir("modelgate-embedded-")
    try:
        yield path
    finally:
        for pid in postmasters(path):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)  # PostgreSQL's immediate shutdown
        shutil.rmtree(path, ignore_errors=True)
