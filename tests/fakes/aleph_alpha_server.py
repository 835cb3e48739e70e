"""A fake Aleph Alpha / PhariaAI inference API on 127.0.0.1, faithful to the wire format of its
API reference: `POST /complete` (JSON, or an SSE stream of
`stream_chunk` / `stream_summary` / `completion_summary` frames ending with EOF, no `[DONE]`) and
the OpenAI-compatible `POST /chat/completions` (usage-only last chunk, then `[DONE]`); both also
under `/v1/` as PhariaAI hosts serve them. Errors use the flat `{"error": "…", "code": "…"}` envelope.
It answers 401 unless the bearer token is `TOKEN`.

The chat endpoint takes OpenAI's tools, image parts and `response_format` json_schema, as the real
one does (the aleph-alpha-client cassettes `test_can_chat_with_tools*`, `test_can_chat_with_images`,
`test_response_format_json_schema` record them), and answers by `tool_rules` in vLLM's shapes (ids
`chatcmpl-tool-…`, `content: ""` beside streamed `tool_calls`). A model without a capability
(`missing_capabilities`) is refused with the flat `MISSING_CAPABILITY` error the API gives a model
that cannot chat.

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
from tests.fakes.openai_tools import call_id, read_chat
from tests.fakes.tool_rules import Answer, Asked, Rejected, decide, pieces_of

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
    tool_calls_per_answer: int = 1  # parallel tool calls in one chat answer
    argument_chunks: int = 3  # streamed fragments of each call's arguments
    missing_capabilities: set[str] = field(default_factory=set)  # of "tools", "vision", "structured_output"
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

    def _refusal(self, asked: Asked) -> web.Response | None:
        used = {"tools": bool(asked.tools), "vision": bool(asked.images)}
        used["structured_output"] = asked.schema is not None or asked.json_mode
        if missing := [name for name, on in used.items() if on and name in self.missing_capabilities]:
            message = (
                "Sadly the model you chose does not provide that capability: This model does not support "
                f"{missing[0].replace('_', ' ')}. You could try to choose another model."
            )
            return _error(400, message, "MISSING_CAPABILITY")
        return None

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body, answer = await self._prelude(request)
        if answer is not None:
            return answer
        try:
            asked = read_chat(body, "aleph")
        except Rejected as rejected:
            return _error(400, rejected.message, "INVALID_REQUEST")
        if (refusal := self._refusal(asked)) is not None:
            return refusal
        said = decide(asked, self.reply, self.tool_calls_per_answer)
        usage = {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
        }
        common = {"id": "chatcmpl-fake", "created": 1754484241, "model": body.get("model")}
        finish = "tool_calls" if said.calls else "stop"
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": None if said.calls else said.text}
            if said.calls:
                message["tool_calls"] = [
                    {
                        "id": call_id("aleph", i),
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments_json},
                    }
                    for i, c in enumerate(said.calls)
                ]
            choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            return web.json_response(
                {**common, "object": "chat.completion", "choices": [choice], "usage": usage}
            )
        chunk = {**common, "object": "chat.completion.chunk", "usage": None}
        deltas = (
            _tool_deltas(said, self.argument_chunks)
            if said.calls
            else [{"content": p} for p in split_words(said.text, self.chunks)]
        )
        frames = [
            {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
            *({**chunk, "choices": [{"index": 0, "delta": d}]} for d in deltas),
            {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
            {**chunk, "choices": [], "usage": usage},
        ]
        encoded = [_sse(f) for f in frames]
        if not self.omit_terminal:
            encoded.append(b"data: [DONE]\n\n")
        return await self.send(request, encoded, _EVENT_STREAM)


def _tool_deltas(said: Answer, argument_chunks: int) -> list[dict[str, Any]]:
    """vLLM's streamed calls: id, type and name first, then the arguments in fragments."""
    deltas = []
    for index, call in enumerate(said.calls):
        head = {
            "id": call_id("aleph", index),
            "index": index,
            "type": "function",
            "function": {"name": call.name},
        }
        deltas.append({"content": "", "tool_calls": [head]})
        for piece in pieces_of(call.arguments_json, argument_chunks):
            deltas.append({"content": "", "tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    return deltas


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
