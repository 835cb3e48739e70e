"""A Modelgate server, its database and the fake upstreams for a scenario run on its own (without
LiteLLM or the rest of `make bench`): `python -m bench.stream_cost`, `python -m bench.stream_scale`."""

from __future__ import annotations

import base64
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from app.config import Settings
from app.embedded_postgres import EmbeddedPostgres
from bench.processes import BENCH_DIR, Processes, free_port, python, wait_for_port
from bench.setup import seed
from bench.upstream import command as upstream_command


@dataclass(frozen=True, slots=True)
class Standalone:
    modelgate: str
    modelgate_pid: int
    upstream: str
    upstream_pid: int
    slow_upstream: str
    slow_upstream_pid: int
    key: str
    fast_model: str  # global ids
    slow_model: str


@asynccontextmanager
async def standalone(
    slow_interval: float = 0.1, slow_chunks: int = 20, env: dict[str, str] | None = None
) -> AsyncIterator[Standalone]:
    """Everything runs as processes of its own; their logs land in bench/results/logs. The slow
    upstream writes `slow_chunks` chunks, one per `slow_interval` seconds."""
    work = Path(tempfile.mkdtemp(prefix="modelgate-bench-"))
    (work / "logs").mkdir()
    processes = Processes(work / "logs")
    embedded = EmbeddedPostgres(work / "postgres")
    ports = {name: free_port() for name in ("upstream", "slow", "modelgate")}
    secret_keys = f"bench:{base64.b64encode(secrets.token_bytes(32)).decode()}"
    try:
        fast = processes.start("upstream", upstream_command(ports["upstream"]))
        slow = processes.start(
            "slow", upstream_command(ports["slow"], frame_interval=slow_interval, chunks=slow_chunks)
        )
        settings = Settings(
            database_url=embedded.dsn, secret_keys=secret_keys, allow_private_upstreams=True, data_dir=work
        )
        for name in ("upstream", "slow"):
            await wait_for_port(ports[name])
        seeded = await seed(
            settings, f"http://127.0.0.1:{ports['upstream']}", f"http://127.0.0.1:{ports['slow']}"
        )
        server_env = {
            "DATABASE_URL": embedded.dsn,
            "MODELGATE_SECRET_KEYS": secret_keys,
            "MODELGATE_ALLOW_PRIVATE_UPSTREAMS": "true",
            "MODELGATE_RATE_LIMIT_PER_MINUTE": "100000000",
            "MODELGATE_MAX_SUBSCRIPTIONS_PER_CONNECTION": "100",
            "MODELGATE_WORKERS": "1",  # the figures are of one server process (its pid)
            **(env or {}),
        }
        modelgate = processes.start(
            "modelgate", [python(), "-m", "app", "serve", "--port", str(ports["modelgate"])], server_env
        )
        await wait_for_port(ports["modelgate"])
        yield Standalone(
            modelgate=f"http://127.0.0.1:{ports['modelgate']}",
            modelgate_pid=modelgate.pid,
            upstream=f"http://127.0.0.1:{ports['upstream']}",
            upstream_pid=fast.pid,
            slow_upstream=f"http://127.0.0.1:{ports['slow']}",
            slow_upstream_pid=slow.pid,
            key=seeded.key,
            fast_model=seeded.fast_model,
            slow_model=seeded.slow_model,
        )
    finally:
        processes.stop_all()
        embedded.stop()
        logs = BENCH_DIR / "results" / "logs"
        shutil.rmtree(logs, ignore_errors=True)
        shutil.copytree(work / "logs", logs)
        shutil.rmtree(work, ignore_errors=True)
