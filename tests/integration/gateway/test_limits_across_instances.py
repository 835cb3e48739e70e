"""A key's rate limit and an organization's stream cap hold in total across two app instances that
share one database, end to end over HTTP. (The monthly credit limit across instances:
tests/faults/test_two_instances.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from app.config import Settings
from app.domain.auth import Role
from app.services.limits import lease_size
from tests.conftest import LiveServer, running_server
from tests.fakes.openai_server import OpenAIFake
from tests.support.catalog import create_system_model
from tests.support.factories import Tenant
from tests.support.gateway import (
    CHAT,
    GRAPHQL_TRANSPORT_WS,
    WsSubscription,
    create_key,
    kinds,
    stream_events,
    stream_input,
    update_organization,
    usage_rows,
    user_says,
    ws_url,
)
from tests.support.graphql import GraphQLClient

HI = user_says("Hi")


@pytest.fixture
async def second(settings: Settings) -> AsyncIterator[LiveServer]:
    """Another instance on the same database."""
    async with running_server(settings) as live:
        yield live


@pytest.fixture
async def model(admin: GraphQLClient, fake_a: OpenAIFake) -> dict[str, Any]:
    return await create_system_model(admin, "alpha", modelUrl=f"{fake_a.url}/v1", creditMultiplier="2.5")


async def chat(
    instance: LiveServer, http: aiohttp.ClientSession, key: str, model: dict[str, Any]
) -> str | None:
    """One chat on `instance`; its user error code, None when answered."""
    payload = await GraphQLClient(http, instance.url, key).mutate(
        CHAT, {"messages": HI, "model": model["id"]}
    )
    errors = payload["userErrors"]
    return errors[0]["code"] if errors else None


@pytest.fixture
def one_minute(server: LiveServer, second: LiveServer) -> datetime:
    """Both instances' rate limiters in the same one-minute window, whenever the test runs."""
    now = datetime.now(UTC).replace(second=20, microsecond=0)
    server.services.rate_limiter.clock = lambda: now
    second.services.rate_limiter.clock = lambda: now
    return now


async def test_a_keys_rate_limit_holds_in_total_across_two_instances(
    server: LiveServer, second: LiveServer, http: aiohttp.ClientSession, org_admin: GraphQLClient,
    tenant: Tenant, model: dict[str, Any], fake_a: OpenAIFake, one_minute: datetime,
) -> None:  # fmt: skip
    key = await create_key(org_admin, tenant.organization_gid, rateLimitPerMinute=20)
    # 30 concurrent calls, half on each instance. Instances lease tokens in batches (two at a time
    # here); a token an instance leased and has not spent yet waits for its next call there.
    outcomes = await asyncio.gather(*(chat((server, second)[i % 2], http, key, model) for i in range(30)))
    assert 20 - 2 * (lease_size(20) - 1) <= outcomes.count(None) <= 20
    assert outcomes.count("RATE_LIMITED") == 30 - outcomes.count(None)
    # One more call on each instance spends what it may still hold: exactly the limit, in total.
    outcomes += [await chat(instance, http, key, model) for instance in (server, second)]
    assert outcomes.count(None) == 20
    assert len(fake_a.requests) == 20
    # Both instances go on refusing, streams too, for the rest of the window.
    for instance in (server, second):
        assert await chat(instance, http, key, model) == "RATE_LIMITED"
        events = await stream_events(ws_url(instance.url), key, stream_input(model=model["id"]))
        assert [(e["__typename"], e.get("code")) for e in events] == [("ChatStreamError", "RATE_LIMITED")]
    await second.services.flush()
    rows = await usage_rows(server.services, 36)
    assert sorted((r["status"], r["error_code"]) for r in rows) == sorted(
        [("SUCCESS", None)] * 20 + [("ERROR", "RATE_LIMITED")] * 16
    )


async def test_calls_one_at_a_time_spend_a_keys_whole_limit_across_two_instances(
    server: LiveServer, second: LiveServer, http: aiohttp.ClientSession, org_admin: GraphQLClient,
    tenant: Tenant, model: dict[str, Any], fake_a: OpenAIFake, one_minute: datetime,
) -> None:  # fmt: skip
    key = await create_key(org_admin, tenant.organization_gid, rateLimitPerMinute=6)
    outcomes = [await chat((server, second)[i % 2], http, key, model) for i in range(10)]
    assert outcomes == [None] * 6 + ["RATE_LIMITED"] * 4
    assert len(fake_a.requests) == 6


async def test_the_stream_cap_holds_across_two_instances(
    server: LiveServer, second: LiveServer, http: aiohttp.ClientSession, admin: GraphQLClient, tenant: Tenant
) -> None:
    await update_organization(admin, tenant.organization_gid, maxConcurrentStreams=1)
    slow = await create_system_model(
        admin, "echo-slow", provider="ECHO", modelUrl=None, providerSettings={"wordDelayMs": "100"}
    )
    key = tenant.keys[Role.DEVELOPER]
    long = stream_input(user_says("one two three four five six"), model=slow["id"])
    async with WsSubscription.open(http, server.url, key, long, GRAPHQL_TRANSPORT_WS) as first:
        assert (await first.next_event() or {}).get("__typename") == "ChatStreamStart"
        refused = await stream_events(ws_url(second.url), key, stream_input(model=slow["id"]))
        assert [(e["__typename"], e.get("code")) for e in refused] == [
            ("ChatStreamError", "TOO_MANY_STREAMS")
        ]
        assert kinds([e async for e in first.events()])[-1] == "ChatStreamEnd"
