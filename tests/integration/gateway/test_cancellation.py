"""Cancelling a chatStream (the client completes the subscription, or goes away) closes the
upstream request at once, frees the organization's stream slot, and still meters the call as
CANCELLED with what was streamed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from app.domain.auth import Role
from app.domain.tokens import estimate_tokens
from tests.conftest import LiveServer
from tests.fakes.common import split_text
from tests.fakes.openai_server import OpenAIFake, openai_fake_server
from tests.integration.gateway.conftest import REPLY_A
from tests.support.catalog import create_system_model, uuid_of
from tests.support.factories import Tenant
from tests.support.gateway import (
    GRAPHQL_TRANSPORT_WS,
    LEGACY_GRAPHQL_WS,
    Elapsed,
    WsSubscription,
    credits,
    kinds,
    sse_events,
    stream_events,
    stream_input,
    update_organization,
    usage_rows,
    user_says,
    ws_url,
)
from tests.support.graphql import GraphQLClient

FIRST_PIECE = split_text(REPLY_A, 4)[0]
PROMPT = user_says("Tell me about Paris.")


@pytest.fixture
async def stalling() -> AsyncIterator[OpenAIFake]:
    """Sends its first piece, then nothing for 30 s (far below the server's idle timeout)."""
    async with openai_fake_server(reply=REPLY_A, chunks=4, stall_after=2, stall_seconds=30) as fake:
        yield fake


@pytest.fixture
async def model(admin: GraphQLClient, stalling: OpenAIFake, tenant: Tenant) -> dict[str, Any]:
    await update_organization(admin, tenant.organization_gid, maxConcurrentStreams=1)
    return await create_system_model(admin, "slow", modelUrl=f"{stalling.url}/v1", creditMultiplier="2")


async def streaming_upstreams_within(fake: OpenAIFake, seconds: float) -> int:
    """The answers the fake is still writing once none is, or after `seconds`."""
    for _ in range(int(seconds / 0.01)):
        if fake.open_streams == 0:
            break
        await asyncio.sleep(0.01)
    return fake.open_streams


# Each way a client stops listening after the first delta; returns the events it saw. `cancelled`
# is awaited at the moment the client stops, and must see the upstream closed within a second.
Canceller = Callable[
    [aiohttp.ClientSession, str, str, dict[str, Any], Callable[[], Awaitable[None]]],
    Awaitable[list[dict[str, Any]]],
]


async def complete_over(
    protocol: str,
    session: aiohttp.ClientSession,
    url: str,
    key: str,
    variables: dict[str, Any],
    cancelled: Callable[[], Awaitable[None]],
    *,
    disconnect: bool,
) -> list[dict[str, Any]]:
    async with WsSubscription.open(session, url, key, variables, protocol) as subscription:
        events = [await subscription.next_event(), await subscription.next_event()]
        if not disconnect:
            await subscription.complete()
            await cancelled()  # the socket is still open: the complete alone closed the upstream
            return [e for e in events if e]
    await cancelled()
    return [e for e in events if e]


async def gql_break(
    session: aiohttp.ClientSession,
    url: str,
    key: str,
    variables: dict[str, Any],
    cancelled: Callable[[], Awaitable[None]],
) -> list[dict[str, Any]]:
    events = await stream_events(ws_url(url), key, variables, stop_after=2)
    await cancelled()
    return events


async def sse_drop(
    session: aiohttp.ClientSession,
    url: str,
    key: str,
    variables: dict[str, Any],
    cancelled: Callable[[], Awaitable[None]],
) -> list[dict[str, Any]]:
    events = await sse_events(session, url, key, variables, stop_after=2)
    await cancelled()
    return events


def over(protocol: str, *, disconnect: bool) -> Canceller:
    async def cancel(
        session: aiohttp.ClientSession,
        url: str,
        key: str,
        variables: dict[str, Any],
        cancelled: Callable[[], Awaitable[None]],
    ) -> list[dict[str, Any]]:
        return await complete_over(protocol, session, url, key, variables, cancelled, disconnect=disconnect)

    return cancel


CANCELLERS: dict[str, Canceller] = {
    "complete-graphql-transport-ws": over(GRAPHQL_TRANSPORT_WS, disconnect=False),
    "stop-legacy-graphql-ws": over(LEGACY_GRAPHQL_WS, disconnect=False),
    "disconnect-graphql-transport-ws": over(GRAPHQL_TRANSPORT_WS, disconnect=True),
    "disconnect-legacy-graphql-ws": over(LEGACY_GRAPHQL_WS, disconnect=True),
    "gql-client-break": gql_break,
    "sse-disconnect": sse_drop,
}


@pytest.mark.parametrize("how", list(CANCELLERS))
async def test_cancelling_a_stream_closes_the_upstream_at_once_and_meters_it(
    how: str, server: LiveServer, http: aiohttp.ClientSession, admin: GraphQLClient, tenant: Tenant,
    model: dict[str, Any], stalling: OpenAIFake,
) -> None:  # fmt: skip
    closed_after: list[float] = []

    async def cancelled() -> None:
        with Elapsed() as took:
            assert await streaming_upstreams_within(stalling, 1.0) == 0, "the upstream request is still open"
        closed_after.append(took.seconds)

    key = tenant.keys[Role.DEVELOPER]
    events = await CANCELLERS[how](http, server.url, key, stream_input(PROMPT, model=model["id"]), cancelled)
    assert kinds(events) == ["ChatStreamStart", "ChatStreamDelta"]
    assert events[1]["text"] == FIRST_PIECE
    assert len(stalling.requests) == 1
    (closed_within,) = closed_after
    assert closed_within < 1.0

    # Metered as CANCELLED, with the streamed output counted.
    (row,) = await usage_rows(server.services, 1)
    assert (row["operation"], row["status"], row["error_code"]) == ("CHAT_STREAM", "CANCELLED", None)
    assert row["served_model_id"] == uuid_of(model["id"])
    assert row["output_tokens"] == estimate_tokens(FIRST_PIECE)
    assert row["input_tokens"] > 0
    assert row["credits"] == credits(row["input_tokens"], row["output_tokens"], "2")

    # The organization's only stream slot is free again.
    echo = await create_system_model(admin, "echo", provider="ECHO", modelUrl=None)
    after = await stream_events(ws_url(server.url), key, stream_input(model=echo["id"]))
    assert kinds(after)[-1] == "ChatStreamEnd"


async def test_the_upstream_stays_open_while_the_client_listens(
    server: LiveServer,
    http: aiohttp.ClientSession,
    tenant: Tenant,
    model: dict[str, Any],
    stalling: OpenAIFake,
) -> None:
    """The control for the tests above: their measure sees a stream that is still open."""
    variables = stream_input(PROMPT, model=model["id"])
    key = tenant.keys[Role.DEVELOPER]
    async with WsSubscription.open(http, server.url, key, variables, GRAPHQL_TRANSPORT_WS) as subscription:
        assert [(await subscription.next_event() or {}).get("__typename") for _ in range(2)] == [
            "ChatStreamStart",
            "ChatStreamDelta",
        ]
        assert await streaming_upstreams_within(stalling, 0.5) == 1
        assert await usage_rows(server.services) == []  # not metered while it runs
        await subscription.complete()
        assert await streaming_upstreams_within(stalling, 1.0) == 0
