"""A fake Anthropic Messages API on 127.0.0.1, faithful to the wire format of its
API reference: `POST /v1/messages` checked like the real API
(`x-api-key`, `anthropic-version`, required `max_tokens`, no system role in `messages`), JSON answers
or named SSE events padded with trailing spaces as the real API sends them, ending in
`message_stop`; errors as `{"type":"error","error":{type,message},"request_id"}` with `request-id`,
`x-should-retry` and, on 429, `retry-after`; mid-stream `event: error` under HTTP 200. Tools,
images and structured output follow `tool_rules`, in the shapes `anthropic_tools` reads and writes.

    async with anthropic_fake() as fake:
        fake.rate_limited(retry_after="7")
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.anthropic_tools import read_messages, tool_use_blocks, tool_use_events
from tests.fakes.common import FakeServer, RawReply, split_text
from tests.fakes.tool_rules import Answer, Rejected, decide

API_KEY = "sk-ant-test-SECRET123456789"
_request_ids = itertools.count(1)


@dataclass
class AnthropicFake(FakeServer):
    """Also has the switches and observations of `FakeServer` (`delay`, `stall_after`, `requests`, …)."""

    api_key: str = API_KEY
    # What the model answers.
    reply: str = "Hello from the fake Claude."
    chunks: int = 3  # text deltas the reply is split into
    stop_reason: str = "end_turn"
    input_tokens: int = 21
    output_tokens: int = 9
    raw: RawReply | None = None  # answer with these bytes instead (written in `write_size` pieces)
    tool_calls_per_answer: int = 1  # tool_use blocks in one answer (unless parallel use is disabled)
    argument_chunks: int = 3  # input_json_delta fragments of each tool_use block
    tool_preamble: str | None = None  # a text block before the tool_use blocks ("I'll check…")
    # Failure switches.
    error: tuple[int, str, str] | None = None  # (status, error.type, message) instead of an answer
    error_headers: dict[str, str] = field(default_factory=dict)
    stream_error: tuple[str, str] | None = None  # (error.type, message) as `event: error` mid-stream
    malformed_frame: bool = False  # a frame whose data is not JSON, after the first delta
    omit_message_stop: bool = False

    # --- switches for the usual failures -------------------------------------------------------

    def rate_limited(self, retry_after: str = "7") -> None:
        self.error = (429, "rate_limit_error", "Number of request tokens has exceeded your rate limit.")
        self.error_headers = {"retry-after": retry_after}

    def server_error(self) -> None:
        self.error = (500, "api_error", "Internal server error")

    def overloaded(self) -> None:
        self.error = (529, "overloaded_error", "Overloaded")

    def overloaded_mid_stream(self) -> None:
        self.stream_error = ("overloaded_error", "Overloaded")

    def refusal(self) -> None:
        self.reply, self.stop_reason = "I can't help with that.", "refusal"

    # --- the endpoint ----------------------------------------------------------------------------

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.raw is not None:
            # Recorded JSON answers carry their content-length; SSE answers were chunked.
            return await self.send(request, [self.raw.body], self.raw.headers, self.raw.status)
        if (rejection := self._check(request, body)) is not None:
            return _error_response(*rejection)
        if self.error is not None:
            return _error_response(*self.error, headers=self.error_headers)
        try:
            said = decide(read_messages(body), self.reply, self.tool_calls_per_answer)
        except Rejected as rejected:
            return _error_response(400, "invalid_request_error", rejected.message)
        if body.get("stream"):
            headers = {
                "content-type": "text/event-stream; charset=utf-8",
                "cache-control": "no-cache",
                "request-id": _request_id(),
            }
            return await self.send(request, self._frames(body, said), headers)
        return web.json_response(self._message(body, said), headers={"request-id": _request_id()})

    def _check(self, request: web.Request, body: Any) -> tuple[int, str, str] | None:
        """What the real API refuses before it answers."""
        if request.headers.get("x-api-key") != self.api_key:
            return 401, "authentication_error", "invalid x-api-key"
        if request.headers.get("anthropic-version") is None:
            return 400, "invalid_request_error", "anthropic-version: header is required"
        if not isinstance(body, dict) or "max_tokens" not in body:
            return 400, "invalid_request_error", "max_tokens: Field required"
        for index, message in enumerate(body.get("messages", [])):
            if message.get("role") not in ("user", "assistant"):
                role = message.get("role")
                return 400, "invalid_request_error", f'messages.{index}.role: unexpected role "{role}"'
        return None

    def _usage(self, output_tokens: int) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }

    def _text(self, said: Answer) -> str | None:
        """The text block's text: the answer's, or the preamble before tool calls (None: no block)."""
        return self.tool_preamble if said.calls else said.text

    def _message(self, body: dict[str, Any], said: Answer, *, streaming: bool = False) -> dict[str, Any]:
        text = self._text(said)
        content = ([] if text is None else [{"type": "text", "text": text}]) + tool_use_blocks(said)
        return {
            "model": body["model"],
            "id": "msg_fake_0001",
            "type": "message",
            "role": "assistant",
            "content": [] if streaming else content,
            "stop_reason": None if streaming else self._stop_reason(said),
            "stop_sequence": None,
            "usage": self._usage(1 if streaming else self.output_tokens),
        }

    def _stop_reason(self, said: Answer) -> str:
        return "tool_use" if said.calls else self.stop_reason

    def _frames(self, body: dict[str, Any], said: Answer) -> list[bytes]:
        start = {"type": "message_start", "message": self._message(body, said, streaming=True)}
        block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        text = self._text(said)
        frames = [_event("message_start", start)]
        if text is not None:
            frames.append(_event("content_block_start", block))
        frames.append(b'event: ping\ndata: {"type": "ping"}\n\n')
        for index, piece in enumerate(split_text(text or "", self.chunks)):
            text = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
            frames.append(_event("content_block_delta", text))
            if index == 0 and self.malformed_frame:
                frames.append(b'event: content_block_delta\ndata: {"type":"content_block_delta","ind\n\n')
            if index == 0 and self.stream_error:
                error_type, message = self.stream_error
                frames.append(
                    _event("error", {"type": "error", "error": {"type": error_type, "message": message}})
                )
                return frames
        if text is not None:
            frames.append(_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
        first = 0 if text is None else 1
        frames.extend(_event(*event) for event in tool_use_events(said, first, self.argument_chunks))
        end = {
            "type": "message_delta",
            "delta": {"stop_reason": self._stop_reason(said), "stop_sequence": None},
            "usage": self._usage(self.output_tokens),
        }
        frames.append(_event("message_delta", end))
        if not self.omit_message_stop:
            frames.append(_event("message_stop", {"type": "message_stop"}))
        return frames


def _request_id() -> str:
    return f"req_fake{next(_request_ids):020d}"


def _event(name: str, data: dict[str, Any]) -> bytes:
    # The real API pads every data line with trailing spaces (reference §3).
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}      \n\n".encode()


def _error_response(
    status: int, error_type: str, message: str, *, headers: dict[str, str] | None = None
) -> web.Response:
    request_id = _request_id()
    body = {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}
    retry = status in (408, 409, 429) or status >= 500
    return web.Response(
        status=status,
        body=json.dumps(body, separators=(",", ":")),
        headers={
            "content-type": "application/json",
            "request-id": request_id,
            "x-should-retry": "true" if retry else "false",
            **(headers or {}),
        },
    )


@asynccontextmanager
async def anthropic_fake() -> AsyncIterator[AnthropicFake]:
    fake = AnthropicFake()
    app = web.Application()
    app.router.add_post("/v1/messages", fake.messages)
    async with fake.serve(app):
        yield fake
