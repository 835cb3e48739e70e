"""The relay across process deaths (real server subprocesses on one database): a delivery claimed by
an instance killed (SIGKILL) before its send completed is delivered by the next instance once the
claim expires; SIGTERM stops a relay whose receiver hangs, within the relay's grace, and the
delivery is taken again later."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import aiohttp
import pytest

from app.domain.alert_events import api_key_revoked
from app.services.container import Services
from tests.conftest import make_settings, running_server
from tests.support.alert_receivers import WebhookReceiver, eventually, webhook_receiver
from tests.support.factories import Tenant, make_tenant
from tests.support.graphql import GraphQLClient
from tests.support.process import server_process

SECRET = "whsec_restart_0123456789abcdefghij"
RELAY_ENV = {
    "MODELGATE_ALLOW_PRIVATE_WEBHOOKS": "true",
    "MODELGATE_ALERT_POLL_INTERVAL": "0.05",
    "MODELGATE_ALERT_CLAIM_TIMEOUT": "2",
}
CREATE = """mutation($input: WebhookCreateInput!) { webhookCreate(input: $input) { userErrors { code } } }"""


@pytest.fixture
async def setup(database_url: str) -> AsyncIterator[Services]:
    """The test's own view of the database: an in-process server whose relay never comes round."""
    settings = make_settings(database_url, allow_private_webhooks=True, alert_poll_interval=3600)
    async with running_server(settings) as live:
        yield live.services


async def subscribe(
    services: Services, receiver: WebhookReceiver, http: aiohttp.ClientSession, url: str
) -> Tenant:
    tenant = await make_tenant(services, "Acme")
    payload = await GraphQLClient(http, url, tenant.admin_key).mutate(
        CREATE, {"organizationId": tenant.organization_gid, "url": receiver.url, "secret": SECRET}
    )
    assert payload["userErrors"] == []
    return tenant


async def revoked(services: Services, tenant: Tenant) -> UUID:
    event_id = await services.health.outbox.insert(
        api_key_revoked(
            organization_id=tenant.organization.id,
            key_id=UUID(int=7),
            key_name="ci",
            prefix="mg_ci",
            revoked_at=datetime.now(UTC),
        )
    )
    assert event_id is not None
    return event_id


async def delivery(services: Services) -> dict[str, Any]:
    row = await services.db.fetchrow("SELECT * FROM notification_deliveries")
    assert row is not None
    return dict(row)


async def test_a_delivery_claimed_by_a_killed_instance_is_delivered_after_restart(
    database_url: str, setup: Services, http: aiohttp.ClientSession
) -> None:
    async with webhook_receiver(SECRET) as receiver:
        receiver.hang = asyncio.Event()  # the first instance's send never completes
        async with server_process(database_url, env=RELAY_ENV) as first:
            tenant = await subscribe(setup, receiver, http, first.url)
            event_id = await revoked(setup, tenant)
            await eventually(lambda: len(receiver.received) == 1, what="the first try")
            first.process.kill()
            await first.wait(10)
        claimed = await delivery(setup)
        assert (claimed["state"], claimed["attempts"], claimed["sent_at"]) == ("PENDING", 1, None)
        assert claimed["claimed_until"] is not None

        receiver.hang.set()  # the killed instance's request lets go (else cleanup waits 60 s for it)
        receiver.hang = None  # answered at once from now on
        async with server_process(database_url, env=RELAY_ENV):

            async def sent() -> bool:
                return (await delivery(setup))["state"] == "SENT"

            await eventually(sent, within=20, what="the delivery after the restart")
        assert len(receiver.received) == 2
        assert {h.body["id"] for h in receiver.received} == {str(event_id)}
        assert all(h.signature_valid for h in receiver.received)
        assert (await delivery(setup))["attempts"] == 2


async def test_sigterm_stops_a_relay_whose_receiver_hangs(
    database_url: str, setup: Services, http: aiohttp.ClientSession
) -> None:
    async with webhook_receiver(SECRET) as receiver:
        receiver.hang = asyncio.Event()
        async with server_process(database_url, env=RELAY_ENV) as instance:
            tenant = await subscribe(setup, receiver, http, instance.url)
            await revoked(setup, tenant)
            await eventually(lambda: len(receiver.received) == 1, what="the first try")
            started = asyncio.get_running_loop().time()
            instance.signal(signal.SIGTERM)
            assert await instance.wait(30) == 0
            # The drain has nothing to wait for; the relay's grace (5 s) bounds the rest.
            assert asyncio.get_running_loop().time() - started < 15
        left = await delivery(setup)
        assert (left["state"], left["attempts"]) == ("PENDING", 1)
