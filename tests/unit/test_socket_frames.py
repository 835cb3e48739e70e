"""Frames written within one loop turn go out in one write, and still arrive as separate, whole
messages in order; a close frame is never overtaken or lost; frames of a later turn are not held."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from app.api.socket_frames import CoalescedWrites, coalesce_writes
from tests.support.loopback import loopback_app

Serve = Callable[[web.WebSocketResponse], Awaitable[None]]


@pytest.fixture
async def socket_server() -> AsyncIterator[Callable[[Serve], Awaitable[str]]]:
    """Serves one WebSocket handler (its writes coalesced) on loopback; gives its URL."""
    servers = contextlib.AsyncExitStack()

    async def start(serve: Serve) -> str:
        async def handler(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            coalesce_writes(ws)
            await serve(ws)
            return ws

        app = web.Application()
        app.router.add_get("/", handler)
        return await servers.enter_async_context(loopback_app(app)) + "/"

    async with servers:
        yield start


def writes_of(ws: web.WebSocketResponse, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """What reaches the socket's real transport, write by write."""
    assert ws._writer is not None
    coalesced = ws._writer.transport
    assert isinstance(coalesced, CoalescedWrites)
    real = coalesced._transport
    writes: list[bytes] = []
    original = real.write

    def write(data: bytes) -> None:
        writes.append(bytes(data))
        original(data)

    monkeypatch.setattr(real, "write", write)
    return writes


def frames_then_close(
    monkeypatch: pytest.MonkeyPatch, seen: list[bytes], done: asyncio.Event, *, pause: float = 0.0
) -> Serve:
    """A handler that sends three frames and closes with 4001 (after `pause`), then puts into
    `seen` what reached the real transport and sets `done`."""

    async def serve(ws: web.WebSocketResponse) -> None:
        writes = writes_of(ws, monkeypatch)
        if pause:
            await asyncio.sleep(pause)
        for i in range(3):
            await ws.send_frame(b'{"n":%d}' % i, WSMsgType.TEXT)
        await ws.close(code=4001)
        seen.extend(writes)
        done.set()

    return serve


async def test_frames_of_one_turn_arrive_as_separate_messages_in_order(
    socket_server: Callable[[Serve], Awaitable[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, list[bytes]] = {}

    async def serve(ws: web.WebSocketResponse) -> None:
        writes = writes_of(ws, monkeypatch)
        for i in range(50):  # no await here yields to the loop: one turn
            await ws.send_frame(b'{"n":%d}' % i, WSMsgType.TEXT)
        assert writes == []  # held until the turn ends
        await asyncio.sleep(0.05)
        seen["first turn"] = list(writes)
        await ws.send_str('{"n":"later"}')
        await asyncio.sleep(0.05)
        seen["later turn"] = writes[len(seen["first turn"]) :]
        await ws.close(code=4000)

    url = await socket_server(serve)
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        received = [message async for message in ws]
        close_code = ws.close_code
    assert [m.type for m in received] == [WSMsgType.TEXT] * 51
    assert [m.json()["n"] for m in received] == [*range(50), "later"]
    assert close_code == 4000
    assert len(seen["first turn"]) == 1  # 50 frames, one write
    assert len(seen["later turn"]) == 1  # a frame of a later turn is not held back


async def test_a_close_right_after_frames_goes_out_last_and_at_once(
    socket_server: Callable[[Serve], Awaitable[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiohttp may close the transport right after its close frame (when the client closed first,
    or on a timeout): the close frame and the frames before it are written at once, in order."""
    seen: list[bytes] = []
    done = asyncio.Event()
    url = await socket_server(frames_then_close(monkeypatch, seen, done))
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        received = [message async for message in ws]
        close_code = ws.close_code
    await asyncio.wait_for(done.wait(), 5)
    assert [m.json()["n"] for m in received] == [0, 1, 2]
    assert close_code == 4001
    assert len(seen) == 1  # the frames and the close frame: one write, the close last
    assert seen[0].endswith(b"\x0f\xa1")  # the close code, 4001


async def test_a_close_answering_the_clients_is_not_lost(
    socket_server: Callable[[Serve], Awaitable[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client closed first: aiohttp writes its close frame and closes the transport at once,
    in the same turn. The frames pending before it and the close frame still reach the socket."""
    seen: list[bytes] = []
    done = asyncio.Event()
    # By the time it writes, the client's close is waiting in the reader.
    url = await socket_server(frames_then_close(monkeypatch, seen, done, pause=0.2))
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(url)
        await ws.close()
    await asyncio.wait_for(done.wait(), 5)
    assert len(seen) == 1
    assert seen[0].endswith(b"\x0f\xa1")  # the close frame, last
