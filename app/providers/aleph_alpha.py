"""Aleph Alpha (and PhariaAI inference): the legacy `POST {base}/complete` for COMPLETION models,
the OpenAI-compatible `POST {base}/chat/completions` for CHAT models.

Connection: `modelUrl` is the API base, by default `https://api.aleph-alpha.com` (PhariaAI hosts
look like `https://inference.example.com/v1`); a full `…/complete` or `…/chat/completions` URL is
accepted too. `Authorization: Bearer <token>`. The model is the `customModel` setting, else the
providerModelId. Errors come in a flat envelope, `{"error": "…", "code": "…"}`, which the OpenAI
family's error reader already knows, so both adapters sit on the family's base adapter.

`/complete` takes the conversation as one `prompt` text (`ChatRequest.prompt_text()`, Aleph has no
system field), `maximum_tokens` and `temperature`. It has no tools, no JSON output and (for today's
models) no images: a request that needs one is refused before any upstream call, rather than
flattened into a prompt that silently loses it. Its stream is SSE `data:` frames of type
`stream_chunk` (text), `stream_summary` (finish reason) and `completion_summary` (usage), without
`[DONE]`: EOF after `completion_summary` ends it, EOF before it is a malformed response.

Chat is OpenAI's Chat Completions format with Aleph's output limit field, `maximum_tokens` (as the
aleph-alpha-client sends it), tools, image parts and `response_format` included (the client's
recordings show PhariaAI taking all three); usage comes through `stream_options.include_usage`,
streams end with `[DONE]`. Embeddings (`semantic_embed`) are not offered.

Factory: `aleph_alpha_adapter(target, runtime) -> ProviderAdapter`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from app.domain.calls import (
    Finished,
    ProviderError,
    ProviderErrorCode,
    ResponseFormatType,
    StreamEvent,
    TextDelta,
    Usage,
    UsageUpdate,
)
from app.domain.enums import ChatRole, FinishReason, ModelGroup
from app.providers.base import ChatRequest, Completion, ProviderAdapter, ProviderTarget
from app.providers.openai_chat import OpenAIChatAdapter
from app.providers.openai_endpoints import OpenAIDialect, OpenAIEndpoint
from app.providers.openai_wire import OpenAIWireAdapter, json_object, malformed, stream_error
from app.providers.runtime import ProviderRuntime

ALEPH_ALPHA_BASE_URL = "https://api.aleph-alpha.com"
ALEPH_ALPHA_DIALECT = OpenAIDialect(output_limit_field="maximum_tokens")
_OPERATION_SUFFIXES = ("/chat/completions", "/complete")

_FINISH_REASONS = {
    "maximum_tokens": FinishReason.LENGTH,
    "end_of_text": FinishReason.STOP,
    "stop": FinishReason.STOP,
    "stop_sequence_reached": FinishReason.STOP,
    "content_filter": FinishReason.CONTENT_FILTER,
}


def aleph_alpha_endpoint(target: ProviderTarget) -> OpenAIEndpoint:
    parts = urlsplit((target.model_url or ALEPH_ALPHA_BASE_URL).strip())
    path = parts.path.rstrip("/")
    for suffix in _OPERATION_SUFFIXES:
        if path.endswith(suffix):
            path = path.removesuffix(suffix)
            break
    token = target.credentials.token
    if token and ("\r" in token or "\n" in token):
        raise ProviderError(
            ProviderErrorCode.BAD_REQUEST, "the model's token contains a line break", retryable=False
        )
    return OpenAIEndpoint(
        base_url=urlunsplit((parts.scheme, parts.netloc, path, "", "")),
        headers={"Authorization": f"Bearer {token}"} if token else {},
        model=target.settings.get("customModel") or target.provider_model_id,
        query=dict(parse_qsl(parts.query)),
        dialect=ALEPH_ALPHA_DIALECT,
    )


class AlephAlphaConnection(OpenAIWireAdapter):
    """Aleph's host, auth and model name in place of the OpenAI family's endpoint resolution."""

    @property
    def endpoint(self) -> OpenAIEndpoint:
        # Resolved on first use, so a misconfigured target fails its call, not the construction.
        if self._endpoint is None:
            self._endpoint = aleph_alpha_endpoint(self.target)
        return self._endpoint


class AlephAlphaChatAdapter(AlephAlphaConnection, OpenAIChatAdapter):
    """OpenAI Chat Completions at Aleph's host."""


class AlephAlphaCompleteAdapter(AlephAlphaConnection):
    def _body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        _refuse_what_complete_cannot_do(request)
        body: dict[str, Any] = {
            "model": self.endpoint.model,
            "prompt": request.prompt_text(),
            "stream": stream,
        }
        if request.max_tokens is not None:
            body["maximum_tokens"] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        return body

    async def _complete(self, request: ChatRequest) -> Completion:
        answer = await self._post("complete", self._body(request, stream=False))
        completions = answer.get("completions")
        if not isinstance(completions, list) or not completions or not isinstance(completions[0], Mapping):
            raise malformed("the provider answered without completions")
        first = completions[0]
        return Completion(
            text=first.get("completion") or "",
            finish_reason=_finish_reason(first.get("finish_reason")),
            usage=_usage(answer),
        )

    async def _stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent]:
        finish = FinishReason.STOP
        summarised = False
        async with self._sse("complete", self._body(request, stream=True)) as events:
            async for event in events:
                if event.data == "[DONE]":
                    continue  # not sent by Aleph, but skipped by its own SDK too
                item = json_object(event.data)
                if item.get("error"):
                    raise stream_error(item, self._secrets)
                kind = item.get("type")
                if kind == "stream_chunk" and item.get("index", 0) == 0:
                    if text := item.get("completion"):
                        yield TextDelta(text)
                elif kind == "stream_summary" and item.get("index", 0) == 0:
                    finish = _finish_reason(item.get("finish_reason"))
                elif kind == "completion_summary":
                    summarised = True
                    yield UsageUpdate(_usage(item))
        if not summarised:
            raise ProviderError(ProviderErrorCode.TRUNCATED, "the provider stream ended early")
        yield Finished(finish)


def _refuse_what_complete_cannot_do(request: ChatRequest) -> None:
    needs = []
    if request.tools or any(m.tool_calls or m.role == ChatRole.TOOL for m in request.messages):
        needs.append("tool calls")
    if request.image_count:
        needs.append("images")
    if request.response_format is not None and request.response_format.type != ResponseFormatType.TEXT:
        needs.append("JSON output")
    if needs:
        raise ProviderError(
            ProviderErrorCode.BAD_REQUEST,
            f"Aleph Alpha completion models do not support {' or '.join(needs)}; a chat model does",
            retryable=False,
        )


def _finish_reason(value: Any) -> FinishReason:
    return _FINISH_REASONS.get(value, FinishReason.STOP) if isinstance(value, str) else FinishReason.STOP


def _usage(summary: Mapping[str, Any]) -> Usage:
    return Usage(
        input_tokens=int(summary.get("num_tokens_prompt_total") or 0),
        output_tokens=int(summary.get("num_tokens_generated") or 0),
    )


def aleph_alpha_adapter(target: ProviderTarget, runtime: ProviderRuntime) -> ProviderAdapter:
    if target.model_group is ModelGroup.CHAT:
        return AlephAlphaChatAdapter(target, runtime)
    return AlephAlphaCompleteAdapter(target, runtime)
