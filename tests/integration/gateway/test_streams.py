"""chatStream end to end over graphql-transport-ws, legacy graphql-ws and GraphQL over SSE:
start, deltas, end; every failure switch of the fake ends the stream with a ChatStreamError within
the configured timeouts (never hangs); a stream that breaks after text was sent fails over with a
ChatStreamReset and the fallback's whole answer."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from app.config import Settings
from app.domain.auth import Role
from tests.conftest import LiveServer, make_settings
from tests.fakes.common import split_text
from tests.fakes.openai_server import FakeError, OpenAIFake, openai_fake_server
from tests.integration.gateway.conftest import REPLY_A, REPLY_B
from tests.support.catalog import create_system_model, create_user_model, uuid_of
from tests.support.factories import Tenant
from tests.support.gateway import (
    TRANSPORTS,
    Elapsed,
    credits,
    error_event,
    kinds,
    stream_input,
    stream_over,
    streamed_text,
    usage_rows,
)
from tests.support.graphql import GraphQLClient

TIMEOUT = 0.5  # connect, first byte and idle
# A failing stream ends within: two tries of connect + first-byte timeouts (one retry before the
# first byte), the pause before the retry, and a margin for the machinery.
BOUND = 2 * (TIMEOUT + TIMEOUT) + 0.1 + 1.0


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(
        database_url,
        provider_connect_timeout=TIMEOUT,
        provider_first_byte_timeout=TIMEOUT,
        provider_idle_timeout=TIMEOUT,
    )


@pytest.fixture
async def model(admin: GraphQLClient, fake_a: OpenAIFake) -> dict[str, Any]:
    return await create_system_model(admin, "alpha", modelUrl=f"{fake_a.url}/v1", creditMultiplier="2")


async def stream(
    transport: str,
    server: LiveServer,
    http: aiohttp.ClientSession,
    tenant: Tenant,
    within: float = 20,
    **fields: Any,
) -> list[dict[str, Any]]:
    """chatStream events; `fields` of ChatInput besides the messages."""
    key = tenant.keys[Role.DEVELOPER]
    return await stream_over(transport, http, server.url, key, stream_input(**fields), within=within)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_stream_starts_sends_deltas_and_ends_with_usage(
    transport: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant, model: dict[str, Any],
    fake_a: OpenAIFake,
) -> None:  # fmt: skip
    events = await stream(transport, server, http, tenant, model=model["id"], systemPrompt="Be terse.")
    pieces = split_text(REPLY_A, 4)
    assert kinds(events) == ["ChatStreamStart", *["ChatStreamDelta"] * len(pieces), "ChatStreamEnd"]
    start, *deltas, end = events
    assert start["model"] == start["servedBy"] == {"id": model["id"], "name": "alpha"}
    assert start["requestId"]
    assert [(d["text"], d["index"]) for d in deltas] == [(p, i) for i, p in enumerate(pieces)]
    assert end["finishReason"] == "STOP"
    assert end["warnings"] == []
    usage = end["usage"]
    assert (usage["inputTokens"], usage["outputTokens"]) == (12, len(pieces))  # as the provider reported
    assert usage["totalTokens"] == 12 + len(pieces)
    assert Decimal(usage["credits"]) == credits(12, len(pieces), "2")
    (request,) = fake_a.requests
    assert request.body["stream"] is True
    assert request.body["messages"][0] == {"role": "system", "content": "Be terse."}

    (row,) = await usage_rows(server.services, 1)
    assert (row["operation"], row["status"], row["request_id"]) == (
        "CHAT_STREAM",
        "SUCCESS",
        start["requestId"],
    )
    assert (row["input_tokens"], row["output_tokens"], row["credits"]) == (
        12,
        len(pieces),
        credits(12, 4, "2"),
    )
    assert row["time_to_first_token_ms"] is not None


async def test_each_stream_has_its_own_request_id(
    server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant, model: dict[str, Any]
) -> None:
    ids = {
        (await stream(TRANSPORTS[0], server, http, tenant, model=model["id"]))[0]["requestId"]
        for _ in range(3)
    }
    assert len(ids) == 3


# Each failure switch of the fake, with the events a stream without fallbacks then shows, whether its
# error is retryable (a client may try the call again), its code, and how many requests the upstream
# saw (the failure table in app/services/gateway/failures.py: one more try on the same model before
# any text, except after a timeout).
AFTER_ONE_DELTA = ["ChatStreamStart", "ChatStreamDelta", "ChatStreamError"]
FAILURES: dict[str, tuple[dict[str, Any], list[str], bool, str, int]] = {
    "disconnect-after-text": ({"disconnect_after": 2}, AFTER_ONE_DELTA, True, "PROVIDER_ERROR", 1),
    "malformed-frame": ({"malformed_after": 2}, AFTER_ONE_DELTA, True, "PROVIDER_ERROR", 1),
    "error-frame": ({"stream_error_after": 2}, AFTER_ONE_DELTA, True, "PROVIDER_ERROR", 1),
    "no-terminal": (
        {"omit_terminal": True},
        ["ChatStreamStart", *["ChatStreamDelta"] * 4, "ChatStreamError"],
        True,
        "PROVIDER_ERROR",
        1,
    ),
    "stall-after-text": ({"stall_after": 2}, AFTER_ONE_DELTA, True, "PROVIDER_ERROR", 1),
    "stall-before-text": ({"stall_after": 0}, ["ChatStreamError"], True, "PROVIDER_ERROR", 1),
    "first-byte-late": ({"first_byte_delay": 10 * TIMEOUT}, ["ChatStreamError"], True, "PROVIDER_ERROR", 1),
    "headers-late": ({"delay": 10 * TIMEOUT}, ["ChatStreamError"], True, "PROVIDER_ERROR", 1),
    "429": (
        {"error": FakeError.rate_limited(retry_after="0.1")},
        ["ChatStreamError"],
        True,
        "PROVIDER_ERROR",
        2,
    ),
    "500": ({"error": FakeError.server_error()}, ["ChatStreamError"], True, "PROVIDER_ERROR", 2),
    "503": ({"error": FakeError.overloaded()}, ["ChatStreamError"], True, "PROVIDER_ERROR", 2),
    "400": ({"error": FakeError.context_too_long()}, ["ChatStreamError"], False, "CONTEXT_TOO_LONG", 1),
}


async def no_open_streams(fake: OpenAIFake, within: float = 1.0) -> bool:
    """Whether the fake is writing no answer any more (within `within` seconds)."""
    for _ in range(int(within / 0.02)):
        if fake.open_streams == 0:
            return True
        await asyncio.sleep(0.02)
    return fake.open_streams == 0


@pytest.mark.parametrize("failure", list(FAILURES))
async def test_a_failing_provider_ends_the_stream_with_an_error_event_in_time(
    failure: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant, admin: GraphQLClient
) -> None:
    switches, expected, retryable, code, requests = FAILURES[failure]
    async with openai_fake_server(reply=REPLY_A, chunks=4, **switches) as fake:
        model = await create_system_model(admin, "failing", modelUrl=f"{fake.url}/v1")
        with Elapsed() as took:
            events = await stream(TRANSPORTS[0], server, http, tenant, model=model["id"], within=10)
        assert took.seconds < BOUND
        assert kinds(events) == expected
        error = error_event(events)
        assert error["code"] == code
        assert error["message"]
        assert error["retryable"] is retryable
        assert await no_open_streams(fake)  # nothing left running upstream
        assert len(fake.requests) == requests
    (row,) = await usage_rows(server.services, 1)
    assert (row["status"], row["error_code"]) == ("ERROR", code)


@pytest.mark.parametrize("transport", TRANSPORTS[1:])
@pytest.mark.parametrize("failure", ["disconnect-after-text", "first-byte-late"])
async def test_failures_end_streams_over_every_transport(
    failure: str, transport: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant,
    admin: GraphQLClient,
) -> None:  # fmt: skip
    switches, expected, *_ = FAILURES[failure]
    async with openai_fake_server(reply=REPLY_A, chunks=4, **switches) as fake:
        model = await create_system_model(admin, "failing", modelUrl=f"{fake.url}/v1")
        with Elapsed() as took:
            events = await stream(transport, server, http, tenant, model=model["id"], within=10)
    assert took.seconds < BOUND
    assert kinds(events) == expected


# ---- failing over after text was sent ----------------------------------------------------------------


@pytest.fixture
async def fallback_route(
    admin: GraphQLClient, org_admin: GraphQLClient, tenant: Tenant, fake_a: OpenAIFake, fake_b: OpenAIFake
) -> dict[str, Any]:
    alpha = await create_system_model(admin, "alpha", modelUrl=f"{fake_a.url}/v1", creditMultiplier="1")
    beta = await create_system_model(admin, "beta", modelUrl=f"{fake_b.url}/v1", creditMultiplier="3")
    primary = await create_user_model(
        org_admin,
        organizationId=tenant.organization_gid,
        scope="PROJECT",
        projectId=tenant.project_gid,
        name="primary",
        parentModelId=alpha["id"],
        isDefault=True,
        fallbacks=[{"modelId": beta["id"]}],
    )
    return {"primary": primary, "beta": beta}


MID_STREAM = {
    "disconnect": {"disconnect_after": 3},
    "stall": {"stall_after": 3},
    "error-frame": {"stream_error_after": 3},
}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("failure", list(MID_STREAM))
async def test_a_stream_broken_after_text_fails_over_with_a_reset(
    failure: str, transport: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant,
    fallback_route: dict[str, Any], fake_a: OpenAIFake, fake_b: OpenAIFake,
) -> None:  # fmt: skip
    for name, value in MID_STREAM[failure].items():
        setattr(fake_a, name, value)
    with Elapsed() as took:
        events = await stream(transport, server, http, tenant, projectId=tenant.project_gid, within=10)
    assert took.seconds < BOUND
    b_pieces = split_text(REPLY_B, 3)
    assert kinds(events) == [
        "ChatStreamStart",
        "ChatStreamDelta",
        "ChatStreamDelta",
        "ChatStreamReset",
        *["ChatStreamDelta"] * len(b_pieces),
        "ChatStreamEnd",
    ]
    start, reset, end = events[0], events[3], events[-1]
    assert start["servedBy"]["name"] == "primary"
    assert "".join(e["text"] for e in events[1:3]) == "".join(split_text(REPLY_A, 4)[:2])
    assert reset["servedBy"] == {"id": fallback_route["beta"]["id"], "name": "beta"}
    assert reset["reason"]
    assert [e["index"] for e in events[4:-1]] == list(range(len(b_pieces)))  # from 0 again
    assert streamed_text(events) == REPLY_B
    assert [w["code"] for w in end["warnings"]] == ["FALLBACK_USED"]
    assert len(fake_a.requests) == 1  # never retried once text was sent
    assert len(fake_b.requests) == 1

    (row,) = await usage_rows(server.services, 1)
    assert row["status"] == "SUCCESS"
    assert row["served_model_id"] == uuid_of(fallback_route["beta"]["id"])
    assert row["credits"] == credits(12, len(b_pieces), "3")
