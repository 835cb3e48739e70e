"""The embedded PostgreSQL (pgserver) that `make run` starts without DATABASE_URL: one unclean exit
must not leave it running after every later clean one.

pgserver lists the processes using a server in `.handle_pids.json` in its data directory, and the
last one to leave stops it; a process killed with SIGKILL stays listed, so no later exit was the
last. The server forgets the handles of processes that are gone.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.embedded_postgres import embedded_data_dir, postmasters
from tests.support.process import server_process


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with embedded_data_dir() as path:
        yield path


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
