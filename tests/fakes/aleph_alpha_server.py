"""A fake Aleph Alpha / PhariaAI inference API on 127.0.0.1, faithful to the wire format of its
API reference: `POST /complete` (JSON, or an SSE stream of
`stream_chunk` / `stream_summary` / `completion_summary` frames ending with EOF, no `[DONE]`) and
the OpenAI-compatible `POST /chat/completions` (usage-only last chunk, then `[DONE]`); both also
under `/v1/` as PhariaAI hosts serve them. Errors use the flat `{"error": "…", "code": "…"}` envelope.
It answers 401 unless the bearer token is `TOKEN`.

    async with aleph_alpha_fake() as fake:
        fake.error = (429, "Too many requests", "TOO_MANY_REQUESTS")
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.common import FakeServer, RawReply, split_words

TOKEN = "aa-test-token-SECRET-0123456789"
_EVENT_STREAM = {"content-type": "text/event-stream"}


@dataclass
class AlephAlphaFake(FakeServer):
    """Also has the switches and observations of `FakeServer` (`delay`, `stall_after`, `requests`, …)."""

    # What the model answers.
    reply: str = "Hello from the fake Aleph Alpha model."
    chunks: int = 3  # stream chunks the reply is split into
    finish_reason: str = "end_of_text"  # /complete's; chat answers "stop"
    input_tokens: int = 5
    output_tokens: int = 8
    raw: RawReply | None = None  # answer with these bytes instead (written in `write_size` pieces)
    # Failure switches.
    error: tuple[int, str, str] | None = None  # (status, error, code) as a flat error envelope
    error_headers: dict[str, str] = field(default_factory=dict)
    omit_terminal: bool = False  # /complete without completion_summary, chat without [DONE]

    async def _prelude(self, request: web.Request) -> tuple[dict[str, Any], web.StreamResponse | None]:
        """Records the request; returns its body and, when the fake must not answer normally, the
        response to send instead."""
        body = await self.record(request) or {}
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.raw is not None:
            return body, await self.send(request, [self.raw.body], self.raw.headers, self.raw.status)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return body, _error(401, "Unauthorized: the token is not valid", "UNAUTHENTICATED")
        if self.error is not None:
            status, message, code = self.error
            return body, _error(status, message, code, self.error_headers)
        return body, None

    async def complete(self, request: web.Request) -> web.StreamResponse:
        body, answer = await self._prelude(request)
        if answer is not None:
            return answer
        if not body.get("stream"):
            return web.json_response(
                {
                    "completions": [
                        {
                            "index": 0,
                            "completion": self.reply,
                            "raw_completion": self.reply,
                            "finish_reason": self.finish_reason,
                        }
                    ],
                    "model_version": "2022-04",
                    "num_tokens_prompt_total": self.input_tokens,
                    "num_tokens_generated": self.output_tokens,
                }
            )
        pieces = split_words(self.reply, self.chunks)
        frames = [{"type": "stream_chunk", "index": 0, "completion": p} for p in pieces]
        frames.append(
            {
                "type": "stream_summary",
                "index": 0,
                "model_version": "2022-04",
                "finish_reason": self.finish_reason,
            }
        )
        if not self.omit_terminal:
            frames.append(
                {
                    "type": "completion_summary",
                    "num_tokens_prompt_total": self.input_tokens,
                    "num_tokens_generated": self.output_tokens,
                }
            )
        return await self.send(request, [_sse(f) for f in frames], _EVENT_STREAM)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body, answer = await self._prelude(request)
        if answer is not None:
            return answer
        usage = {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
        }
        common = {"id": "chatcmpl-fake", "created": 1754484241, "model": body.get("model")}
        if not body.get("stream"):
            message = {"role": "assistant", "content": self.reply}
            choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
            return web.json_response(
                {**common, "object": "chat.completion", "choices": [choice], "usage": usage}
            )
        chunk = {**common, "object": "chat.completion.chunk", "usage": None}
        pieces = split_words(self.reply, self.chunks)
        frames = [
            {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
            *({**chunk, "choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces),
            {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {**chunk, "choices": [], "usage": usage},
        ]
        encoded = [_sse(f) for f in frames]
        if not self.omit_terminal:
            encoded.append(b"data: [DONE]\n\n")
        return await self.send(request, encoded, _EVENT_STREAM)


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _error(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message, "code": code}, status=status, headers=headers)


@asynccontextmanager
async def aleph_alpha_fake() -> AsyncIterator[AlephAlphaFake]:
    fake = AlephAlphaFake()
    app = web.Application()
    for prefix in ("", "/v1"):
        app.router.add_post(f"{prefix}/complete", fake.complete)
        app.router.add_post(f"{prefix}/chat/completions", fake.chat)
    async with fake.serve(app):
        yield fake
