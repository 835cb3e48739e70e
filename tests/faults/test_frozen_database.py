"""A frozen PostgreSQL (its processes stopped with SIGSTOP, sockets open): warm calls are served,
cold ones fail fast with SERVICE_UNAVAILABLE, /readyz answers 503 within 2 s, and after the thaw
everything recovers without a restart, with exactly one usage row per call made meanwhile.

The real server runs as a subprocess against a PostgreSQL of this test's own (the session's is
shared by every test and must not be frozen)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest

from tests.support.frozen_postgres import FreezablePostgres, freezable_postgres
from tests.support.process import ServerProcess, server_process

# Short database deadlines keep the test quick; the bounds asserted follow from them.
QUERY_TIMEOUT = 1.5
ACQUIRE_TIMEOUT = 1.5
COLD_CALL_BOUND = QUERY_TIMEOUT + ACQUIRE_TIMEOUT + 1.0
# A warm call costs the demo model's 40 ms per word; one that waited for the database would take
# at least the query timeout.
WARM_CALL_BOUND = 1.0
READY_BOUND = 2.0
# Long enough for model health (re-read every second) and the bookkeeping flushes (every 0.2 s) to
# try the database, time out and try again, at most.
FROZEN_FOR = 10.0

GENERATE = """mutation($input: GenerateInput!) {
  generate(input: $input) { text requestId userErrors { code message } } }"""
AVAILABLE_MODELS = "{ availableModels { id name } }"


@pytest.fixture
def postgres() -> Iterator[FreezablePostgres]:
    with freezable_postgres() as postgres:
        yield postgres


@pytest.fixture
async def server(postgres: FreezablePostgres, tmp_path: Path) -> AsyncIterator[ServerProcess]:
    env = {
        "MODELGATE_DATA_DIR": str(tmp_path),  # where the server writes the demo keys
        "MODELGATE_DB_QUERY_TIMEOUT": str(QUERY_TIMEOUT),
        "MODELGATE_DB_ACQUIRE_TIMEOUT": str(ACQUIRE_TIMEOUT),
    }
    async with server_process(postgres.dsn, env=env) as server:
        yield server


class Caller:
    def __init__(self, session: aiohttp.ClientSession, server: ServerProcess, key: str) -> None:
        self.session = session
        self.url = server.url
        self.key = key
        self.request_ids: list[str] = []

    async def generate(self, model_id: str | None = None) -> tuple[dict[str, Any], float]:
        """The response body of one generate call and how long it took (bounded: never hangs)."""
        request_id = f"frozen-db-{uuid.uuid4().hex[:12]}"
        self.request_ids.append(request_id)
        variables = {"input": {"prompt": "hello there", **({"model": model_id} if model_id else {})}}
        started = time.monotonic()

        async def post() -> dict[str, Any]:
            async with self.session.post(
                f"{self.url}/graphql",
                json={"query": GENERATE, "variables": variables},
                headers={"X-API-Key": self.key, "X-Request-Id": request_id},
            ) as response:
                body: dict[str, Any] = await response.json()
                return body

        body = await asyncio.wait_for(post(), 10)
        return body, time.monotonic() - started

    async def ready(self) -> tuple[int, float]:
        started = time.monotonic()

        async def get() -> int:
            async with self.session.get(f"{self.url}/readyz") as response:
                return response.status

        status = await asyncio.wait_for(get(), 10)
        return status, time.monotonic() - started


async def model_id(session: aiohttp.ClientSession, server: ServerProcess, key: str, name: str) -> str:
    async with session.post(
        f"{server.url}/graphql", json={"query": AVAILABLE_MODELS}, headers={"X-API-Key": key}
    ) as response:
        models = (await response.json())["data"]["availableModels"]
    (found,) = [m["id"] for m in models if m["name"] == name]
    return str(found)


def served(body: dict[str, Any]) -> bool:
    return "errors" not in body and body["data"]["generate"]["text"] == "Echo: hello there"


def error_codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


async def usage_rows_by_request(dsn: str, request_ids: list[str]) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT request_id, count(*) AS n FROM usage_records WHERE request_id = ANY($1) GROUP BY 1",
            request_ids,
        )
    finally:
        await conn.close()
    return {r["request_id"]: r["n"] for r in rows}


async def within_one_minute_window(seconds: float) -> None:
    """Waits, if need be, until the next `seconds` all fall in one UTC minute."""
    into_minute = time.time() % 60
    if into_minute + seconds > 59:
        await asyncio.sleep(60 - into_minute + 0.2)


async def eventually(check: Any, within: float) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.2)


async def test_a_frozen_database_serves_warm_calls_fails_cold_ones_fast_and_recovers(
    postgres: FreezablePostgres, server: ServerProcess, tmp_path: Path
) -> None:
    keys = orjson.loads((tmp_path / "demo-keys.json").read_bytes())
    async with aiohttp.ClientSession() as session:
        caller = Caller(session, server, keys["project"])  # calls the project's default ECHO model
        cold_model = await model_id(session, server, keys["project"], "Echo (demo)")
        # Rate-limit tokens are leased per minute: a new minute while frozen would make the first
        # calls wait for a lease attempt to time out (bounded, but not what is measured here).
        await within_one_minute_window(FROZEN_FOR + 5)
        body, _ = await caller.generate()  # warms the caches, the rate-limit lease and health
        assert served(body), body
        warm_before = list(caller.request_ids)

        with postgres.frozen():
            frozen_at = time.monotonic()
            warm_ids_start = len(caller.request_ids)
            while time.monotonic() - frozen_at < FROZEN_FOR - COLD_CALL_BOUND - READY_BOUND:
                results = await asyncio.gather(*(caller.generate() for _ in range(4)))
                for body, took in results:
                    assert served(body), body
                    assert took < WARM_CALL_BOUND, (
                        f"a warm call took {took:.2f} s while the database was frozen"
                    )
                await asyncio.sleep(0.3)
            warm_while_frozen = caller.request_ids[warm_ids_start:]

            body, took = await caller.generate(cold_model)
            cold_request = caller.request_ids[-1]
            assert error_codes(body) == ["SERVICE_UNAVAILABLE"], body
            assert took < COLD_CALL_BOUND, f"a cold call took {took:.2f} s to fail"

            status, took = await caller.ready()
            assert status == 503
            assert took < READY_BOUND, f"/readyz took {took:.2f} s"

            body, took = await caller.generate()  # still served after the cold call gave up
            assert served(body), body
            assert took < WARM_CALL_BOUND
            warm_while_frozen.append(caller.request_ids[-1])

        async def ready_again() -> bool:
            return (await caller.ready())[0] == 200

        assert await eventually(ready_again, within=10), "/readyz did not recover after the thaw"
        body, _ = await caller.generate(cold_model)
        assert served(body), body  # the cold model loads now: no restart needed

        # Every call served while frozen is metered exactly once; the refused one not at all.
        wanted = warm_before + warm_while_frozen

        async def all_written() -> dict[str, int] | None:
            rows = await usage_rows_by_request(postgres.dsn, [*wanted, cold_request])
            return rows if set(rows) >= set(wanted) else None

        rows = await eventually(all_written, within=10)
        assert rows is not None, "usage rows of calls made while frozen were lost"
        assert rows == dict.fromkeys(wanted, 1)
    # An outage is logged as warnings (what could not be done, and that it will be retried).
    assert not [r for r in server.log_records() if r.get("level") == "ERROR"]
