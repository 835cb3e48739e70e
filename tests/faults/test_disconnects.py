"""A client that goes away mid-answer is an ordinary outcome, not a server fault: the access log
says 499 (nginx's "client closed request"), nothing is logged as an error, the upstream request is
closed at once, and the call is metered CANCELLED. Against the real server process (which cancels
the handler of a client that left), and against the app served as `web.run_app` serves it (where
the next write fails instead)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from app.config import Settings
from app.server import create_app
from app.server_keys import SERVICES
from app.services.demo import seed_demo
from tests.fakes.openai_server import OpenAIFake, openai_fake_server
from tests.support.gateway import usage_rows
from tests.support.gateway_process import demo_keys, openai_model, usage_outcomes
from tests.support.process import ServerProcess, server_process
from tests.support.stream_clients import GRAPHQL_TRANSPORT_WS, LEGACY_GRAPHQL_WS, Socket, chat_body, rest_body

WORDS = " ".join(f"w{i}" for i in range(40))  # one piece every 0.25 s: 10 s, far longer than the test
REQUEST_ID = "client-goes-away"


@contextlib.asynccontextmanager
async def slow_stream_server(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[ServerProcess, OpenAIFake, str, str]]:
    """The server, a slow upstream, a key and the upstream's model id."""
    async with (
        openai_fake_server(reply=WORDS, chunks=40, frame_interval=0.25) as upstream,
        server_process(database_url, env={"MODELGATE_DATA_DIR": str(tmp_path)}) as server,
        aiohttp.ClientSession() as session,
    ):
        model = await openai_model(session, server, "slow-upstream", upstream.url)
        yield server, upstream, demo_keys(server).project, model


async def http_stream_dropped(port: int, path: str, headers: dict[str, str], body: dict[str, Any]) -> None:
    """Sends the request over a bare socket, reads until some text has come, and hangs up."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = orjson.dumps(body)
    head = [
        f"POST {path} HTTP/1.1",
        "Host: test",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        f"X-Request-Id: {REQUEST_ID}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    writer.write("\r\n".join(head).encode() + b"\r\n\r\n" + payload)
    received = b""
    async with asyncio.timeout(10):
        while b"w1" not in received:  # the second piece of the answer
            received += await reader.read(65536)
    assert received.startswith(b"HTTP/1.1 200"), received[:200]
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset, not a FIN
    writer.close()


async def outcome_after_leaving(
    server: ServerProcess, upstream: OpenAIFake, database_url: str, left: float
) -> tuple[float, list[dict[str, Any]]]:
    """How long the upstream request outlived the client, and the usage rows once written."""
    await asyncio.wait_for(upstream.all_closed.wait(), 5)
    upstream_closed_after = time.monotonic() - left
    for _ in range(50):  # the server flushes usage every 0.2 s
        if outcomes := await usage_outcomes(database_url):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)  # the access line is written as the handler ends
    return upstream_closed_after, outcomes


def quiet(server: ServerProcess) -> None:
    errors = [r for r in server.log_records() if r.get("level") in ("ERROR", "CRITICAL")]
    assert not errors, errors


def access_status(server: ServerProcess) -> int:
    (line,) = [
        r
        for r in server.log_records()
        if r.get("logger") == "modelgate.access" and r.get("requestId") == REQUEST_ID
    ]
    status: int = line["status"]
    return status


@pytest.mark.parametrize("door", ["graphql-sse", "rest"])
async def test_a_client_leaving_an_http_stream_is_499_and_cancelled(
    database_url: str, tmp_path: Path, door: str
) -> None:
    async with slow_stream_server(database_url, tmp_path) as (server, upstream, key, model):
        if door == "rest":
            await http_stream_dropped(
                server.port,
                "/v1/chat/completions",
                {"Authorization": f"Bearer {key}"},
                {**rest_body(model, WORDS), "stream": True},
            )
        else:
            await http_stream_dropped(
                server.port,
                "/graphql",
                {"X-API-Key": key, "Accept": "text/event-stream"},
                chat_body(WORDS, model=model),
            )
        closed_after, outcomes = await outcome_after_leaving(server, upstream, database_url, time.monotonic())
        quiet(server)
        assert access_status(server) == 499
    assert closed_after < 1.0
    assert [(o["status"], o["error_code"]) for o in outcomes] == [("CANCELLED", None)]


@pytest.mark.parametrize("protocol", [GRAPHQL_TRANSPORT_WS, LEGACY_GRAPHQL_WS])
async def test_a_client_leaving_a_websocket_mid_stream_is_cancelled_quietly(
    database_url: str, tmp_path: Path, protocol: str
) -> None:
    async with (
        slow_stream_server(database_url, tmp_path) as (server, upstream, key, model),
        aiohttp.ClientSession() as session,
    ):
        ws = await Socket.open(session, server.ws_url, key, protocol)
        stream = await ws.subscribe("1", chat_body(WORDS, model=model))
        await asyncio.wait_for(stream.first_text.wait(), 10)
        ws.abort()  # gone, without a close handshake
        closed_after, outcomes = await outcome_after_leaving(server, upstream, database_url, time.monotonic())
        quiet(server)
    assert closed_after < 1.0
    assert [(o["status"], o["error_code"]) for o in outcomes] == [("CANCELLED", None)]


@pytest.mark.parametrize("door", ["graphql-sse", "rest"])
async def test_a_write_to_a_client_that_left_is_499_not_a_server_error(
    settings: Settings, caplog: pytest.LogCaptureFixture, door: str
) -> None:
    """Served as `web.run_app` or gunicorn's aiohttp worker serve an app (no handler cancellation),
    a client's leaving shows as a failed write at the stream's next word: the client's doing, not
    an unhandled server error."""
    caplog.set_level(logging.INFO)
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        services = runner.app[SERVICES]
        keys = await seed_demo(services)  # the demo project's default: ECHO, a word every 40 ms
        assert keys is not None
        words = " ".join(f"w{i}" for i in range(200))
        if door == "rest":
            headers = {"Authorization": f"Bearer {keys.demo_project}"}
            await http_stream_dropped(
                port, "/v1/chat/completions", headers, {**rest_body("default", words), "stream": True}
            )
        else:
            headers = {"X-API-Key": keys.demo_project, "Accept": "text/event-stream"}
            await http_stream_dropped(port, "/graphql", headers, chat_body(words))
        (row,) = await usage_rows(services, count=1)
        for _ in range(50):  # the access line is written as the handler ends
            if access := [r for r in caplog.records if getattr(r, "requestId", "") == REQUEST_ID]:
                break
            await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()
    assert [(r.name, getattr(r, "status", None)) for r in access] == [("modelgate.access", 499)]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert row["status"] == "CANCELLED"
