"""SIGTERM against the real server process: one drain clock for every transport.

`/readyz` turns 503 at once; new requests, new sockets and new operations on open sockets are
refused with SERVICE_UNAVAILABLE while the process is still there; running streams go on until the
grace ends and are then ended with their transport's terminal error; usage says what happened; the
process exits within grace + 2 s. Upstream streams (a slow fake OpenAI server) and ECHO streams
(nothing upstream to close) alike.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes.openai_server import openai_fake_server
from tests.support.gateway_process import demo_keys, echo_model, openai_model, usage_outcomes
from tests.support.process import server_process
from tests.support.stream_clients import (
    GRAPHQL_TRANSPORT_WS,
    LEGACY_GRAPHQL_WS,
    Socket,
    Watched,
    all_stopped,
    chat_body,
    multipart,
    rest,
    rest_body,
    sse,
    sse_single_connection,
)

GRACE = 2.0
WORDS = " ".join(f"w{i}" for i in range(80))  # 80 words, one every 0.25 s: 20 s, far past the grace
CHAT = """mutation($input: ChatInput!) { chat(input: $input) {
  message { content } userErrors { code message } } }"""


def graphql_stream_ended_by_shutdown(watched: Watched) -> None:
    event = watched.last
    assert event["__typename"] == "ChatStreamError", (watched.name, watched.frames[-3:])
    assert event["code"] == "SERVICE_UNAVAILABLE"
    assert event["retryable"] is True
    assert watched.end == "complete", (watched.name, watched.end)


def rest_stream_ended_by_shutdown(watched: Watched) -> None:
    assert watched.last["error"]["code"] == "service_unavailable", (watched.name, watched.frames[-3:])
    assert watched.end == "[DONE]", (watched.name, watched.end)


def refused_on_the_socket(watched: Watched, protocol: str) -> None:
    assert watched.end == "error", (watched.name, watched.end, watched.frames)
    errors = watched.last if protocol == GRAPHQL_TRANSPORT_WS else [watched.last]
    assert [e["extensions"]["code"] for e in errors] == ["SERVICE_UNAVAILABLE"]


async def test_sigterm_ends_every_stream_at_the_grace_with_its_transports_error(
    database_url: str, tmp_path: Path
) -> None:
    env = {"MODELGATE_DATA_DIR": str(tmp_path), "MODELGATE_DRAIN_GRACE": str(GRACE)}
    async with (
        openai_fake_server(reply=WORDS, chunks=80, frame_interval=0.25) as upstream,
        server_process(database_url, env=env) as server,
        aiohttp.ClientSession() as session,
    ):
        key = demo_keys(server).project
        slow = await openai_model(session, server, "slow-upstream", upstream.url)
        echo = await echo_model(session, server, "slow-echo", word_delay_ms=250)
        url = server.url

        transport_ws = await Socket.open(session, server.ws_url, key, GRAPHQL_TRANSPORT_WS)
        legacy_ws = await Socket.open(session, server.ws_url, key, LEGACY_GRAPHQL_WS)
        graphql = [
            await transport_ws.subscribe("1", chat_body(WORDS, model=slow)),
            await legacy_ws.subscribe("1", chat_body(WORDS, model=echo)),
            sse(session, url, key, chat_body(WORDS, model=slow)),
            await sse_single_connection(session, url, key, chat_body(WORDS, model=echo)),
            multipart(session, url, key, chat_body(WORDS, model=echo)),
        ]
        rests = [
            rest(session, url, key, rest_body(slow, WORDS), name="rest upstream"),
            rest(session, url, key, rest_body(echo, WORDS), name="rest echo"),
        ]
        streams = [*graphql, *rests]
        one_shot = asyncio.create_task(_chat(session, url, key, echo))
        async with all_stopped(*streams):
            await asyncio.wait_for(asyncio.gather(*(s.first_text.wait() for s in streams)), 10)

            signalled = time.monotonic()
            server.signal(signal.SIGTERM)
            await asyncio.sleep(0.2)  # the signal is handled

            async with session.get(f"{url}/readyz") as response:
                assert response.status == 503
            async with session.post(
                f"{url}/graphql", json={"query": "{ __typename }"}, headers={"X-API-Key": key}
            ) as response:
                assert response.status == 503
                body = await response.json(content_type=None)
                assert [e["extensions"]["code"] for e in body["errors"]] == ["SERVICE_UNAVAILABLE"]
            async with session.post(
                f"{url}/v1/chat/completions",
                json=rest_body(echo, "hi"),
                headers={"Authorization": f"Bearer {key}"},
            ) as response:
                assert response.status == 503
                assert (await response.json())["error"]["code"] == "service_unavailable"
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(server.ws_url, protocols=(GRAPHQL_TRANSPORT_WS,))
            assert refused.value.status == 503
            late = {
                GRAPHQL_TRANSPORT_WS: await transport_ws.subscribe("late", chat_body("hi", model=echo)),
                LEGACY_GRAPHQL_WS: await legacy_ws.subscribe("late", chat_body("hi", model=echo)),
            }
            for protocol, watched in late.items():
                refused_on_the_socket(await watched.wait(1), protocol)
            refused_at = time.monotonic() - signalled

            for stream in streams:
                await stream.wait(GRACE + 2)
            await asyncio.wait_for(upstream.all_closed.wait(), 1)  # the upstream requests were closed
            code = await server.wait(within=GRACE + 3)
            exited = time.monotonic() - signalled
            chat = await one_shot

    assert refused_at < GRACE - 0.5  # all the refusals above came during the grace
    for stream in graphql:
        graphql_stream_ended_by_shutdown(stream)
    for stream in rests:
        rest_stream_ended_by_shutdown(stream)
    for stream in streams:
        assert stream.texts_after(signalled + 0.5) > 0, f"{stream.name} stopped before the grace ended"
        assert stream.ended_at is not None
        ended = stream.ended_at - signalled
        assert GRACE - 0.1 < ended < GRACE + 1.0, (stream.name, ended)
    assert chat["userErrors"][0]["code"] == "SERVICE_UNAVAILABLE"
    assert code == 0
    assert exited < GRACE + 2, exited
    outcomes = await usage_outcomes(database_url)
    assert [(o["status"], o["error_code"]) for o in outcomes] == [("ERROR", "SERVICE_UNAVAILABLE")] * 8, (
        outcomes
    )
    assert not [r for r in server.log_records() if r.get("level") == "ERROR"]


async def _chat(session: aiohttp.ClientSession, url: str, key: str, model: str) -> Any:
    """The chat mutation, running across the shutdown."""
    variables = {"input": {"model": model, "messages": [{"role": "USER", "content": WORDS}]}}
    async with session.post(
        f"{url}/graphql", json={"query": CHAT, "variables": variables}, headers={"X-API-Key": key}
    ) as response:
        return (await response.json(content_type=None))["data"]["chat"]


async def test_an_idle_server_exits_at_once_and_closes_its_sockets(database_url: str, tmp_path: Path) -> None:
    env = {"MODELGATE_DATA_DIR": str(tmp_path), "MODELGATE_DRAIN_GRACE": "10"}
    async with server_process(database_url, env=env) as server, aiohttp.ClientSession() as session:
        socket = await Socket.open(session, server.ws_url, demo_keys(server).project, GRAPHQL_TRANSPORT_WS)
        signalled = time.monotonic()
        server.signal(signal.SIGTERM)
        code = await server.wait(within=5)
        exited = time.monotonic() - signalled
        await socket.close()
    assert code == 0
    assert exited < 1.5, exited
    assert socket.close_code == 1001
