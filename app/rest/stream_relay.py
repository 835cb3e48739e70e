"""Relaying a gateway chat stream to a REST client as server-sent events, whatever the frames'
shape (chat completion chunks, or the Responses API's events).

A stream is answered only once the gateway knows who serves it: failures before that are plain
HTTP errors with their status. After it, every event becomes frames; the gateway's stream is closed
before the last frame, so that the call is metered and its stream slot free by the time the client
sees the end; a failure is an error frame (OpenAI's SDKs raise it), then the usual end.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Protocol

from aiohttp import web

from app.domain.calls import TextDelta, ToolCallDelta, ToolCallDone, Usage
from app.domain.enums import FinishReason
from app.domain.gateway import GatewayStreamEvent, StreamEnd, StreamError, StreamReset, StreamStart
from app.rest.caller import Caller
from app.rest.errors import RestError, from_gateway
from app.rest.headers import call_headers
from app.rest.streaming import SSE_HEADERS, STREAMS
from app.services.gateway.requests import CallRequest
from app.services.revocation import stream_refused

log = logging.getLogger("modelgate.rest")


class Frames(Protocol):
    """The frames of one streamed answer, in one API's shape."""

    # What every stream ends with, also a failed one (chat completions: `data: [DONE]`).
    terminator: bytes

    def start(self) -> bytes: ...
    def text(self, text: str) -> bytes: ...
    def tool_call(self, event: ToolCallDelta | ToolCallDone) -> bytes: ...
    def end(self, reason: FinishReason, usage: Usage) -> bytes: ...
    def failure(self, error: RestError) -> bytes: ...


async def relay(
    request: web.Request, caller: Caller, call: CallRequest, frames_for: Callable[[StreamStart], Frames]
) -> web.StreamResponse:
    events = caller.services.revocations.until_refused(
        caller.session,
        caller.services.gateway.chat_stream(caller.principal, call, caller.request_id),
        stream_refused,
    )
    response: web.StreamResponse | None = None
    try:
        async with request.app[STREAMS].watching(request), aclosing(events):
            first = await anext(events, None)
            if isinstance(first, StreamError):
                raise from_gateway(first.error)  # nothing sent yet: a plain HTTP error
            if not isinstance(first, StreamStart):
                raise RuntimeError(f"a chat stream began with {first!r}")
            frames = frames_for(first)
            response = web.StreamResponse(
                headers={**SSE_HEADERS, **call_headers(first.served, first.warnings)}
            )
            await response.prepare(request)
            await response.write(frames.start())
            try:
                await _relay(response, events, frames)
            except ConnectionError:
                raise
            except Exception:
                log.exception("a stream failed", extra={"requestId": caller.request_id})
                await response.write(frames.failure(RestError(500, "Unexpected error.", type="server_error")))
                await response.write(frames.terminator)
            await response.write_eof()
    except ConnectionError:
        pass  # the client left while we wrote; leaving the block closed the gateway's stream
    # 499: the client closed the request before anything was sent (nginx's convention).
    return response if response is not None else web.Response(status=499)


async def _relay(
    response: web.StreamResponse, events: AsyncGenerator[GatewayStreamEvent], frames: Frames
) -> None:
    async for event in events:
        if isinstance(event, TextDelta):
            await response.write(frames.text(event.text))
        elif isinstance(event, ToolCallDelta | ToolCallDone):
            await response.write(frames.tool_call(event))
        elif isinstance(event, StreamEnd):
            await response.write(frames.end(event.finish_reason, event.usage))
            await events.aclose()
            await response.write(frames.terminator)
            return
        elif isinstance(event, StreamError | StreamReset):
            await events.aclose()
            if isinstance(event, StreamError):
                error = from_gateway(event.error)
            else:  # not sent to these doors (fail_over_after_text=False): never relay a mixed answer
                error = RestError(
                    502, "the model failed mid-answer", type="server_error", code="provider_error"
                )
            await response.write(frames.failure(error))
            await response.write(frames.terminator)
            return
