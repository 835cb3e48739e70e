"""Google's Gemini wire format (`generateContent`, `streamGenerateContent?alt=sse`, embeddings), spoken
by the Gemini API (`Provider.GOOGLE_GENAI`) and Vertex AI (`Provider.GOOGLE_VERTEX_AI`).

Factory: `google_adapter(target, runtime) -> ProviderAdapter`. The provider picks the connection
(URL and authentication, see `google_auth`), the model group picks the adapter: `GeminiChatAdapter`
for chat and completion models; for embedding models `GeminiEmbeddingAdapter` (Gemini API,
`:batchEmbedContents`) or `VertexEmbeddingAdapter` (Vertex AI, `:predict`).

Wire notes (reference §4): roles are `user` and `model`, the system prompt is `systemInstruction`;
the stream is SSE with CRLF and no end marker (EOF ends it, after a chunk with `finishReason`), and
every chunk repeats `usageMetadata`; errors are google.rpc.Status objects, also as a stream chunk.
Messages, tools, images and structured output are mapped by `gemini_messages`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import orjson

from app.domain.calls import (
    Finished,
    ProviderError,
    ProviderErrorCode,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
    UsageUpdate,
)
from app.domain.enums import FinishReason, ModelGroup, Provider
from app.providers.base import (
    ChatRequest,
    Completion,
    Embeddings,
    EmbedRequest,
    ProviderAdapter,
    ProviderTarget,
)
from app.providers.gemini_messages import CallIds, FunctionCall, function_calls, generate_content_body
from app.providers.google_auth import GeminiApiConnection, GoogleConnection, VertexConnection
from app.providers.http import ErrorReader, bounded_delay, status_error
from app.providers.runtime import ProviderRuntime

_CODE_BY_RPC_STATUS = {
    "INVALID_ARGUMENT": ProviderErrorCode.BAD_REQUEST,
    "FAILED_PRECONDITION": ProviderErrorCode.BAD_REQUEST,
    "NOT_FOUND": ProviderErrorCode.BAD_REQUEST,
    "UNAUTHENTICATED": ProviderErrorCode.AUTH_FAILED,
    "PERMISSION_DENIED": ProviderErrorCode.AUTH_FAILED,
    "RESOURCE_EXHAUSTED": ProviderErrorCode.RATE_LIMITED,
    "UNAVAILABLE": ProviderErrorCode.OVERLOADED,
    "DEADLINE_EXCEEDED": ProviderErrorCode.TIMEOUT,
    "INTERNAL": ProviderErrorCode.UPSTREAM_ERROR,
}

_FINISH_BY_REASON = {
    "STOP": FinishReason.STOP,
    "MAX_TOKENS": FinishReason.LENGTH,
    "SAFETY": FinishReason.CONTENT_FILTER,
    "RECITATION": FinishReason.CONTENT_FILTER,
    "BLOCKLIST": FinishReason.CONTENT_FILTER,
    "PROHIBITED_CONTENT": FinishReason.CONTENT_FILTER,
    "SPII": FinishReason.CONTENT_FILTER,
    "IMAGE_SAFETY": FinishReason.CONTENT_FILTER,
}
# The model's function call went wrong (no call, no text comes with it): another try may succeed.
_FAILED_CALL_REASONS = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"})


def google_adapter(target: ProviderTarget, runtime: ProviderRuntime) -> ProviderAdapter:
    connection: GoogleConnection
    if target.provider == Provider.GOOGLE_VERTEX_AI:
        connection = VertexConnection(target, runtime)
        if target.model_group == ModelGroup.EMBEDDING:
            return VertexEmbeddingAdapter(target, runtime, connection)
    else:
        connection = GeminiApiConnection(target)
        if target.model_group == ModelGroup.EMBEDDING:
            return GeminiEmbeddingAdapter(target, runtime, connection)
    return GeminiChatAdapter(target, runtime, connection)


class GeminiChatAdapter(ProviderAdapter):
    def __init__(
        self, target: ProviderTarget, runtime: ProviderRuntime, connection: GoogleConnection
    ) -> None:
        super().__init__(target)
        self._http = runtime.http
        self._connection = connection

    async def _complete(self, request: ChatRequest) -> Completion:
        body = await generate_content_body(request, self._http)
        endpoint = await self._connection.endpoint()
        data = await self._http.post_json(
            endpoint.url("generateContent"),
            body,
            headers=endpoint.headers,
            read_error=google_error_reader(endpoint.secrets),
        )
        chunk = _read_response(data, endpoint.secrets)
        if not data.get("candidates"):
            raise ProviderError(
                ProviderErrorCode.MALFORMED_RESPONSE, "the provider answered without a candidate"
            )
        ids = CallIds()
        calls = tuple(ids.tool_call(index, call) for index, call in enumerate(chunk.calls))
        # Gemini says STOP after function calls too.
        finish = FinishReason.TOOL_CALLS if calls else chunk.finish or FinishReason.STOP
        return Completion(chunk.text, finish, chunk.usage or Usage(), calls)

    async def _stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent]:
        body = await generate_content_body(request, self._http)
        endpoint = await self._connection.endpoint()
        finish: FinishReason | None = None
        usage: Usage | None = None
        ids, calls = CallIds(), 0
        async with (
            self._http.open(
                "POST",
                endpoint.url("streamGenerateContent", sse=True),
                body=body,
                headers=endpoint.headers,
                read_error=google_error_reader(endpoint.secrets),
            ) as response,
            aclosing(self._http.iter_sse(response)) as events,
        ):
            # No end marker: the stream ends at EOF, after a chunk that carries the finishReason.
            async for event in events:
                chunk = _read_response(orjson.loads(event.data), endpoint.secrets)
                if chunk.text:
                    yield TextDelta(chunk.text)
                for call in chunk.calls:  # each arrives whole: one delta
                    done = ids.tool_call(calls, call)
                    yield ToolCallDelta(calls, done.arguments, id=done.id, name=done.name)
                    calls += 1
                if chunk.usage is not None and chunk.usage != usage:  # every chunk repeats it
                    usage = chunk.usage
                    yield UsageUpdate(usage)
                finish = chunk.finish or finish
        if finish is None:
            raise ProviderError(
                ProviderErrorCode.TRUNCATED, "the provider stream ended without a finish reason"
            )
        yield Finished(FinishReason.TOOL_CALLS if calls else finish)


@dataclass(frozen=True, slots=True)
class _ResponseChunk:
    text: str
    finish: FinishReason | None
    usage: Usage | None
    calls: list[FunctionCall]


def _read_response(payload: dict[str, Any], secrets: tuple[str, ...]) -> _ResponseChunk:
    """One GenerateContentResponse (a whole answer, or one stream chunk)."""
    if "error" in payload:  # a stream that fails after it started says so in a chunk
        error = payload["error"]
        raise google_error(int(error.get("code") or 500), {}, error, secrets)
    block_reason = (payload.get("promptFeedback") or {}).get("blockReason")
    if block_reason:
        raise ProviderError(
            ProviderErrorCode.CONTENT_FILTERED, f"the provider blocked the prompt ({block_reason})"
        )
    candidates = payload.get("candidates") or [{}]
    parts = (candidates[0].get("content") or {}).get("parts") or []
    text = "".join(part.get("text", "") for part in parts if not part.get("thought"))
    reason = candidates[0].get("finishReason")
    if reason in _FAILED_CALL_REASONS:
        raise ProviderError(
            ProviderErrorCode.MALFORMED_RESPONSE, f"the model's function call failed ({reason})"
        )
    finish = _FINISH_BY_REASON.get(reason, FinishReason.STOP) if reason else None
    return _ResponseChunk(text, finish, _usage(payload.get("usageMetadata")), function_calls(parts))


def _usage(metadata: dict[str, Any] | None) -> Usage | None:
    if not metadata:
        return None
    # Tool-use prompts are input too; thinking is billed as output but counted apart from candidates.
    input_tokens = (metadata.get("promptTokenCount") or 0) + (metadata.get("toolUsePromptTokenCount") or 0)
    output_tokens = (metadata.get("candidatesTokenCount") or 0) + (metadata.get("thoughtsTokenCount") or 0)
    return Usage(int(input_tokens), int(output_tokens))


# --- Embeddings ---------------------------------------------------------------------------------------


class _EmbeddingAdapter(ProviderAdapter):
    def __init__(
        self, target: ProviderTarget, runtime: ProviderRuntime, connection: GoogleConnection
    ) -> None:
        super().__init__(target)
        self._http = runtime.http
        self._connection = connection

    async def _complete(self, request: ChatRequest) -> Completion:
        raise _not_a_chat_model()

    async def _stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent]:
        raise _not_a_chat_model()
        yield  # unreachable; makes this an async generator like every `_stream`


class GeminiEmbeddingAdapter(_EmbeddingAdapter):
    """Gemini API `:batchEmbedContents`, which reports no token counts."""

    async def _embed(self, request: EmbedRequest) -> Embeddings:
        endpoint = await self._connection.endpoint()
        model_name = "models/" + endpoint.model_url.rsplit("/models/", 1)[1]
        body = {
            "requests": [{"model": model_name, "content": {"parts": [{"text": t}]}} for t in request.texts]
        }
        data = await self._http.post_json(
            endpoint.url("batchEmbedContents"),
            body,
            headers=endpoint.headers,
            read_error=google_error_reader(endpoint.secrets),
        )
        return Embeddings([list(e["values"]) for e in data["embeddings"]], Usage())


class VertexEmbeddingAdapter(_EmbeddingAdapter):
    """Vertex AI `:predict`, which every Vertex embedding model serves."""

    async def _embed(self, request: EmbedRequest) -> Embeddings:
        endpoint = await self._connection.endpoint()
        body = {"instances": [{"content": text} for text in request.texts]}
        data = await self._http.post_json(
            endpoint.url("predict"),
            body,
            headers=endpoint.headers,
            read_error=google_error_reader(endpoint.secrets),
        )
        embeddings = [prediction["embeddings"] for prediction in data["predictions"]]
        tokens = sum(int((e.get("statistics") or {}).get("token_count") or 0) for e in embeddings)
        return Embeddings([list(e["values"]) for e in embeddings], Usage(input_tokens=tokens))


def _not_a_chat_model() -> ProviderError:
    return ProviderError(
        ProviderErrorCode.BAD_REQUEST, "this is an embedding model: it cannot chat", retryable=False
    )


# --- Errors ------------------------------------------------------------------------------------------


def google_error_reader(secrets: tuple[str, ...]) -> ErrorReader:
    def read(status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        return google_error(status, headers, _error_object(body), secrets)

    return read


def google_error(
    status: int, headers: Mapping[str, str], error: dict[str, Any] | None, secrets: tuple[str, ...]
) -> ProviderError:
    """A ProviderError from a google.rpc.Status error object (`{code, message, status, details}`)."""
    error = error or {}
    message = error.get("message")
    result = status_error(
        status, headers, message, code=_error_code(error.get("status"), message), secrets=secrets
    )
    if result.retry_after is None:
        result.retry_after = _retry_delay(error.get("details"))
    return result


def _error_object(body: bytes) -> dict[str, Any] | None:
    try:
        payload = orjson.loads(body)
    except ValueError:
        return {"message": body.decode("utf-8", "replace")[:500]} if body else None
    if isinstance(payload, list) and payload:  # the non-SSE stream form wraps it: `[{"error": …}]`
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, dict) else None


def _error_code(rpc_status: str | None, message: str | None) -> ProviderErrorCode | None:
    if rpc_status == "INVALID_ARGUMENT" and message:
        lowered = message.lower()
        if "api key not valid" in lowered:  # the Gemini API answers a bad key with 400, not 401
            return ProviderErrorCode.AUTH_FAILED
        if "exceeds the maximum number of tokens" in lowered:
            return ProviderErrorCode.CONTEXT_TOO_LONG
    return _CODE_BY_RPC_STATUS.get(rpc_status or "")


def _retry_delay(details: Any) -> float | None:
    """`RetryInfo.retryDelay` ("26s") from the error details: Google's Retry-After."""
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = str(detail.get("retryDelay", ""))
            try:
                return bounded_delay(float(delay.removesuffix("s")))
            except ValueError:
                return None
    return None
