"""The OpenAI Responses API (`POST {base}/responses`), for targets with api_type RESPONSES.

The system prompt goes into `instructions`, the conversation into `input`. Streams are named SSE
events whose data repeats the name in `type`; text arrives in `response.output_text.delta` (and
`response.refusal.delta`), and the stream ends with `response.completed`, `response.incomplete` or
`response.failed` (carrying the usage), never with `[DONE]` (reference §1.2). Tools, images and the
response format are mapped by `openai_response_items`; an answer with function calls finishes with
TOOL_CALLS.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

from app.domain.calls import Finished, StreamEvent, TextDelta, Usage, UsageUpdate
from app.domain.enums import FinishReason
from app.providers.base import ChatRequest, Completion
from app.providers.openai_response_items import (
    StreamedFunctionCalls,
    output_tool_calls,
    responses_input,
    responses_options,
)
from app.providers.openai_wire import (
    OpenAIWireAdapter,
    json_object,
    parse_usage,
    stream_error,
    truncated,
)

_TEXT_DELTAS = frozenset({"response.output_text.delta", "response.refusal.delta"})
_TEXT_FIELDS = {"output_text": "text", "refusal": "refusal"}  # content part type -> its text field
_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


class OpenAIResponsesAdapter(OpenAIWireAdapter):
    operation = "responses"

    def _body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.endpoint.model,
            "input": responses_input(request),
            "store": False,  # the API keeps responses server-side unless told not to
            **responses_options(request),
        }
        if request.system_prompt:
            body["instructions"] = request.system_prompt
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_output_tokens"] = request.max_tokens
        if stream:
            body["stream"] = True
        return body

    async def _complete(self, request: ChatRequest) -> Completion:
        # A failed response carries `error` and is raised by _post.
        response = await self._post(self.operation, self._body(request, stream=False))
        return Completion(
            text=_output_text(response),
            finish_reason=_finish_reason(response),
            usage=parse_usage(response.get("usage")) or Usage(),
            tool_calls=output_tool_calls(response),
        )

    async def _stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent]:
        finish: FinishReason | None = None
        calls = StreamedFunctionCalls()
        async with self._sse(self.operation, self._body(request, stream=True)) as events:
            async for event in events:
                payload = json_object(event.data)
                kind = payload.get("type") or event.event
                if kind in _TEXT_DELTAS:
                    if isinstance(delta := payload.get("delta"), str) and delta:
                        yield TextDelta(delta)
                elif kind == "response.function_call_arguments.delta":
                    yield calls.arguments(payload)
                elif kind == "response.output_item.added":
                    if (started := calls.added(payload)) is not None:
                        yield started
                elif kind == "response.output_item.done":
                    if (rest := calls.done(payload)) is not None:
                        yield rest
                elif kind == "error":
                    raise stream_error(payload, self._secrets)
                elif kind in _TERMINAL:
                    response = payload.get("response")
                    if not isinstance(response, Mapping):
                        break
                    if kind == "response.failed":
                        raise stream_error(response, self._secrets)
                    if (usage := parse_usage(response.get("usage"))) is not None:
                        yield UsageUpdate(usage)
                    finish = _finish_reason(response)
                    if finish is FinishReason.STOP and calls.count:
                        finish = FinishReason.TOOL_CALLS  # the final response may list no output
                    break
        # Yielded after the upstream response is closed (see OpenAIChatAdapter._stream).
        if finish is None:
            raise truncated()
        yield Finished(finish)


def _output_text(response: Mapping[str, Any]) -> str:
    """`output_text` and `refusal` parts of the `message` items; `output_text` itself is an SDK
    convenience, not on the wire."""
    parts: list[str] = []
    for item in response.get("output") or ():
        if not isinstance(item, Mapping) or item.get("type") != "message":
            continue
        for part in item.get("content") or ():
            if not isinstance(part, Mapping):
                continue
            text_field = _TEXT_FIELDS.get(str(part.get("type")), "")
            if isinstance(text := part.get(text_field), str):
                parts.append(text)
    return "".join(parts)


def _finish_reason(response: Mapping[str, Any]) -> FinishReason:
    if response.get("status") == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, Mapping) else None
        # max_output_tokens, or anything else that cut the answer short
        return FinishReason.CONTENT_FILTER if reason == "content_filter" else FinishReason.LENGTH
    output = response.get("output") or ()
    if any(isinstance(item, Mapping) and item.get("type") == "function_call" for item in output):
        return FinishReason.TOOL_CALLS
    return FinishReason.STOP
