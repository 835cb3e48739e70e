"""Anthropic Messages API (`POST {base}/v1/messages`), plain and streamed.

Factory: `anthropic_adapter(target, runtime) -> ProviderAdapter` for `Provider.ANTHROPIC` chat models.
`modelUrl` is the API base (default https://api.anthropic.com; `…/v1` and the full `…/v1/messages`
endpoint are accepted too); the setting `customModel` overrides the provider model id. Anthropic has
no embeddings endpoint, so `embed` fails with BAD_REQUEST.

Wire notes (reference §3): the system prompt is the top-level `system` parameter, never a message;
`max_tokens` is required; stream events are named and end with `message_stop`; errors, including a
mid-stream `event: error` under HTTP 200, are classified by `error.type`. Tools, images and
structured output (a forced tool): see `anthropic_messages` and `tool_use`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

import orjson

from app.domain.calls import (
    Finished,
    ProviderError,
    ProviderErrorCode,
    StreamEvent,
    Usage,
    UsageUpdate,
)
from app.domain.enums import FinishReason
from app.providers.anthropic_messages import completion_of, messages_body
from app.providers.base import ChatRequest, Completion, ProviderAdapter, ProviderTarget
from app.providers.http import ErrorReader, status_error
from app.providers.redact import safe_detail
from app.providers.runtime import ProviderRuntime
from app.providers.tool_use import StreamedBlocks, plan_tools

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"

_CODE_BY_ERROR_TYPE = {
    "invalid_request_error": ProviderErrorCode.BAD_REQUEST,
    "authentication_error": ProviderErrorCode.AUTH_FAILED,
    "permission_error": ProviderErrorCode.AUTH_FAILED,
    "billing_error": ProviderErrorCode.AUTH_FAILED,  # the account, not the request, is at fault
    "not_found_error": ProviderErrorCode.BAD_REQUEST,
    "request_too_large": ProviderErrorCode.BAD_REQUEST,
    "rate_limit_error": ProviderErrorCode.RATE_LIMITED,
    "api_error": ProviderErrorCode.UPSTREAM_ERROR,
    "timeout_error": ProviderErrorCode.TIMEOUT,
    "overloaded_error": ProviderErrorCode.OVERLOADED,
}
# invalid_request_error messages that mean the input does not fit the model's context window.
_CONTEXT_OVERFLOW_MARKERS = ("prompt is too long", "exceed context limit", "context window")

_INPUT_TOKEN_FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")

_FINISH_BY_STOP_REASON = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "pause_turn": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
}


def anthropic_adapter(target: ProviderTarget, runtime: ProviderRuntime) -> ProviderAdapter:
    return AnthropicAdapter(target, runtime)


class AnthropicAdapter(ProviderAdapter):
    def __init__(self, target: ProviderTarget, runtime: ProviderRuntime) -> None:
        super().__init__(target)
        self._http = runtime.http
        self._url = messages_url(target.model_url)
        self._headers = {"anthropic-version": API_VERSION}
        if target.credentials.token:
            self._headers["x-api-key"] = target.credentials.token
        self._read_error = anthropic_error_reader(target.credentials.secrets())

    async def _complete(self, request: ChatRequest) -> Completion:
        plan = plan_tools(request)
        body = messages_body(self.target, request, plan)
        data = await self._http.post_json(self._url, body, headers=self._headers, read_error=self._read_error)
        return completion_of(data, plan, _finish_reason(data.get("stop_reason")), _usage(data))

    async def _stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent]:
        plan = plan_tools(request)
        body = {**messages_body(self.target, request, plan), "stream": True}
        blocks = StreamedBlocks(plan.answer_tool)
        input_tokens = output_tokens = 0
        finish = FinishReason.STOP
        async with (
            self._http.open(
                "POST", self._url, body=body, headers=self._headers, read_error=self._read_error
            ) as response,
            aclosing(self._http.iter_sse(response)) as events,
        ):
            async for event in events:
                payload = orjson.loads(event.data)
                kind = payload.get("type")
                if kind in ("content_block_start", "content_block_delta"):
                    if (found := _block_event(payload, blocks)) is not None:
                        yield found
                elif kind == "message_start":
                    usage = payload["message"].get("usage") or {}
                    input_tokens = _input_tokens(usage)
                    output_tokens = int(usage.get("output_tokens") or 0)
                    yield UsageUpdate(Usage(input_tokens, output_tokens))
                elif kind == "message_delta":
                    finish = _finish_reason(payload["delta"].get("stop_reason"))
                    usage = payload.get("usage") or {}
                    if "input_tokens" in usage:  # newer responses repeat the (final) input count
                        input_tokens = _input_tokens(usage)
                    output_tokens = int(usage.get("output_tokens") or output_tokens)  # cumulative
                    yield UsageUpdate(Usage(input_tokens, output_tokens))
                elif kind == "message_stop":
                    break
                elif kind == "error":
                    raise stream_error(payload, self.target.credentials.secrets())
                # ping, content_block_stop and event types added later carry nothing we use.
            else:
                raise ProviderError(
                    ProviderErrorCode.TRUNCATED, "the provider stream ended before message_stop"
                )
        # Announced after the response is closed, so the connection is released before the caller
        # moves on.
        closing, finish = blocks.finish(finish)
        for delta in closing:
            yield delta
        yield Finished(finish)


def _block_event(payload: dict[str, Any], blocks: StreamedBlocks) -> StreamEvent | None:
    """A text or tool-call piece from a content block's start or delta (thinking is left out)."""
    if payload["type"] == "content_block_start":
        block = payload["content_block"]
        if block.get("type") != "tool_use":
            return None
        return blocks.start(payload["index"], block["id"], block["name"])  # input: the deltas
    delta = payload["delta"]
    if delta.get("type") == "text_delta":
        return blocks.text(delta["text"])
    if delta.get("type") == "input_json_delta":
        return blocks.input(payload["index"], delta["partial_json"])
    return None


def messages_url(model_url: str | None) -> str:
    base = (model_url or DEFAULT_BASE_URL).rstrip("/")
    if base.endswith("/v1/messages"):
        return base
    if base.endswith("/v1"):
        return f"{base}/messages"
    return f"{base}/v1/messages"


def anthropic_error_reader(secrets: tuple[str, ...]) -> ErrorReader:
    def read(status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        error_type, message = _error_fields(body)
        return status_error(status, headers, message, code=_error_code(error_type, message), secrets=secrets)

    return read


def stream_error(payload: dict[str, Any], secrets: tuple[str, ...]) -> ProviderError:
    """An `event: error` inside a 200 stream: only `error.type` says what went wrong."""
    error = payload.get("error") or {}
    error_type, message = error.get("type"), error.get("message")
    code = _error_code(error_type, message) or ProviderErrorCode.UPSTREAM_ERROR
    detail = safe_detail(message or error_type or "unknown error", secrets)
    return ProviderError(code, f"provider failed mid-stream: {detail}")


def _error_fields(body: bytes) -> tuple[str | None, str | None]:
    """`error.type` and `error.message` from `{"type":"error","error":{…}}`, if the body is that."""
    try:
        error = orjson.loads(body)["error"]
        return error.get("type"), error.get("message")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, body.decode("utf-8", "replace")[:500] or None


def _error_code(error_type: str | None, message: str | None) -> ProviderErrorCode | None:
    if error_type == "invalid_request_error" and message:
        lowered = message.lower()
        if any(marker in lowered for marker in _CONTEXT_OVERFLOW_MARKERS):
            return ProviderErrorCode.CONTEXT_TOO_LONG
    return _CODE_BY_ERROR_TYPE.get(error_type or "")


def _finish_reason(stop_reason: str | None) -> FinishReason:
    return _FINISH_BY_STOP_REASON.get(stop_reason or "", FinishReason.STOP)


def _input_tokens(usage: dict[str, Any]) -> int:
    # `input_tokens` excludes prompt-cache reads and writes, which were input all the same.
    return sum(int(usage.get(name) or 0) for name in _INPUT_TOKEN_FIELDS)


def _usage(message: dict[str, Any]) -> Usage:
    usage = message.get("usage") or {}
    return Usage(_input_tokens(usage), int(usage.get("output_tokens") or 0))
