"""MODELGATE_WORKERS=2 against the real server: two processes on one port with one embedded
PostgreSQL, calls served by both, a rate limit that holds across them, /metrics that sums them,
SIGTERM draining both (streams end with their terminal event), and a crashed worker replaced."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest

from tests.support.embedded_postgres import embedded_data_dir, postmasters
from tests.support.gateway_process import demo_keys, echo_model
from tests.support.process import REPO, TEST_SECRET_KEYS, ServerProcess, server_process
from tests.support.stream_clients import Watched, all_stopped, chat_body, rest, rest_body, sse

TWO = {"MODELGATE_WORKERS": "2"}
RATE_LIMIT = 10  # per minute: leased one at a time (a tenth), so it holds exactly across workers
GRACE = 2.0
WORDS = " ".join(f"w{i}" for i in range(80))  # one every 0.25 s: 20 s, far past the grace


def workers(server: ServerProcess) -> list[psutil.Process]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    children = psutil.Process(server.process.pid).children()
    return [p for p in children if "spawn_main" in " ".join(p.cmdline())]


def listening(server: ServerProcess) -> list[int]:
    """The workers that said they listen, in order (/healthz answers once the first does)."""
    return [r["worker"] for r in server.log_records() if r.get("message") == "worker listening"]


def served_by(server: ServerProcess, path: str) -> Counter[int]:
    """How many requests to `path` each worker logged."""
    return Counter(r["worker"] for r in server.log_records() if r.get("path") == path and "status" in r)


async def embed(url: str, key: str) -> int:
    """One embedding on a connection of its own (so that the kernel picks a worker for it)."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{url}/v1/embeddings",
            json={"model": "Demo echo embeddings", "input": "hello"},
            headers={"Authorization": f"Bearer {key}"},
        ) as response,
    ):
        return response.status


async def scrape(url: str) -> dict[str, float]:
    """/metrics on a new connection (whichever worker takes it): its samples by name and labels."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as response:
        text = await response.text()
    samples = (line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    return {name: float(value) for name, value in samples}


async def within_one_minute_window() -> None:
    """Waits for the next minute when this one ends soon: the rate limit counts per UTC minute."""
    second = datetime.now(UTC).second
    if second > 45:
        await asyncio.sleep(60.5 - second)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads processes from /proc")
async def test_two_workers_share_the_port_one_embedded_postgresql_the_rate_limit_and_metrics() -> None:
    with embedded_data_dir() as data_dir:
        pgdata = data_dir / "postgres"
        env = {**TWO, "MODELGATE_DATA_DIR": str(data_dir), "MODELGATE_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT)}
        async with server_process(None, env=env) as server:
            await until(lambda: len(listening(server)) == 2)
            assert len(workers(server)) == 2
            assert len(postmasters(pgdata)) == 1
            # Only the supervisor uses the embedded PostgreSQL's handle: it outlives the workers.
            assert json.loads((pgdata / ".handle_pids.json").read_text()) == [server.process.pid]
            key = demo_keys(server).project

            await within_one_minute_window()
            statuses = await asyncio.gather(*(embed(server.url, key) for _ in range(3 * RATE_LIMIT)))
            assert Counter(statuses) == {200: RATE_LIMIT, 429: 2 * RATE_LIMIT}
            assert set(served_by(server, "/v1/embeddings")) == {0, 1}  # calls landed on both

            # Every scrape, whichever worker answers it, counts the calls of both.
            route = 'modelgate_http_requests_total{route="/v1/embeddings",status="%d"}'
            for _ in range(4):
                samples = await scrape(server.url)
                assert (samples[route % 200], samples[route % 429]) == (RATE_LIMIT, 2 * RATE_LIMIT)

            assert await server.stop() == 0
        assert postmasters(pgdata) == []  # stopped after the last worker
    migrations = [r for r in server.log_records() if r.get("message") == "applied migration"]
    assert migrations
    assert all("worker" not in r for r in migrations)  # run once, by the supervisor


async def test_sigterm_drains_both_workers_and_ends_their_streams_with_the_terminal_event(
    database_url: str, tmp_path: Path
) -> None:
    env = {**TWO, "MODELGATE_DATA_DIR": str(tmp_path), "MODELGATE_DRAIN_GRACE": str(GRACE)}
    async with server_process(database_url, env=env) as server, aiohttp.ClientSession() as session:
        await until(lambda: len(listening(server)) == 2)
        key = demo_keys(server).project
        echo = await echo_model(session, server, "slow-echo", word_delay_ms=250)
        # Each stream on a connection of its own, spread by the kernel: 16 REST streams (all on one
        # worker once in 30,000 runs) and 4 GraphQL SSE ones.
        body = rest_body(echo, WORDS)
        streams = [rest(session, server.url, key, body, name=f"rest {i}") for i in range(16)]
        subscription = chat_body(WORDS, model=echo)
        streams += [sse(session, server.url, key, subscription, name=f"sse {i}") for i in range(4)]
        async with all_stopped(*streams):
            await asyncio.wait_for(asyncio.gather(*(s.first_text.wait() for s in streams)), 15)
            signalled = time.monotonic()
            server.signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            for _ in range(4):  # both workers refuse new work during the drain
                async with aiohttp.ClientSession() as fresh, fresh.get(f"{server.url}/readyz") as response:
                    assert response.status == 503
            for stream in streams:
                await stream.wait(GRACE + 2)
            code = await server.wait(within=GRACE + 4)
            exited = time.monotonic() - signalled

    for stream in streams:
        assert_ended_by_shutdown(stream)
        assert stream.ended_at is not None
        assert GRACE - 0.1 < stream.ended_at - signalled < GRACE + 1.0, (stream.name, stream.ended_at)
    assert set(served_by(server, "/v1/chat/completions")) == {0, 1}
    assert code == 0
    assert exited < GRACE + 2.5, exited
    assert not [r for r in server.log_records() if r.get("level") == "ERROR"]


def assert_ended_by_shutdown(stream: Watched) -> None:
    if stream.name.startswith("rest"):
        assert stream.last["error"]["code"] == "service_unavailable", (stream.name, stream.frames[-3:])
        assert stream.end == "[DONE]", (stream.name, stream.end)
    else:
        assert stream.last["__typename"] == "ChatStreamError", (stream.name, stream.frames[-3:])
        assert stream.last["code"] == "SERVICE_UNAVAILABLE"
        assert stream.end == "complete", (stream.name, stream.end)


@pytest.mark.slow
async def test_a_crashed_worker_is_replaced_and_workers_outlive_no_supervisor(
    database_url: str, tmp_path: Path
) -> None:
    env = {**TWO, "MODELGATE_DATA_DIR": str(tmp_path)}
    async with server_process(database_url, env=env) as server:
        await until(lambda: len(listening(server)) == 2)
        key = demo_keys(server).project
        crashed, survivor = workers(server)
        crashed.kill()
        await until(lambda: len(listening(server)) == 3)  # its replacement
        assert len(workers(server)) == 2
        assert survivor in workers(server)
        restarts = [r for r in server.log_records() if r.get("message") == "worker exited: starting another"]
        assert [(r["pid"], r["exitCode"]) for r in restarts] == [(crashed.pid, -signal.SIGKILL)]
        # Both serve: calls keep succeeding, on both workers.
        before = len(server.stderr)
        statuses = await asyncio.gather(*(embed(server.url, key) for _ in range(20)))
        assert set(statuses) == {200}
        await until(lambda: len(served_by(server, "/v1/embeddings")) == 2)
        assert len(server.stderr) > before

        # A supervisor killed outright: its workers notice, drain and exit by themselves.
        remaining = workers(server)
        server.process.kill()
        await server.wait(10)
        _, alive = psutil.wait_procs(remaining, timeout=10)
        assert alive == []


@pytest.mark.slow
async def test_a_second_server_on_a_taken_port_is_refused_not_joined(
    database_url: str, tmp_path: Path
) -> None:
    """SO_REUSEPORT would let a second server's workers share the first one's port (and traffic)."""
    env = {**TWO, "MODELGATE_DATA_DIR": str(tmp_path)}
    async with server_process(database_url, env=env) as first:
        second = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app", "serve", "--port", str(first.port),
            cwd=REPO, env={**os.environ, **env, "DATABASE_URL": database_url,
                           "MODELGATE_SECRET_KEYS": TEST_SECRET_KEYS},
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            _, stderr = await asyncio.wait_for(second.communicate(), 60)
        finally:
            if second.returncode is None:  # it joined the port instead
                second.terminate()
                await second.wait()
        assert second.returncode == 1
        assert f"modelgate: cannot listen on 127.0.0.1:{first.port}" in stderr.decode()
        assert len(workers(first)) == 2


async def until(check: Any, within: float = 20.0) -> Any:
    """The first truthy value of `check()`, polled; fails after `within` seconds."""
    deadline = time.monotonic() + within
    while not (value := check()):
        assert time.monotonic() < deadline, "not seen in time"
        await asyncio.sleep(0.1)
    return value
