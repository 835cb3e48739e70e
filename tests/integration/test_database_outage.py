"""An unreachable database: SERVICE_UNAVAILABLE within the acquire timeout, then recovery."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from app.domain.auth import Role
from tests.conftest import make_settings, running_server
from tests.support.factories import make_tenant
from tests.support.graphql import GraphQLClient, error_codes
from tests.support.tcp_proxy import CuttableProxy

QUERY = "{ viewer { organization { name } } }"


async def test_outage_is_service_unavailable_and_the_server_recovers(
    database_url: str, http: aiohttp.ClientSession
) -> None:
    proxy = CuttableProxy(database_url)
    await proxy.start()
    settings = make_settings(proxy.dsn, db_acquire_timeout=1.0)
    async with running_server(settings) as live:
        tenant = await make_tenant(live.services, "Acme")
        client = GraphQLClient(http, live.url, tenant.keys[Role.VIEWER])
        stranger = client.with_key(tenant.keys[Role.ADMIN])  # not yet cached: needs the database
        assert (await client.data(QUERY))["viewer"]["organization"]["name"] == "Acme"

        await proxy.cut()
        started = time.monotonic()
        for who in (client, stranger):
            body = await who.post(QUERY)
            assert error_codes(body) == ["SERVICE_UNAVAILABLE"]
            assert body["errors"][0]["message"] == "the service is temporarily unavailable"
        assert time.monotonic() - started < 5
        async with http.get(f"{live.url}/readyz") as response:
            assert response.status == 503

        await proxy.start()
        deadline = time.monotonic() + 10
        while True:
            body = await stranger.post(QUERY)
            if "errors" not in body:
                break
            assert time.monotonic() < deadline, body
            await asyncio.sleep(0.2)
        assert body["data"]["viewer"]["organization"]["name"] == "Acme"
        async with http.get(f"{live.url}/readyz") as response:
            assert response.status == 200
    await proxy.cut()
