"""The operational endpoints: liveness, readiness, metrics, and the request id header."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from app.migrations import migrate
from tests.conftest import LiveServer, make_settings, running_server
from tests.support.postgres import create_database, drop_database, with_database


async def test_healthz_and_readyz(server: LiveServer, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{server.url}/healthz") as response:
        assert response.status == 200
        assert response.headers["X-Request-Id"]
    async with http.get(f"{server.url}/readyz") as response:
        assert response.status == 200
        assert (await response.json())["status"] == "ready"


async def test_readyz_is_503_until_migrations_are_applied(
    postgres_admin_dsn: str, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    name = await create_database(postgres_admin_dsn)
    dsn = with_database(postgres_admin_dsn, name)
    try:
        # A database with the migrations table but nothing applied yet.
        await migrate(dsn, directory=tmp_path)
        async with running_server(make_settings(dsn)) as live:
            async with http.get(f"{live.url}/readyz") as response:
                assert response.status == 503
                assert (await response.json())["pendingMigrations"]
            await migrate(dsn)
            async with http.get(f"{live.url}/readyz") as response:
                assert response.status == 200
    finally:
        await drop_database(postgres_admin_dsn, name)


async def test_metrics_exposes_request_counters(server: LiveServer, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{server.url}/healthz"):
        pass
    async with http.get(f"{server.url}/metrics") as response:
        text = await response.text()
    assert response.status == 200
    assert "modelgate_http_requests_total" in text


async def test_a_client_request_id_is_kept_and_a_bad_one_replaced(
    server: LiveServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{server.url}/healthz", headers={"X-Request-Id": "abc-123"}) as response:
        assert response.headers["X-Request-Id"] == "abc-123"
    async with http.get(f"{server.url}/healthz", headers={"X-Request-Id": "bad id\twith spaces"}) as response:
        assert response.headers["X-Request-Id"] != "bad id\twith spaces"
