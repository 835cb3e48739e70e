"""Shutting down: new calls are refused, running streams end with an error event when the grace
ends, usage is kept (the whole sequence against the real process: tests/faults/test_drain.py)."""

from __future__ import annotations

import asyncio

from app.domain.auth import Role
from app.domain.calls import ChatMessage, TextDelta
from app.domain.enums import ChatRole
from app.domain.gateway import CallOperation, GatewayErrorCode, ModelRef, StreamError, StreamStart
from app.domain.ids import decode_any
from app.services.gateway.requests import CallRequest
from tests.conftest import LiveServer
from tests.fakes.openai_server import openai_fake_server
from tests.support.catalog import create_system_model
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient


async def test_draining_refuses_new_calls_and_ends_open_streams_with_an_error(
    server: LiveServer, gql: GraphQLClient, admin_key: str, tenant: Tenant
) -> None:
    async with openai_fake_server(chunks=4, stall_after=2, stall_seconds=30) as upstream:
        model = await create_system_model(gql.with_key(admin_key), "stalling", modelUrl=f"{upstream.url}/v1")
        services = server.services
        principal = await services.auth.from_http({"X-API-Key": tenant.keys[Role.DEVELOPER]}, {})
        assert principal is not None
        decoded = decode_any(model["id"])
        assert decoded is not None
        request = CallRequest(
            operation=CallOperation.CHAT_STREAM,
            messages=(ChatMessage(ChatRole.USER, "hi"),),
            model=ModelRef(id=decoded[1]),
        )
        events = []
        text_arrived = asyncio.Event()

        async def consume() -> None:
            async for event in services.gateway.chat_stream(principal, request, "drain-test"):
                events.append(event)
                if isinstance(event, TextDelta):
                    text_arrived.set()

        consumer = asyncio.create_task(consume())
        await asyncio.wait_for(text_arrived.wait(), 5)

        services.drain.grace = 0.2
        services.drain.begin()
        refused = [e async for e in services.gateway.chat_stream(principal, request, "late")]
        assert isinstance(refused[-1], StreamError)
        assert refused[-1].error.code is GatewayErrorCode.SERVICE_UNAVAILABLE

        # The stream is stalled upstream: the end of the grace ends it, not the upstream.
        await asyncio.wait_for(services.drain.drain(), 1)
        await asyncio.wait_for(consumer, 1)
        assert isinstance(events[0], StreamStart)
        assert isinstance(events[-1], StreamError)
        assert events[-1].error.code is GatewayErrorCode.SERVICE_UNAVAILABLE
        await upstream.wait_for_no_connections()
