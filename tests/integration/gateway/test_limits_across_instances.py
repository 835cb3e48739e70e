"""The monthly credit limit and a key's rate limit hold in total across two app instances that
share one database, end to end over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
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
    # Each call: 12 input + 4 output tokens at 2.5 credits per 1000 = 0.04 credits.
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


async def usage_written(instance: LiveServer, calls: int) -> None:
    """Waits for the instances' periodic flushes (every 0.2 s in tests) to have written the usage
    rows of `calls` calls."""
    for _ in range(100):
        if await instance.services.db.fetchval("SELECT count(*) FROM usage_records") == calls:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("usage was not written")


async def test_the_monthly_credit_limit_holds_in_total_across_two_instances(
    server: LiveServer, second: LiveServer, http: aiohttp.ClientSession, admin: GraphQLClient,
    tenant: Tenant, model: dict[str, Any], fake_a: OpenAIFake,
) -> None:  # fmt: skip
    await update_organization(admin, tenant.organization_gid, monthlyCreditLimit="0.1")
    key = tenant.keys[Role.DEVELOPER]
    outcomes = []
    for index in range(6):  # alternating, each call's usage written before the next one
        instance = (server, second)[index % 2]
        outcomes.append(await chat(instance, http, key, model))
        await usage_written(instance, index + 1)
    # 0.04 + 0.04 + 0.04: the third call started at 0.08 < 0.1; then both instances refuse.
    assert outcomes == [None, None, None, "QUOTA_EXCEEDED", "QUOTA_EXCEEDED", "QUOTA_EXCEEDED"]
    assert len(fake_a.requests) == 3
    for instance in (server, second):
        events = await stream_events(ws_url(instance.url), key, stream_input(model=model["id"]))
        assert kinds(events) == ["ChatStreamError"]
        assert events[0]["code"] == "QUOTA_EXCEEDED"
    await second.services.flush()
    rows = await usage_rows(server.services, 8)
    assert len(rows) == 8  # six chats and two streams
    spent = sum((r["credits"] for r in rows), Decimal(0))
    assert spent == Decimal("0.12")  # the overshoot: less than one call's credits
    assert sum(r["status"] == "SUCCESS" for r in rows) == 3


async def test_an_instance_that_never_called_refuses_once_the_other_spent_the_limit(
    server: LiveServer, second: LiveServer, http: aiohttp.ClientSession, admin: GraphQLClient,
    tenant: Tenant, model: dict[str, Any],
) -> None:  # fmt: skip
    await update_organization(admin, tenant.organization_gid, monthlyCreditLimit="0.05")
    key = tenant.keys[Role.DEVELOPER]
    assert [await chat(server, http, key, model) for _ in range(3)] == [None, None, "QUOTA_EXCEEDED"]
    await usage_written(server, 3)
    assert await chat(second, http, key, model) == "QUOTA_EXCEEDED"


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
