"""One chat stream as each kind of client sees it, with the time each event arrived: for tests that
watch how streams end (a shutdown, a client leaving) on every transport of a real server.

A `Watched` stream collects its events in the background; `frames` are what the client parsed (a
`chatStream` event for GraphQL, a chunk or error object for REST), `end` how it ended:

- `"complete"`: the GraphQL operation completed (`complete` message, SSE `complete` event, or the
  multipart close delimiter);
- `"[DONE]"`: the REST stream's `data: [DONE]`;
- `"error"`: a protocol-level error for the operation (WebSocket `error` message); its payload is
  the last frame;
- `"eof"` / `"closed <code>"`: the connection ended without any of these.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.support.gateway import CHAT_STREAM

GRAPHQL_TRANSPORT_WS = "graphql-transport-ws"
LEGACY_GRAPHQL_WS = "graphql-ws"
MULTIPART_ACCEPT = 'multipart/mixed;boundary="graphql";subscriptionSpec="1.0",application/json'


@dataclass
class Watched:
    name: str
    frames: list[tuple[float, Any]] = field(default_factory=list)  # (monotonic time, frame)
    end: str | None = None
    ended_at: float | None = None
    first_text: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def add(self, frame: Any) -> None:
        self.frames.append((time.monotonic(), frame))
        if _has_text(frame):
            self.first_text.set()

    def close(self, how: str) -> None:
        if self.end is None:
            self.end, self.ended_at = how, time.monotonic()
        self.finished.set()

    @property
    def last(self) -> Any:
        return self.frames[-1][1] if self.frames else None

    def texts_after(self, moment: float) -> int:
        """How many frames with text arrived after `moment` (monotonic)."""
        return sum(1 for at, frame in self.frames if at > moment and _has_text(frame))

    async def wait(self, within: float) -> Watched:
        await asyncio.wait_for(self.finished.wait(), within)
        return self


def _has_text(frame: Any) -> bool:
    if not isinstance(frame, dict):
        return False
    if frame.get("__typename") == "ChatStreamDelta":
        return True
    choices = frame.get("choices") or []
    return any((c.get("delta") or {}).get("content") for c in choices)


def _spawn(watched: Watched, run: Callable[[], Awaitable[None]]) -> Watched:
    async def guarded() -> None:
        try:
            with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                await run()
        finally:
            watched.close("eof")  # unless it ended otherwise already

    watched.task = asyncio.create_task(guarded(), name=watched.name)
    return watched


def chat_body(content: str, **fields: Any) -> dict[str, Any]:
    return {
        "query": CHAT_STREAM,
        "variables": {"input": {"messages": [{"role": "USER", "content": content}], **fields}},
    }


# ---- GraphQL over HTTP ------------------------------------------------------------------------------


def sse(
    session: aiohttp.ClientSession, url: str, key: str, body: dict[str, Any], name: str = "sse"
) -> Watched:
    """GraphQL over SSE (distinct connections mode)."""
    watched = Watched(name)

    async def run() -> None:
        headers = {"X-API-Key": key, "Accept": "text/event-stream"}
        async with session.post(f"{url}/graphql", json=body, headers=headers) as response:
            if response.status != 200:  # kept as the last frame, for the assertion's message
                watched.add(await response.json(content_type=None))
                return
            async for event, data in _sse_events(response.content):
                if event == "complete":
                    watched.close("complete")
                    return
                watched.add(_graphql_event(data))

    return _spawn(watched, run)


async def sse_single_connection(
    session: aiohttp.ClientSession,
    url: str,
    key: str,
    body: dict[str, Any],
    name: str = "sse single connection",
) -> Watched:
    """graphql-sse's single connection mode: a reserved stream, one operation on it. The watched
    stream ends with the operation's `complete` event, or `eof` when the stream ends first."""
    watched = Watched(name)
    async with session.put(f"{url}/graphql", headers={"X-API-Key": key}) as reserved:
        assert reserved.status == 201, await reserved.text()
        auth = {"X-API-Key": key, "X-GraphQL-Event-Stream-Token": await reserved.text()}
    opened = asyncio.Event()

    async def run() -> None:
        async with session.get(f"{url}/graphql", headers={**auth, "Accept": "text/event-stream"}) as response:
            opened.set()
            async for event, data in _sse_events(response.content):
                if event == "complete":
                    watched.close("complete")
                elif event == "next":
                    watched.add(_graphql_event(data["payload"]))

    _spawn(watched, run)
    await asyncio.wait_for(opened.wait(), 5)
    operation = {**body, "extensions": {"operationId": "1"}}
    async with session.post(f"{url}/graphql", json=operation, headers=auth) as response:
        assert response.status == 202, await response.text()
    return watched


def multipart(
    session: aiohttp.ClientSession, url: str, key: str, body: dict[str, Any], name: str = "multipart"
) -> Watched:
    """Apollo's multipart subscriptions."""
    watched = Watched(name)

    async def run() -> None:
        headers = {"X-API-Key": key, "Accept": MULTIPART_ACCEPT}
        async with session.post(f"{url}/graphql", json=body, headers=headers) as response:
            buffer = ""
            async for chunk in response.content.iter_any():
                buffer += chunk.decode()
                *parts, buffer = buffer.split("\r\n--graphql")
                for part in parts:
                    if "\r\n\r\n" in part:
                        payload = json.loads(part.split("\r\n\r\n", 1)[1])
                        if payload:  # `{}` is a heartbeat
                            watched.add(_graphql_event(payload["payload"]))
                if buffer.startswith("--"):
                    watched.close("complete")
                    return

    return _spawn(watched, run)


async def _sse_events(content: aiohttp.StreamReader) -> AsyncIterator[tuple[str, Any]]:
    """(event, parsed data) of an event stream; comments skipped."""
    event, data = None, []
    async for raw in content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())
        elif not line and event is not None:
            text = "\n".join(data)
            yield event, json.loads(text) if text else None
            event, data = None, []


def _graphql_event(payload: dict[str, Any]) -> Any:
    """A chatStream event, or the result itself when it carries errors."""
    if payload.get("errors"):
        return payload
    return payload["data"]["chatStream"]


# ---- GraphQL over WebSockets ----------------------------------------------------------------------


class Socket:
    """One GraphQL WebSocket (either protocol), its operations watched by id."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, protocol: str, name: str) -> None:
        self.ws = ws
        self.protocol = protocol
        self.name = name
        self.operations: dict[str, Watched] = {}
        self.close_code: int | None = None
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, session: aiohttp.ClientSession, ws_url: str, key: str, protocol: str) -> Socket:
        ws = await session.ws_connect(ws_url, protocols=(protocol,))
        await ws.send_json({"type": "connection_init", "payload": {"apiKey": key}})
        while (ack := await ws.receive_json(timeout=5))["type"] == "ka":
            pass
        assert ack["type"] == "connection_ack", ack
        return cls(ws, protocol, protocol)

    async def subscribe(self, operation_id: str, body: dict[str, Any]) -> Watched:
        watched = self.operations[operation_id] = Watched(f"{self.name} #{operation_id}")
        kind = "subscribe" if self.protocol == GRAPHQL_TRANSPORT_WS else "start"
        await self.ws.send_json({"id": operation_id, "type": kind, "payload": body})
        return watched

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                data = json.loads(message.data)
                watched = self.operations.get(data.get("id", ""))
                if watched is None:
                    continue
                if data["type"] in ("next", "data"):
                    watched.add(_graphql_event(data["payload"]))
                elif data["type"] == "complete":
                    watched.close("complete")
                elif data["type"] == "error":
                    watched.add(data["payload"])
                    watched.close("error")
        finally:
            self.close_code = self.ws.close_code
            for watched in self.operations.values():
                watched.close(f"closed {self.close_code}")

    async def close(self) -> None:
        await self.ws.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    def abort(self) -> None:
        """Ends the connection without a close handshake, as a client that crashed."""
        self.ws.get_extra_info("socket").shutdown(socket.SHUT_RDWR)


# ---- the OpenAI-compatible REST API -------------------------------------------------------------------


def rest(
    session: aiohttp.ClientSession, url: str, key: str, body: dict[str, Any], name: str = "rest"
) -> Watched:
    """POST /v1/chat/completions with `"stream": true`."""
    watched = Watched(name)

    async def run() -> None:
        headers = {"Authorization": f"Bearer {key}"}
        async with session.post(
            f"{url}/v1/chat/completions", json={**body, "stream": True}, headers=headers
        ) as response:
            if response.status != 200:  # kept as the last frame, for the assertion's message
                watched.add(await response.json(content_type=None))
                return
            async for raw in response.content:
                line = raw.decode().strip()
                if line == "data: [DONE]":
                    watched.close("[DONE]")
                    return
                if line.startswith("data: "):
                    watched.add(json.loads(line.removeprefix("data: ")))

    return _spawn(watched, run)


def rest_body(model: str, content: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}]}


@contextlib.asynccontextmanager
async def all_stopped(*watched: Watched) -> AsyncIterator[None]:
    """Cancels the watching tasks still running when the block ends."""
    try:
        yield
    finally:
        for w in watched:
            if w.task is not None and not w.task.done():
                w.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await w.task
