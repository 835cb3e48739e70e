"""Slow and too many clients, against the real server process: a partial request head or body, and an
idle keep-alive connection, are closed after their timeouts; beyond the connection cap a new
connection is refused while those within it are served; streams outlive every timeout."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson

from tests.support.process import ServerProcess, server_process

# Short limits for the tests; each test sets the one it watches apart from the others.
LIMITS = {
    "MODELGATE_CLIENT_HEADER_TIMEOUT": "1",
    "MODELGATE_CLIENT_BODY_TIMEOUT": "1",
    "MODELGATE_CLIENT_IDLE_TIMEOUT": "30",
}
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@contextlib.asynccontextmanager
async def serving(database_url: str, tmp_path: Path, **env: str) -> AsyncIterator[ServerProcess]:
    async with server_process(
        database_url, env={"MODELGATE_DATA_DIR": str(tmp_path), **LIMITS, **env}
    ) as server:
        yield server


async def connect(server: ServerProcess) -> Connection:
    return await asyncio.open_connection("127.0.0.1", server.port)


async def seconds_until_closed(connection: Connection, within: float = 12) -> float:
    """How long the server takes to close the connection (what it sends meanwhile is dropped)."""
    reader, _ = connection
    started = time.monotonic()
    async with asyncio.timeout(within):
        with contextlib.suppress(ConnectionResetError):
            while await reader.read(65536):
                pass
    return time.monotonic() - started


async def get(connection: Connection, path: str) -> tuple[int, bytes]:
    """GET `path` on a kept-alive connection: the answer's status and body."""
    reader, writer = connection
    writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = re.search(rb"(?i)content-length: *(\d+)", head)
    body = await reader.readexactly(int(length.group(1)) if length else 0)
    return int(head.split(b" ", 2)[1]), body


async def healthz(connection: Connection) -> int:
    return (await get(connection, "/healthz"))[0]


async def test_partial_heads_and_bodies_are_disconnected(database_url: str, tmp_path: Path) -> None:
    async with serving(database_url, tmp_path) as server:
        half_head = await connect(server)
        half_head[1].write(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
        trickled_head = await connect(server)
        half_body = await connect(server)
        half_body[1].write(
            b"POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"query": '
        )
        half_chunked = await connect(server)
        half_chunked[1].write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b'Transfer-Encoding: chunked\r\n\r\n5\r\n{"mod\r\n'
        )

        async def trickle() -> None:  # a byte every 0.2 s: the deadline counts from the first one
            with contextlib.suppress(ConnectionError):
                for byte in b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"x" * 100:
                    trickled_head[1].write(bytes([byte]))
                    await asyncio.sleep(0.2)

        trickling = asyncio.create_task(trickle())
        waits = await asyncio.gather(
            *(seconds_until_closed(c) for c in (half_head, trickled_head, half_body, half_chunked))
        )
        trickling.cancel()
        # One healthy request on a fresh connection is unaffected by the deadlines.
        assert await healthz(await connect(server)) == 200
    for waited in waits:
        assert 0.8 <= waited < 10, waits  # the 1 s timeouts, not the 30 s idle timeout


async def test_idle_keep_alive_connections_are_closed(database_url: str, tmp_path: Path) -> None:
    async with serving(database_url, tmp_path, MODELGATE_CLIENT_IDLE_TIMEOUT="1.5") as server:
        used = await connect(server)
        assert await healthz(used) == 200
        silent = await connect(server)  # never sends anything
        waits = await asyncio.gather(seconds_until_closed(used), seconds_until_closed(silent))
    for waited in waits:
        assert 1.2 <= waited < 10, waits  # not aiohttp's default of 75 s


async def admitted(server: ServerProcess) -> Connection:
    """A connection the server accepted and serves (slots of closed ones free up within moments)."""
    for _ in range(50):
        connection = await connect(server)
        # Refused: a 503, or a reset when the refusal closed the socket on our unread request.
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            if await healthz(connection) == 200:
                return connection
        connection[1].close()
        await asyncio.sleep(0.1)
    raise AssertionError("no connection slot became free")


async def test_connections_beyond_the_cap_are_refused(database_url: str, tmp_path: Path) -> None:
    cap = 5
    async with serving(database_url, tmp_path, MODELGATE_MAX_CLIENT_CONNECTIONS=str(cap)) as server:
        held = [await admitted(server) for _ in range(cap)]
        reader, _ = await connect(server)
        answer = await asyncio.wait_for(reader.read(), 5)  # everything up to the close
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable")
        assert b"too many open connections" in answer
        # Those within the cap are served all the while.
        assert [await healthz(c) for c in held] == [200] * cap
        held.pop()[1].close()
        held.append(await admitted(server))  # a freed slot is taken again
        assert await healthz(held[-1]) == 200
        _, metrics = await get(held[0], "/metrics")
    refused = re.search(rb'_connections_closed_total\{reason="over_capacity"\} (\S+)', metrics)
    assert refused is not None
    assert float(refused.group(1)) >= 1


def demo_project_key(server: ServerProcess) -> str:
    printed = "\n".join(server.stdout)
    match = re.search(r"Demo project key: (mg_\S+)", printed)
    assert match, printed
    return match.group(1)


async def test_streams_outlive_every_timeout(database_url: str, tmp_path: Path) -> None:
    """The demo echo model writes a word every 40 ms: 60 words take longer than all three timeouts."""
    words = " ".join(f"w{i}" for i in range(60))
    async with serving(database_url, tmp_path, MODELGATE_CLIENT_IDLE_TIMEOUT="1") as server:
        key = demo_project_key(server)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as session:
            started = time.monotonic()
            body = {"model": "default", "stream": True, "messages": [{"role": "user", "content": words}]}
            async with session.post(f"{server.url}/v1/chat/completions", json=body) as response:
                assert response.status == 200
                frames = [line async for line in response.content if line.startswith(b"data: ")]
            streamed_for = time.monotonic() - started

            async with session.ws_connect(server.ws_url, protocols=("graphql-transport-ws",)) as socket:
                await socket.send_json({"type": "connection_init", "payload": {"apiKey": key}})
                assert (await socket.receive_json(timeout=5))["type"] == "connection_ack"
                await asyncio.sleep(2.5)  # quiet for longer than every timeout
                query = {"query": "{ viewer { organization { name } } }"}
                await socket.send_json({"id": "1", "type": "subscribe", "payload": query})
                answer = await socket.receive_json(timeout=5)
    assert streamed_for > 2
    assert frames[-1].strip() == b"data: [DONE]"
    text = "".join(
        orjson.loads(f[6:])["choices"][0]["delta"].get("content") or ""
        for f in frames[:-1]
        if orjson.loads(f[6:])["choices"]
    )
    assert "w59" in text
    assert answer["type"] == "next"
    assert answer["payload"]["data"]["viewer"]["organization"]["name"] == "Demo"
