"""A stream cut by the client closes the upstream at once and is metered as CANCELLED, on the test
server (which cancels handlers of lost connections) and on a server run like `python -m app serve`
(which does not); JWT callers stream too."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from openai import APITimeoutError, AsyncOpenAI

from app.config import Settings
from app.domain.auth import Role
from app.domain.tokens import estimate_tokens
from app.server import create_app
from tests.conftest import LiveServer, make_settings
from tests.fakes.common import split_text
from tests.fakes.openai_server import OpenAIFake, openai_fake_server
from tests.integration.rest.conftest import REPLY_A, metered, sdk
from tests.support.catalog import create_system_model, uuid_of
from tests.support.factories import make_platform_admin_key, make_tenant
from tests.support.gateway import update_organization
from tests.support.graphql import GraphQLClient

FIRST_PIECE = split_text(REPLY_A, 4)[0]
HI = [{"role": "user", "content": "Tell me about Paris."}]


@pytest.fixture
async def stalling() -> AsyncIterator[OpenAIFake]:
    """Sends the role chunk and its first piece, then nothing for 30 s."""
    async with openai_fake_server(reply=REPLY_A, chunks=4, stall_after=2, stall_seconds=30) as fake:
        yield fake


@asynccontextmanager
async def served_like_production(settings: Settings) -> AsyncIterator[LiveServer]:
    """The app on an AppRunner with aiohttp's defaults, as `web.run_app` serves it: a lost
    connection does not cancel its handler."""
    app = create_app(settings)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield LiveServer(url=f"http://{host}:{port}", app=app)
    finally:
        await runner.cleanup()


async def system_model(live: LiveServer, name: str, **fields: Any) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        admin = GraphQLClient(http, live.url, await make_platform_admin_key(live.services))
        return await create_system_model(admin, name, **fields)


async def upstreams_open_within(fake: OpenAIFake, seconds: float) -> int:
    if fake.open_streams:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fake.all_closed.wait(), seconds)
    return fake.open_streams


async def cut_after_first_text(client: AsyncOpenAI, model: str) -> list[str]:
    """Reads up to the first piece of text, then breaks out and closes the response."""
    stream = await client.chat.completions.create(model=model, messages=HI, stream=True)
    received = []
    async for chunk in stream:
        received.append(chunk.choices[0].delta.content or "")
        if received[-1]:
            break
    await stream.close()
    return received


async def check_cancelled(live: LiveServer, stalling: OpenAIFake, model: dict[str, Any]) -> None:
    assert await upstreams_open_within(stalling, 1.5) == 0, "the upstream request is still open"
    (row,) = await metered(live.services, 1)
    assert (row["operation"], row["status"], row["error_code"]) == ("CHAT_STREAM", "CANCELLED", None)
    assert row["served_model_id"] == uuid_of(model["id"])
    assert row["output_tokens"] == estimate_tokens(FIRST_PIECE)


async def test_a_stream_cut_by_the_client_closes_the_upstream(
    server: LiveServer, client: AsyncOpenAI, admin: GraphQLClient, tenant: Any, stalling: OpenAIFake
) -> None:
    await update_organization(admin, tenant.organization_gid, maxConcurrentStreams=1)
    model = await create_system_model(admin, "slow", modelUrl=f"{stalling.url}/v1")
    assert await cut_after_first_text(client, model["id"]) == ["", FIRST_PIECE]
    await check_cancelled(server, stalling, model)
    # The organization's only stream slot is free again.
    echo = await create_system_model(admin, "echo", provider="ECHO", modelUrl=None)
    chunks = [
        c async for c in await client.chat.completions.create(model=echo["id"], messages=HI, stream=True)
    ]
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_a_stream_cut_by_the_client_closes_the_upstream_when_served_like_production(
    database_url: str, stalling: OpenAIFake
) -> None:
    async with served_like_production(make_settings(database_url)) as live:
        tenant = await make_tenant(live.services, "Acme")
        model = await system_model(live, "slow", modelUrl=f"{stalling.url}/v1")
        async with sdk(live, tenant.keys[Role.DEVELOPER]) as client:
            assert await cut_after_first_text(client, model["id"]) == ["", FIRST_PIECE]
            await check_cancelled(live, stalling, model)


async def test_a_client_leaving_before_the_first_token_closes_the_upstream(
    database_url: str,
) -> None:
    """The model has not written yet (no response headers sent): the client times out and goes."""
    async with (
        openai_fake_server(reply=REPLY_A, chunks=4, delay=30) as silent,
        served_like_production(make_settings(database_url)) as live,
    ):
        tenant = await make_tenant(live.services, "Acme")
        model = await system_model(live, "silent", modelUrl=f"{silent.url}/v1")
        async with sdk(live, tenant.keys[Role.DEVELOPER], timeout=0.5) as client:
            with pytest.raises(APITimeoutError):
                await client.chat.completions.create(model=model["id"], messages=HI, stream=True)
        assert await silent.wait_for_no_connections(2.0) == 0
        rows = await metered(live.services, 1)
        assert [(r["status"], r["output_tokens"]) for r in rows] == [("CANCELLED", 0)]


SECRET = "test-hs256-shared-secret-of-decent-length"


async def test_a_jwt_caller_streams_through_the_same_auth(database_url: str) -> None:
    settings = make_settings(database_url, jwt_hs256_secret=SECRET)
    async with served_like_production(settings) as live:
        await make_tenant(live.services, "Acme")
        claims = {
            "sub": "member-1",
            "exp": int(time.time()) + 300,
            "https://stytch.com/organization": {"organization_id": "ext-Acme"},
            "https://stytch.com/session": {"roles": ["stytch_member"]},
        }
        token = jwt.encode(claims, SECRET, algorithm="HS256")
        echo = await system_model(live, "echo", provider="ECHO", modelUrl=None)
        async with sdk(live, token) as client:
            chunks = [
                c async for c in await client.chat.completions.create(model="echo", messages=HI, stream=True)
            ]
            assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Echo: Tell me about Paris."
            assert chunks[0].model == echo["id"]
        rows = await metered(live.services, 1)
        assert [(r["caller"], r["status"]) for r in rows] == [("jwt:member-1", "SUCCESS")]
