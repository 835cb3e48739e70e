"""The embedded PostgreSQL (pgserver) that `make run` starts without DATABASE_URL: one unclean exit
must not leave it running after every later clean one.

pgserver lists the processes using a server in `.handle_pids.json` in its data directory, and the
last one to leave stops it; a process killed with SIGKILL stays listed, so no later exit was the
last. The server forgets the handles of processes that are gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.process import server_process


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


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Not under pytest's tmp_path: run as root, pgserver runs PostgreSQL as an unprivileged user,
    which cannot enter pytest's private (0700) temporary directories. Whatever PostgreSQL is left
    running for it is killed at the end."""
    path = Path(tempfile.mkdtemp(prefix="modelgate-embedded-")).resolve()
    try:
        yield path
    finally:
        for pid in postmasters(path):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)  # PostgreSQL's immediate shutdown
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads processes from /proc")
async def test_a_clean_exit_after_a_killed_one_stops_the_embedded_postgresql(data_dir: Path) -> None:
    env = {"MODELGATE_DATA_DIR": str(data_dir)}
    pgdata = data_dir / "postgres"
    async with server_process(None, env=env) as killed:
        assert len(postmasters(pgdata)) == 1
        killed.signal(signal.SIGKILL)
        await killed.wait(within=10)
    assert len(postmasters(pgdata)) == 1  # left behind, and listed as still in use by the dead process
    assert json.loads((pgdata / ".handle_pids.json").read_text()) == [killed.process.pid]

    async with server_process(None, env=env) as clean:
        assert len(postmasters(pgdata)) == 1  # the same server, joined
        code = await clean.stop()
    assert code == 0
    assert postmasters(pgdata) == []
    assert json.loads((pgdata / ".handle_pids.json").read_text()) == []
    assert not (pgdata / "postmaster.pid").exists()
