"""A fake of the OpenAI wire-format family on 127.0.0.1 (random port), faithful to
the wire formats of OpenAI, Azure OpenAI, Mistral and vLLM:

- Chat Completions, legacy completions, embeddings and the Responses API at any path ending in
  `chat/completions`, `completions`, `embeddings` or `responses` (so `/v1/…` and custom prefixes work);
- Azure OpenAI under `/openai/…`: deployment URLs `/openai/deployments/{name}/…` (404 without
  `api-version`, like Azure), deployment-less `/openai/responses?api-version=…` and v1 URLs
  `/openai/v1/…`; Azure's `prompt_filter_results` preamble chunk, `content_filter_results`, and
  `{"error": {"code": "<string>", …}}` errors;
- with `flavor="mistral"`: usage on the last content chunk (no usage-only chunk), 422 `{"detail": […]}`
  for OpenAI-only fields (`stream_options`, `max_completion_tokens`), flat
  `{"object": "error", …}` errors;
- OpenAI errors `{"error": {message, type, param, code}}` with `x-request-id`, `retry-after`,
  `retry-after-ms`; SSE frames `data: <json>\\n\\n` ending with `data: [DONE]` (Responses: named
  events, no `[DONE]`).

Every request is recorded (`requests`); `open_connections` counts the TCP connections the server
holds. Switches are fields of `OpenAIFake` (the timing ones come from `FakeServer`), set per test.
The scripted answer is deterministic: `reply` cut into `chunks` equal pieces, one piece per content
frame and per output token, cut short (finish `length`) when the request's token limit is smaller.
Tools, images and structured output follow `tool_rules` (tool calls, quoted tool results, described
images, JSON from the schema); `openai_tools` / `openai_responses_tools` read and write their shapes
and refuse malformed ones with the real API's 400s.

The end of this module holds small helpers the OpenAI-family tests share.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from app.domain.calls import ChatMessage
from app.domain.credentials import Credentials
from app.domain.enums import ApiType, ChatRole, ModelGroup, Provider
from app.providers.base import ChatRequest, ProviderTarget
from tests.fakes.common import FakeServer, split_text
from tests.fakes.openai_responses_tools import function_call_events, function_call_items, read_responses
from tests.fakes.openai_tools import read_chat, tool_call_deltas, tool_calls_message
from tests.fakes.tool_rules import Answer, Asked, Rejected, decide

TOKEN = "sk-test-SECRET123456789"
CREATED = 1727346142
_OPERATIONS = ("chat/completions", "completions", "embeddings", "responses")
_MISTRAL_UNKNOWN_FIELDS = ("stream_options", "max_completion_tokens")


@dataclass
class FakeError:
    """An error answer. `raw` replaces the flavour's envelope (APIM, HTML, …)."""

    status: int
    message: str
    type: str | None = None
    code: str | None = None
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None

    @classmethod
    def rate_limited(cls, retry_after: str | None = "7", retry_after_ms: str | None = None) -> FakeError:
        headers = {"retry-after": retry_after} if retry_after else {}
        if retry_after_ms:
            headers["retry-after-ms"] = retry_after_ms
        return cls(
            429,
            "Rate limit reached for gpt-4o in organization org-fake on tokens per min (TPM): "
            "Limit 30000, Requested 30601. Please try again in 1.202s.",
            type="tokens",
            code="rate_limit_exceeded",
            headers=headers,
        )

    @classmethod
    def insufficient_quota(cls) -> FakeError:
        return cls(
            429, "You exceeded your current quota.", type="insufficient_quota", code="insufficient_quota"
        )

    @classmethod
    def context_too_long(cls) -> FakeError:
        return cls(
            400,
            "This model's maximum context length is 8192 tokens. However, your messages resulted in "
            "8227 tokens. Please reduce the length of the messages.",
            type="invalid_request_error",
            code="context_length_exceeded",
            param="messages",
        )

    @classmethod
    def server_error(cls) -> FakeError:
        return cls(500, "The server had an error while processing your request.", type="server_error")

    @classmethod
    def overloaded(cls) -> FakeError:
        return cls(503, "The engine is currently overloaded, please try again later.", type="server_error")

    @classmethod
    def content_filtered(cls) -> FakeError:
        """Azure's prompt filter (the `innererror` is added for the Azure flavour)."""
        return cls(
            400,
            "The response was filtered due to the prompt triggering Azure OpenAI's content management "
            "policy.",
            code="content_filter",
            param="prompt",
        )


@dataclass
class OpenAIFake(FakeServer):
    flavor: str = "openai"  # or "mistral"; Azure is chosen by the /openai/… path
    # What the model answers.
    reply: str = "Hello from the fake OpenAI server."
    chunks: int = 4
    prompt_tokens: int = 12
    finish_reason: str = "stop"
    content_filter: bool = False  # the answer is cut by the completion filter after one piece
    embeddings_reversed: bool = False  # list embeddings in reverse index order
    tool_calls_per_answer: int = 1  # parallel tool calls in one answer (when the request allows them)
    argument_chunks: int = 3  # streamed fragments of each call's arguments (Mistral sends calls whole)
    interleave_tool_calls: bool = False  # stream parallel calls' fragments alternately, not in order
    raw: bytes | None = None  # answer 200 with exactly these bytes (replays)
    raw_content_type: str = "text/event-stream; charset=utf-8"
    expected_headers: dict[str, str] = field(default_factory=dict)  # else 401 echoing what came
    # Failure switches.
    error: FakeError | None = None
    error_times: int | None = None  # the error answers only the first N requests
    malformed_after: int | None = None  # frames written before a frame that is not JSON
    stream_error_after: int | None = None  # frames written before an in-stream error (then EOF)
    response_failed: bool = False  # Responses: end with `response.failed`
    omit_terminal: bool = False  # no `[DONE]` (Responses: no terminal event)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def open_connections(self) -> int:
        assert self._runner is not None
        assert self._runner.server is not None
        return len(self._runner.server.connections)

    async def wait_for_no_connections(self, seconds: float = 2.0) -> int:
        """The open-connection count once it reaches 0, or what it is after `seconds`."""
        for _ in range(int(seconds / 0.01)):
            if not self.open_connections:
                break
            await asyncio.sleep(0.01)
        return self.open_connections

    # --- request handling -------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        operation = next((op for op in _OPERATIONS if request.path.endswith("/" + op)), None)
        flavor = "azure" if request.path.startswith("/openai/") else self.flavor
        headers = {"x-request-id": f"req_{next(self._ids):012d}", "openai-version": "2020-10-01"}
        if failure := self._failure(request, operation, flavor, body):
            return _error_response(failure, flavor, headers)
        assert operation is not None
        assert isinstance(body, dict)
        if self.raw is not None:
            return await self.send(request, [self.raw], {**headers, "content-type": self.raw_content_type})
        try:
            asked = _READERS[operation](body, flavor) if operation in _READERS else Asked()
        except Rejected as rejected:
            refusal = FakeError(400, rejected.message, "invalid_request_error", rejected.code, rejected.param)
            return _error_response(refusal, flavor, headers)
        said = decide(asked, self.reply, self.tool_calls_per_answer)
        if not body.get("stream") or operation == "embeddings":
            answer = _ANSWERS[operation](self, body, flavor, said)
            return await self.send(request, [_json(answer)], {**headers, "content-type": "application/json"})
        frames = _STREAMS[operation](self, body, flavor, said)
        return await self.send(
            request, frames, {**headers, "content-type": "text/event-stream; charset=utf-8"}
        )

    def _failure(
        self, request: web.Request, operation: str | None, flavor: str, body: Any
    ) -> FakeError | None:
        presented = {name: request.headers.get(name, "") for name in self.expected_headers}
        if presented != self.expected_headers:
            shown = next(iter(presented.values()), "")
            return FakeError(
                401,
                f"Incorrect API key provided: {shown}.",
                type="invalid_request_error",
                code="invalid_api_key",
            )
        if self.error is not None and (self.error_times is None or len(self.requests) <= self.error_times):
            return self.error
        azure_versioned = "/openai/deployments/" in request.path or request.path == "/openai/responses"
        if operation is None or (azure_versioned and "api-version" not in request.query):
            return FakeError(404, "Resource not found", code="404")
        if not isinstance(body, dict):
            return FakeError(
                400, "We could not parse the JSON body of your request.", type="invalid_request_error"
            )
        if flavor == "mistral" and (unknown := [f for f in _MISTRAL_UNKNOWN_FIELDS if f in body]):
            return FakeError(422, "", raw=_json({"detail": [_extra_forbidden(name) for name in unknown]}))
        if "model" not in body and "/openai/deployments/" not in request.path:
            return FakeError(400, "you must provide a model parameter", type="invalid_request_error")
        if "stream_options" in body and not body.get("stream"):
            return FakeError(
                400,
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                type="invalid_request_error",
                param="stream_options",
            )
        return None

    # --- scripted answers -------------------------------------------------------------------

    def pieces(self, body: Mapping[str, Any], text: str) -> tuple[list[str], str]:
        """The pieces of `text` to send and the finish reason, honouring the request's token limit."""
        pieces = split_text(text, self.chunks)
        if self.content_filter:
            return pieces[:1], "content_filter"
        limit = body.get("max_completion_tokens") or body.get("max_tokens") or body.get("max_output_tokens")
        if isinstance(limit, int) and limit < len(pieces):
            return pieces[:limit], "length"
        return pieces, self.finish_reason

    def usage(self, completion_tokens: int) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": self.prompt_tokens + completion_tokens,
        }

    def finish_stream(self, frames: list[bytes], *, terminal: bytes, error: bytes) -> list[bytes]:
        """Applies the malformed / in-stream error / missing-terminal switches to a stream."""
        if self.malformed_after is not None:
            frames.insert(
                self.malformed_after, b'data: {"id":"chatcmpl-fake","choices":[{"delta":{"content":"br\n\n'
            )
        if self.stream_error_after is not None:
            return [*frames[: self.stream_error_after], error]
        return frames if self.omit_terminal else [*frames, terminal]


# --- Chat Completions and legacy completions ----------------------------------------------------


def _chat_answer(fake: OpenAIFake, body: dict[str, Any], flavor: str, said: Answer) -> dict[str, Any]:
    pieces, finish = fake.pieces(body, said.text)
    if said.calls:
        pieces, finish = [c.arguments_json for c in said.calls], "tool_calls"
    choice: dict[str, Any] = {"index": 0, "logprobs": None, "finish_reason": finish}
    if said.calls:
        choice["message"] = tool_calls_message(said, flavor)
        kind, prefix = "chat.completion", "chatcmpl"
    elif body.get("messages") is not None:
        choice["message"] = {"role": "assistant", "content": "".join(pieces), "refusal": None}
        kind, prefix = "chat.completion", "chatcmpl"
    else:
        choice["text"] = "".join(pieces)
        kind, prefix = "text_completion", "cmpl"
    answer: dict[str, Any] = {
        "id": f"{prefix}-fake0001",
        "object": kind,
        "created": CREATED,
        "model": body.get("model", "gpt-4o-2024-08-06"),
        "choices": [choice],
        "usage": fake.usage(len(pieces)),
    }
    if flavor == "azure":
        answer["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": _filter_results()}]
        choice["content_filter_results"] = _filter_results(filtered=finish == "content_filter")
    return answer


def _chat_stream(fake: OpenAIFake, body: dict[str, Any], flavor: str, said: Answer) -> list[bytes]:
    pieces, finish = fake.pieces(body, said.text)
    legacy = body.get("messages") is None
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    base: dict[str, Any] = {
        "id": "cmpl-fake0001" if legacy else "chatcmpl-fake0001",
        "object": "text_completion" if legacy else "chat.completion.chunk",
        "created": CREATED,
        "model": body.get("model", "gpt-4o-2024-08-06"),
    }
    if include_usage:
        base["usage"] = None

    def chunk(text: str | None, finish_reason: str | None = None, **delta: Any) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "logprobs": None, "finish_reason": finish_reason}
        if legacy:
            choice["text"] = text or ""
        else:
            choice["delta"] = {**delta, "content": text} if text is not None else delta
        if flavor == "azure":
            choice["content_filter_results"] = _filter_results(filtered=finish_reason == "content_filter")
        return {**base, "choices": [choice]}

    chunks: list[dict[str, Any]] = []
    if flavor == "azure":
        chunks.append(
            {
                "choices": [],
                "created": 0,
                "id": "",
                "model": "",
                "object": "",
                "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": _filter_results()}],
            }
        )
    if said.calls:
        pieces, finish = [c.arguments_json for c in said.calls], "tool_calls"
        deltas = tool_call_deltas(said, flavor, fake.argument_chunks, fake.interleave_tool_calls)
        chunks.extend(chunk(None, **delta) for delta in deltas)
    else:
        chunks.extend([] if legacy else [chunk("", role="assistant", refusal=None)])
        chunks.extend(chunk(piece) for piece in pieces)
    if flavor == "mistral" and said.calls:  # the whole calls come with finish_reason and usage
        chunks[-1]["choices"][0]["finish_reason"] = finish
        chunks[-1]["usage"] = fake.usage(len(pieces))
    elif flavor == "mistral":  # the last chunk carries finish_reason and usage together
        chunks.append({**chunk("", finish), "usage": fake.usage(len(pieces))})
    else:
        chunks.append(chunk(None, finish))
        if include_usage:
            chunks.append({**base, "choices": [], "usage": fake.usage(len(pieces))})
    error = {
        "error": {"message": "The server had an error while processing your request.", "type": "server_error"}
    }
    return fake.finish_stream([_data(c) for c in chunks], terminal=b"data: [DONE]\n\n", error=_data(error))


# --- Responses ----------------------------------------------------------------------------------


def _response_object(
    fake: OpenAIFake, body: dict[str, Any], pieces: list[str], finish: str, said: Answer
) -> dict[str, Any]:
    incomplete = finish in ("length", "content_filter")
    message = {
        "id": "msg_fake0001",
        "type": "message",
        "status": "incomplete" if incomplete else "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "".join(pieces)}],
    }
    return {
        "id": "resp_fake0001",
        "object": "response",
        "created_at": CREATED,
        "status": "incomplete" if incomplete else "completed",
        "error": None,
        "incomplete_details": (
            {"reason": "max_output_tokens" if finish == "length" else "content_filter"}
            if incomplete
            else None
        ),
        "instructions": body.get("instructions"),
        "model": body.get("model", "gpt-4.1"),
        "output": function_call_items(said, done=True) if said.calls else [message],
        "usage": {
            "input_tokens": fake.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": len(pieces),
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": fake.prompt_tokens + len(pieces),
        },
    }


def _responses_answer(fake: OpenAIFake, body: dict[str, Any], flavor: str, said: Answer) -> dict[str, Any]:
    pieces, finish = fake.pieces(body, said.text)
    answer = _response_object(fake, body, pieces, finish, said)
    if fake.response_failed:
        answer.update(status="failed", output=[], error=_failed_error())
    return answer


def _responses_stream(fake: OpenAIFake, body: dict[str, Any], flavor: str, said: Answer) -> list[bytes]:
    pieces, finish = fake.pieces(body, said.text)
    final = _response_object(fake, body, pieces, finish, said)
    started = {**final, "status": "in_progress", "incomplete_details": None, "output": [], "usage": None}
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": started}),
        ("response.in_progress", {"response": started}),
    ]
    if said.calls:
        events += function_call_events(said, fake.argument_chunks)
    else:
        events += _message_events(final["output"][0], pieces)
    if fake.response_failed:
        terminal = ("response.failed", {"response": {**final, "status": "failed", "error": _failed_error()}})
    else:
        terminal = (
            "response.completed" if final["status"] == "completed" else "response.incomplete",
            {"response": final},
        )
    error = ("error", {"code": "server_error", "message": "The server had an error.", "param": None})
    frames = [_event(name, data, seq) for seq, (name, data) in enumerate(events)]
    return fake.finish_stream(
        frames, terminal=_event(*terminal, len(frames)), error=_event(*error, len(frames))
    )


def _message_events(message: dict[str, Any], pieces: list[str]) -> list[tuple[str, dict[str, Any]]]:
    item = {
        "id": "msg_fake0001",
        "type": "message",
        "status": "in_progress",
        "content": [],
        "role": "assistant",
    }
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
    where = {"item_id": "msg_fake0001", "output_index": 0, "content_index": 0}
    text = "".join(pieces)
    return [
        ("response.output_item.added", {"item": item, "output_index": 0}),
        ("response.content_part.added", {**where, "part": part}),
        *(
            ("response.output_text.delta", {**where, "delta": p, "logprobs": [], "obfuscation": "fyy9Vfz7II"})
            for p in pieces
        ),
        ("response.output_text.done", {**where, "text": text, "logprobs": []}),
        ("response.content_part.done", {**where, "part": {**part, "text": text}}),
        ("response.output_item.done", {"item": message, "output_index": 0}),
    ]


def _failed_error() -> dict[str, str]:
    return {"code": "server_error", "message": "The model failed to generate a response."}


# --- Embeddings ---------------------------------------------------------------------------------


def _embeddings_answer(fake: OpenAIFake, body: dict[str, Any], flavor: str, said: Answer) -> dict[str, Any]:
    texts = body.get("input")
    texts = [texts] if isinstance(texts, str) else list(texts or [])
    data = [
        {"object": "embedding", "index": i, "embedding": embedding_for(text)} for i, text in enumerate(texts)
    ]
    if fake.embeddings_reversed:
        data.reverse()
    tokens = sum(len(text.split()) for text in texts)
    return {
        "object": "list",
        "data": data,
        "model": body.get("model"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def embedding_for(text: str) -> list[float]:
    """The fake's deterministic vector for `text`."""
    return [float(len(text)), float(sum(map(ord, text)) % 97), 0.25]


_ANSWERS = {
    "chat/completions": _chat_answer,
    "completions": _chat_answer,
    "responses": _responses_answer,
    "embeddings": _embeddings_answer,
}
_STREAMS = {
    "chat/completions": _chat_stream,
    "completions": _chat_stream,
    "responses": _responses_stream,
}
_READERS = {"chat/completions": read_chat, "responses": lambda body, flavor: read_responses(body)}


# --- wire helpers -------------------------------------------------------------------------------


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _data(value: Any) -> bytes:
    return b"data: " + _json(value) + b"\n\n"


def _event(name: str, data: dict[str, Any], sequence_number: int) -> bytes:
    payload = {"type": name, **data, "sequence_number": sequence_number}
    return f"event: {name}\n".encode() + _data(payload)


def _filter_results(*, filtered: bool = False) -> dict[str, Any]:
    safe = {"filtered": False, "severity": "safe"}
    return {
        "hate": {"filtered": filtered, "severity": "high" if filtered else "safe"},
        "self_harm": safe,
        "sexual": safe,
        "violence": safe,
    }


def _extra_forbidden(name: str) -> dict[str, Any]:
    return {
        "type": "extra_forbidden",
        "loc": ["body", name],
        "msg": "Extra inputs are not permitted",
        "input": None,
    }


def _error_response(error: FakeError, flavor: str, headers: Mapping[str, str]) -> web.Response:
    if error.raw is not None:
        body = error.raw
    elif flavor == "mistral":
        body = _json(
            {
                "object": "error",
                "message": error.message,
                "type": error.type,
                "param": error.param,
                "code": error.code,
            }
        )
    elif flavor == "azure":
        inner: dict[str, Any] = {
            "code": error.code or str(error.status),
            "message": error.message,
            "param": error.param,
        }
        if error.code == "content_filter":
            inner["status"] = error.status
            inner["innererror"] = {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": _filter_results(filtered=True),
            }
        body = _json({"error": inner})
    else:
        body = _json(
            {
                "error": {
                    "message": error.message,
                    "type": error.type,
                    "param": error.param,
                    "code": error.code,
                }
            }
        )
    return web.Response(
        status=error.status,
        body=body,
        headers={**headers, "content-type": "application/json", **error.headers},
    )


@asynccontextmanager
async def openai_fake_server(**switches: Any) -> AsyncIterator[OpenAIFake]:
    fake = OpenAIFake(**switches)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    async with fake.serve(app):
        yield fake


# --- test helpers -------------------------------------------------------------------------------

CHAT = ChatRequest(
    messages=(
        ChatMessage(ChatRole.USER, "What is the capital of France?"),
        ChatMessage(ChatRole.ASSISTANT, "Paris."),
        ChatMessage(ChatRole.USER, "And of Spain?"),
    ),
    system_prompt="You are terse.",
    temperature=0.2,
    max_tokens=64,
)


def make_target(
    provider: Provider,
    model_url: str | None,
    *,
    model: str = "gpt-4o-mini",
    group: ModelGroup = ModelGroup.CHAT,
    api_type: ApiType = ApiType.CHAT_COMPLETION,
    settings: Mapping[str, str] | None = None,
    credentials: Credentials | None = None,
) -> ProviderTarget:
    return ProviderTarget(
        provider=provider,
        provider_model_id=model,
        model_group=group,
        api_type=api_type,
        model_url=model_url,
        settings=dict(settings or {}),
        credentials=credentials or Credentials(token=TOKEN),
    )


def assert_no_secret(error: BaseException | None, secret: str = TOKEN) -> None:
    assert error is not None
    for text in (str(error), repr(error), getattr(error, "message", "")):
        assert secret not in text
        assert not re.search(re.escape(secret[-8:]), text)
