"""The frames of one WebSocket written together when several are ready in the same loop turn.

A chatStream sends a frame per chunk. With many streams on one socket, several of its frames are
ready within one turn of the event loop, and each was a write of its own: a send() system call
each, unless the socket is behind (then asyncio's transport already buffers them into one send).
aiohttp's frame writer writes through `CoalescedWrites`, which joins the frames of a turn and
writes them at the start of the next one. A control frame (close, ping, pong) is written at once,
with what precedes it: a close frame is never overtaken, and never left behind when aiohttp closes
the transport right after it. Every frame stays a frame of its own, in order; only the writes are
fewer.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from aiohttp import web

_CONTROL = 0x08  # opcodes 0x8 (close), 0x9 (ping), 0xA (pong): the first byte's low nibble


class CoalescedWrites:
    """The socket's transport as aiohttp's frame writer sees it."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._pending.append(bytes(data))
        # aiohttp writes a control frame (always short) in one piece; the payload of a long data
        # frame, written apart from its header, may look like one: then it is written early, harmless.
        if data and data[0] & 0x0F >= _CONTROL:
            self._flush()
        elif len(self._pending) == 1:
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():  # a socket gone: nothing to write to
            self._transport.write(data)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def coalesce_writes(ws: web.WebSocketResponse) -> None:
    """From now on, the frames of this prepared socket are written a loop turn at a time."""
    writer = ws._writer  # aiohttp's frame writer (no public way to reach its transport)
    if writer is not None and not isinstance(writer.transport, CoalescedWrites):
        writer.transport = cast(asyncio.Transport, CoalescedWrites(writer.transport))
