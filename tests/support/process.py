"""The real server as a subprocess (`python -m app serve`) against a test database.

For what only a real process shows: signals (SIGTERM drains, SIGKILL leaves state behind), its own
event loop under load, several instances on one PostgreSQL. Logs are kept (JSON lines on stderr) so
that a test can assert on them; on failure they are worth printing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

REPO = Path(__file__).resolve().parents[2]
# A throwaway key ring for tests only (the same as tests/conftest.py's).
TEST_SECRET_KEYS = "test1:1Fobe5J4/J5f3kycscsaG1V7IJ0Q60K4TJjm0EPvyp4="


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    process: asyncio.subprocess.Process
    port: int
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    _readers: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (other stderr lines are skipped)."""
        records = []
        for line in self.stderr:
            with contextlib.suppress(orjson.JSONDecodeError):
                record = orjson.loads(line)
                if isinstance(record, dict):
                    records.append(record)
        return records

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    async def wait(self, within: float) -> int:
        """The exit code, once the process has exited and its output is read."""
        code = await asyncio.wait_for(self.process.wait(), within)
        await asyncio.gather(*self._readers, return_exceptions=True)
        return code

    async def stop(self, grace: float = 30) -> int:
        """SIGTERM, then SIGKILL if it is still there after `grace` seconds."""
        if self.process.returncode is None:
            self.signal(signal.SIGTERM)
            try:
                return await self.wait(grace)
            except TimeoutError:
                self.process.kill()
        return await self.wait(10)


async def _read_lines(stream: asyncio.StreamReader | None, into: list[str]) -> None:
    if stream is None:
        return
    while line := await stream.readline():
        into.append(line.decode(errors="replace").rstrip("\n"))


async def _until_healthy(server: ServerProcess, within: float) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if server.process.returncode is not None:
                raise RuntimeError(
                    f"the server exited with {server.process.returncode}:\n" + "\n".join(server.stderr[-30:])
                )
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(f"{server.url}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise TimeoutError("the server did not become healthy:\n" + "\n".join(server.stderr[-30:]))


@contextlib.asynccontextmanager
async def server_process(
    database_url: str | None,
    *,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    startup_timeout: float = 60,
) -> AsyncIterator[ServerProcess]:
    """A started, healthy server on a free loopback port; stopped (SIGTERM, then SIGKILL) on exit.

    `database_url` None: the server starts its own embedded PostgreSQL in MODELGATE_DATA_DIR (give
    one in `env`)."""
    port = free_port()
    environment = {
        **os.environ,
        "MODELGATE_SECRET_KEYS": TEST_SECRET_KEYS,
        "MODELGATE_ALLOW_PRIVATE_UPSTREAMS": "true",
        "MODELGATE_FLUSH_INTERVAL": "0.2",
        "MODELGATE_WORKERS": "1",  # one process unless a test asks for more (the default is a core each)
        "PYTHONUNBUFFERED": "1",
    }
    environment.pop("DATABASE_URL", None)
    if database_url is not None:
        environment["DATABASE_URL"] = database_url
    environment.update(env or {})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "serve",
        "--port",
        str(port),
        *args,
        cwd=REPO,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    server = ServerProcess(process, port)
    server._readers = [
        asyncio.create_task(_read_lines(process.stdout, server.stdout)),
        asyncio.create_task(_read_lines(process.stderr, server.stderr)),
    ]
    try:
        await _until_healthy(server, startup_timeout)
        yield server
    finally:
        await server.stop()
