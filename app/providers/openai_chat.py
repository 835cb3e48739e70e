"""OpenAI Chat Completions (`POST {base}/chat/completions`) and its legacy sibling for
COMPLETION-group models (`POST {base}/completions`, one prompt string in, `choices[].text` out).

Streams are `data: <json>` frames ending with `data: [DONE]`. Tolerated on the way, as the providers
send them (reference §1.1, 2, 6, 8): Azure's `prompt_filter_results` preamble and the usage-only
chunk, both with `choices: []` (told apart by `usage`); usage on the last content chunk (Mistral);
`choices: null` or missing; `delta.content` as a list of typed parts (Mistral Magistral). A refusal
(`refusal` instead of `content`) is returned as the answer text. With n>1 choices, choice 0 is the
answer. Tools, images and the response format are mapped by `openai_tools`; an answer with tool calls
finishes with TOOL_CALLS even where the provider says `stop` (OpenAI does when a named tool is forced).
The legacy endpoint takes none of them and refuses them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

from app.domain.calls import Finished, StreamEvent, TextDelta, Usage, UsageUpdate
from app.domain.enums import FinishReason, Provider
from app.providers.base import ChatRequest, Completion
from app.providers.openai_endpoints import check_azure_api_version
from app.providers.openai_tools import (
    StreamedToolCalls,
    chat_messages,
    chat_options,
    message_tool_calls,
    refused,
)
from app.providers.openai_wire import (
    OpenAIWireAdapter,
    finish_reason,
    json_object,
    malformed,
    parse_usage,
    stream_error,
    truncated,
)


class OpenAIChatAdapter(OpenAIWireAdapter):
    operation = "chat/completions"

    def _input(self, request: ChatRequest) -> dict[str, Any]:
        dialect = self.endpoint.dialect
        if self.target.provider is Provider.AZURE_OPENAI:
            check_azure_api_version(self.endpoint.query.get("api-version"), request)
        return {"messages": chat_messages(request, dialect), **chat_options(request, dialect)}

    def _output_limit_field(self) -> str:
        return self.endpoint.dialect.output_limit_field

    def _choice_text(self, choice: Mapping[str, Any], *, streamed: bool) -> str:
        part = choice.get("delta" if streamed else "message") or {}
        return _content_text(part.get("content")) + (part.get("refusal") or "")

    def _body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.endpoint.model, **self._input(request)}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body[self._output_limit_field()] = request.max_tokens
        if stream:
            body["stream"] = True
            if self.endpoint.dialect.stream_usage_option:
                body["stream_options"] = {"include_usage": True}
        return body

    async def _complete(self, request: ChatRequest) -> Completion:
        answer = await self._post(self.operation, self._body(request, stream=False))
        choice = _first_choice(answer.get("choices"))
        if choice is None:
            raise malformed("the provider answered without choices")
        message = choice.get("message")
        tool_calls = message_tool_calls(message) if isinstance(message, Mapping) else ()
        return Completion(
            text=self._choice_text(choice, streamed=False),
            finish_reason=_with_tool_calls(finish_reason(choice.get("finish_reason")), bool(tool_calls)),
            usage=parse_usage(answer.get("usage")) or Usage(),
            tool_calls=tool_calls,
        )

    async def _stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent]:
        finish: FinishReason | None = None
        done = False
        tool_calls = StreamedToolCalls()
        async with self._sse(self.operation, self._body(request, stream=True)) as events:
            async for event in events:
                if event.data == "[DONE]":
                    done = True
                    break
                chunk = json_object(event.data)
                if chunk.get("error"):
                    raise stream_error(chunk, self._secrets)
                choice = _first_choice(chunk.get("choices"))
                if choice is not None:
                    if text := self._choice_text(choice, streamed=True):
                        yield TextDelta(text)
                    if isinstance(delta := choice.get("delta"), dict) and "tool_calls" in delta:
                        for tool_delta in tool_calls.deltas(delta.get("tool_calls")):
                            yield tool_delta
                    if choice.get("finish_reason"):
                        finish = finish_reason(choice["finish_reason"])
                if (usage := parse_usage(chunk.get("usage"))) is not None:
                    yield UsageUpdate(usage)
        # The terminal event comes after the upstream response is closed, so a consumer that stops
        # at it leaves no connection behind.
        if done or (finish is not None and not self.endpoint.dialect.done_marker_required):
            yield Finished(_with_tool_calls(finish or FinishReason.STOP, tool_calls.count > 0))
        else:
            raise truncated()


class OpenAICompletionsAdapter(OpenAIChatAdapter):
    """The legacy completions endpoint: the conversation flattened into one `prompt`."""

    operation = "completions"

    def _input(self, request: ChatRequest) -> dict[str, Any]:
        if request.tools or request.image_count or request.response_format is not None:
            raise refused("the completions endpoint takes no tools, images or response format")
        return {"prompt": request.prompt_text()}

    def _output_limit_field(self) -> str:
        return "max_tokens"  # the legacy endpoint never took max_completion_tokens

    def _choice_text(self, choice: Mapping[str, Any], *, streamed: bool) -> str:
        text = choice.get("text")
        return text if isinstance(text, str) else ""


def _with_tool_calls(reason: FinishReason, has_tool_calls: bool) -> FinishReason:
    return FinishReason.TOOL_CALLS if has_tool_calls and reason is FinishReason.STOP else reason


def _first_choice(choices: Any) -> Mapping[str, Any] | None:
    """Choice 0 of `choices`; None for chunks without it (preambles, usage-only, other choices).
    Decoded JSON: `dict` checks, cheaper per streamed chunk than `Mapping`'s."""
    for choice in choices or ():
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return None


def _content_text(content: Any) -> str:
    """`content` as a string, or as typed parts of which only `text` ones are answer text (Mistral
    sends `thinking` parts too)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str)
        )
    return ""
