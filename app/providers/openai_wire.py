"""What every adapter of the OpenAI wire-format family shares: the base adapter binding a target to
its endpoint and the shared HTTP client, the error-envelope reader, and usage / finish-reason mapping.

Error envelopes seen in this family (each provider's API reference):
OpenAI, Azure and newer vLLM `{"error": {message, type, param, code}}`; Mistral and older vLLM flat
`{"object": "error", message, type, param, code}`; Mistral 422 `{"detail": [{loc, msg, type}]}`;
Mistral 401 and Azure API Management `{"message": …}`; Aleph Alpha `{"error": "…", "code": "…"}`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from app.domain.calls import ProviderError, ProviderErrorCode, Usage
from app.domain.enums import FinishReason
from app.providers.base import ProviderAdapter, ProviderTarget
from app.providers.http import ErrorReader, code_for_status, status_error
from app.providers.openai_endpoints import OpenAIEndpoint, resolve_endpoint
from app.providers.redact import safe_detail
from app.providers.runtime import ProviderRuntime
from app.providers.sse import SseEvent

_FINISH_REASONS = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "model_length": FinishReason.LENGTH,  # Mistral: the context window, not max_tokens, was reached
    "max_output_tokens": FinishReason.LENGTH,  # Responses incomplete_details.reason
    "content_filter": FinishReason.CONTENT_FILTER,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
}
_CONTEXT_TOO_LONG = re.compile(r"context length|context window|too large for model", re.IGNORECASE)
_CONTENT_FILTERED = frozenset({"content_filter", "content_policy_violation", "responsibleaipolicyviolation"})
_RATE_LIMITED = frozenset({"rate_limit_exceeded", "rate_limited", "rate_limit_error", "requests", "tokens"})


def finish_reason(value: Any) -> FinishReason:
    if value == "error":  # Mistral: generation broke off upstream
        raise ProviderError(ProviderErrorCode.UPSTREAM_ERROR, "the provider stopped with an error")
    return _FINISH_REASONS.get(value, FinishReason.STOP) if isinstance(value, str) else FinishReason.STOP


def parse_usage(raw: Any) -> Usage | None:
    """Chat/completions/embeddings count `prompt_tokens`/`completion_tokens`, Responses
    `input_tokens`/`output_tokens`; None when the object carries no usage (`"usage": null`)."""
    if not isinstance(raw, dict):  # decoded JSON: a dict check is cheaper than Mapping's, per chunk
        return None
    prompt = raw.get("prompt_tokens", raw.get("input_tokens"))
    completion = raw.get("completion_tokens", raw.get("output_tokens"))
    return Usage(input_tokens=int(prompt or 0), output_tokens=int(completion or 0))


def json_object(data: str | bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise malformed()
    return value


def malformed(message: str = "the provider sent a malformed response") -> ProviderError:
    return ProviderError(ProviderErrorCode.MALFORMED_RESPONSE, message)


def truncated() -> ProviderError:
    return ProviderError(ProviderErrorCode.TRUNCATED, "the provider stream ended early")


@dataclass(frozen=True, slots=True)
class ErrorFields:
    """The parts of an error envelope that say what went wrong."""

    message: str | None = None
    code: str | None = None
    kind: str | None = None  # OpenAI's `type`

    @classmethod
    def of(cls, payload: Any) -> ErrorFields:
        if not isinstance(payload, Mapping):
            return cls()
        inner = payload.get("error")
        if isinstance(inner, Mapping):
            payload = inner
        elif isinstance(inner, str):
            return cls(message=inner, code=_text(payload.get("code")))
        detail = payload.get("detail")
        message: str | None
        if isinstance(detail, list):  # validation errors: keep the messages, not the echoed input
            message = "; ".join(str(item.get("msg")) for item in detail if isinstance(item, Mapping))
        else:
            message = _text(payload.get("message")) or _text(detail)
        return cls(message=message, code=_text(payload.get("code")), kind=_text(payload.get("type")))

    def error_code(self, status: int | None) -> ProviderErrorCode:
        tags = {(self.code or "").lower(), (self.kind or "").lower()}
        if "context_length_exceeded" in tags or (
            status in (None, 400, 413, 422) and _CONTEXT_TOO_LONG.search(self.message or "")
        ):
            return ProviderErrorCode.CONTEXT_TOO_LONG
        if tags & _CONTENT_FILTERED:
            return ProviderErrorCode.CONTENT_FILTERED
        if status is not None:
            return code_for_status(status)
        if tags & _RATE_LIMITED:
            return ProviderErrorCode.RATE_LIMITED
        if self.code and self.code.isdigit() and len(self.code) == 3:  # Azure puts the status here
            return code_for_status(int(self.code))
        return ProviderErrorCode.UPSTREAM_ERROR

    @property
    def quota_exhausted(self) -> bool:
        """429 `insufficient_quota` looks like a rate limit but will not pass with time."""
        return "insufficient_quota" in ((self.code or "").lower(), (self.kind or "").lower())


def _text(value: Any) -> str | None:
    return str(value) if value is not None and value != "" else None


def error_reader(secrets: tuple[str, ...]) -> ErrorReader:
    """Reads a non-2xx answer of any envelope above into a ProviderError without leaking `secrets`."""

    def read(status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        try:
            fields = ErrorFields.of(orjson.loads(body))
        except orjson.JSONDecodeError:
            fields = ErrorFields(message=body.decode("utf-8", "replace").strip() or None)
        error = status_error(status, headers, fields.message, code=fields.error_code(status), secrets=secrets)
        should_retry = headers.get("x-should-retry")  # OpenAI's own verdict wins when given
        if should_retry in ("true", "false"):
            error.retryable = should_retry == "true"
        elif fields.quota_exhausted:
            error.retryable = False
        return error

    return read


def stream_error(payload: Any, secrets: tuple[str, ...]) -> ProviderError:
    """An error reported inside a 200 answer: a `data: {"error": …}` frame, a Responses `error`
    event or a failed response."""
    fields = ErrorFields.of(payload)
    message = "the provider reported an error"
    if fields.message:
        message += f": {safe_detail(fields.message, secrets)}"
    return ProviderError(fields.error_code(None), message)


class OpenAIWireAdapter(ProviderAdapter):
    """Base of the family: one target, its endpoint, the shared HTTP client."""

    def __init__(self, target: ProviderTarget, runtime: ProviderRuntime) -> None:
        super().__init__(target)
        self.runtime = runtime
        self._endpoint: OpenAIEndpoint | None = None
        self._secrets = target.credentials.secrets()
        self._read_error = error_reader(self._secrets)

    @property
    def endpoint(self) -> OpenAIEndpoint:
        # Resolved on first use so a misconfigured target fails its call with a ProviderError
        # (through the public methods' guarantees), not the adapter's construction.
        if self._endpoint is None:
            self._endpoint = resolve_endpoint(self.target)
        return self._endpoint

    async def _post(self, operation: str, body: Mapping[str, Any]) -> dict[str, Any]:
        endpoint = self.endpoint
        answer = await self.runtime.http.post_json(
            endpoint.url(operation), body, headers=endpoint.headers, read_error=self._read_error
        )
        if not isinstance(answer, dict):
            raise malformed()
        if answer.get("error"):  # some compatible servers report errors with status 200
            raise stream_error(answer, self._secrets)
        return answer

    @asynccontextmanager
    async def _sse(self, operation: str, body: Mapping[str, Any]) -> AsyncIterator[AsyncIterator[SseEvent]]:
        """The SSE events of a streamed POST. Leaving the block closes the upstream response, and
        with it the connection if the stream was not read to its end."""
        endpoint = self.endpoint
        headers = {**endpoint.headers, "accept": "text/event-stream"}
        http, url, read_error = self.runtime.http, endpoint.url(operation), self._read_error
        async with (
            http.open("POST", url, headers=headers, body=body, read_error=read_error) as response,
            aclosing(http.iter_sse(response)) as events,
        ):
            yield events
