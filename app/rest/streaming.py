"""Chat completion chunks as server-sent events, and ending a stream when its client goes away.

A stream is answered only once the gateway knows who serves it: failures before the first token
(policies, limits, providers failing before any text, with their retries and fallbacks) are plain
HTTP errors with their status. After that, the answer is `chat.completion.chunk` frames and
`data: [DONE]`; a failure is an error frame (`data: {"error": {…}}`, which OpenAI's SDKs raise as
an `APIError`), then `data: [DONE]` as well, so that a client reading to the end sees the stream
finish rather than break off.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from app.domain.calls import ToolCallDelta, ToolCallDone, Usage
from app.domain.enums import FinishReason
from app.rest.responses import finish_reason, usage_object

if TYPE_CHECKING:
    from app.rest.errors import RestError  # errors.py imports `frame` from here

DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # proxies: pass each frame on at once
}
# How often open streams are checked for clients that left.
_DISCONNECT_POLL = 0.2
STREAMS: web.AppKey[DisconnectWatcher] = web.AppKey("rest_streams")


def frame(body: Any) -> bytes:
    return b"data: " + orjson.dumps(body) + b"\n\n"


class ChatChunks:
    """The frames of one streamed chat completion."""

    def __init__(self, completion_id: str, created: int, model: str, *, include_usage: bool) -> None:
        self.base: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
        }
        self.include_usage = include_usage
        if include_usage:  # OpenAI then sends `"usage": null` on every chunk but the last
            self.base["usage"] = None
        self._began = False
        self._sent: set[int] = set()  # the tool calls whose first chunk is sent
        self._live: int | None = None  # the tool call sent as it comes
        self._held: dict[int, list[ToolCallDelta]] = {}  # the other calls' pieces, until it is whole

    def _choice(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return frame({**self.base, "choices": [choice]})

    def _start(self, content: str | None) -> dict[str, Any]:
        """The role goes with the first chunk; as OpenAI's, content "" before text, null before
        tool calls (so that an answer of only tool calls has no content)."""
        if self._began:
            return {}
        self._began = True
        return {"role": "assistant", "content": content, "refusal": None}

    def text(self, text: str) -> bytes:
        start = self._start("")
        return (self._choice(start) if start else b"") + self._choice({"content": text})

    def tool_call(self, event: ToolCallDelta | ToolCallDone) -> bytes:
        """OpenAI streams parallel calls one after the other, and the SDKs rely on it: a chunk of a
        new index ends the call before (its arguments are then parsed). So the first call seen is
        sent as it comes, the others' pieces are held until it is whole (its ToolCallDone; the
        gateway sends them in order before the finish), then each is sent whole, in order. A
        call's first chunk carries its index, id, type and name with empty arguments; the next
        ones `{index, function: {arguments}}`."""
        if isinstance(event, ToolCallDelta):
            if self._live is None and event.index not in self._sent:
                self._live = event.index
            if event.index == self._live:
                return self._piece(event)
            self._held.setdefault(event.index, []).append(event)
            return b""
        if event.index == self._live:
            self._live = None
            return b""
        if event.index in self._sent:
            return b""
        call = event.call
        pieces = self._held.pop(event.index, None) or [
            ToolCallDelta(event.index, call.arguments, call.id, call.name)
        ]
        return b"".join(self._piece(piece) for piece in pieces)

    def _piece(self, delta: ToolCallDelta) -> bytes:
        frames = b""
        if delta.index not in self._sent:
            self._sent.add(delta.index)
            head = {
                "index": delta.index,
                "id": delta.id,
                "type": "function",
                "function": {"name": delta.name, "arguments": ""},
            }
            frames += self._choice({**self._start(None), "tool_calls": [head]})
        if delta.arguments:
            piece = {"index": delta.index, "function": {"arguments": delta.arguments}}
            frames += self._choice({"tool_calls": [piece]})
        return frames

    def finish(self, reason: FinishReason) -> bytes:
        # Calls still held (a stream without their ToolCallDone): whole, in order, before the end.
        held = b"".join(self._piece(p) for index in sorted(self._held) for p in self._held.pop(index))
        start = self._start("")
        return held + (self._choice(start) if start else b"") + self._choice({}, finish_reason(reason))

    def usage(self, usage: Usage) -> bytes:
        return frame({**self.base, "choices": [], "usage": usage_object(usage)})

    # As stream_relay.Frames:
    terminator = DONE

    def start(self) -> bytes:
        return b""  # the role goes with the first content (see `_start`)

    def end(self, reason: FinishReason, usage: Usage) -> bytes:
        return self.finish(reason) + (self.usage(usage) if self.include_usage else b"")

    def failure(self, error: RestError) -> bytes:
        return error.frame()


@dataclass(slots=True)
class _Stream:
    request: web.Request
    left: bool = False


class DisconnectWatcher:
    """Ends a stream as soon as its client's connection closes, also while it waits on the model:
    aiohttp cancels no handler on a lost connection (unless the runner is told to), and a write
    notices only at the next token. One poll for all of the app's open streams, so that a thousand
    streams cost one wakeup per interval. The cancellation closes the gateway's stream, which
    closes the upstream request and meters the call as CANCELLED."""

    def __init__(self, interval: float = _DISCONNECT_POLL) -> None:
        self.interval = interval
        self._open: dict[asyncio.Task[Any], _Stream] = {}
        self._poller: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def watching(self, request: web.Request) -> AsyncIterator[None]:
        task = asyncio.current_task()
        assert task is not None
        stream = self._open[task] = _Stream(request)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll())
        try:
            yield
        except asyncio.CancelledError:
            # Ours: the client left. Anyone else's (shutdown, the server's own handler cancellation): on.
            if not stream.left or task.uncancel() > 0:
                raise
        finally:
            del self._open[task]

    async def _poll(self) -> None:
        while self._open:
            await asyncio.sleep(self.interval)
            for task, stream in list(self._open.items()):
                transport = stream.request.transport
                if not stream.left and (transport is None or transport.is_closing()):
                    stream.left = True
                    task.cancel()

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
