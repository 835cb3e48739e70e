"""Tools, images and structured output in the OpenAI Responses API, both ways.

Out: the conversation as `input` items — messages (`input_text` / `input_image` parts when there are
images), a `function_call` item per assistant tool call, a `function_call_output` item per tool
result — flat function `tools` [{type:function, name, description, parameters, strict}] (`strict`
always sent: Responses makes functions strict unless told otherwise), `tool_choice`,
`parallel_tool_calls` and `text.format` for the response format. In: `function_call` output items
(`call_id` is the call's id), streamed as `response.output_item.added` (id and name) and
`response.function_call_arguments.delta` (argument fragments, naming their item).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.domain.calls import ChatMessage, ResponseFormatType, TextPart, ToolCall, ToolCallDelta
from app.domain.enums import ChatRole
from app.providers.base import ChatRequest
from app.providers.openai_tools import (
    arguments_text,
    check_no_tool_choice,
    data_url,
    function_definition,
    has_images,
    refused,
    schema_format,
    tool_choice,
)
from app.providers.openai_wire import malformed


def responses_input(request: ChatRequest) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role is ChatRole.TOOL:
            if not message.tool_call_id:
                raise refused("a tool result needs the id of the call it answers")
            items.append(
                {"type": "function_call_output", "call_id": message.tool_call_id, "output": message.text}
            )
            continue
        if not message.tool_calls or message.text or message.images:
            items.append({"role": message.role.value.lower(), "content": _content(message)})
        items.extend(
            {"type": "function_call", "call_id": call.id, "name": call.name, "arguments": call.arguments}
            for call in message.tool_calls
        )
    return items


def _content(message: ChatMessage) -> str | list[dict[str, Any]]:
    if not has_images(message):
        return message.text
    return [
        {"type": "input_text", "text": part.text}
        if isinstance(part, TextPart)
        else {"type": "input_image", "image_url": data_url(part), "detail": part.detail or "auto"}
        for part in message.parts
    ]


def responses_options(request: ChatRequest) -> dict[str, Any]:
    """The body fields for tools and the response format (none when the request asks for neither)."""
    options: dict[str, Any] = {}
    if request.tools:
        options["tools"] = [
            {"type": "function", **function_definition(t.name, t.description, t.parameters, strict=t.strict)}
            for t in request.tools
        ]
        if request.tool_choice is not None:
            options["tool_choice"] = tool_choice(request.tool_choice, "required", nested=False)
        if request.parallel_tool_calls is not None:
            options["parallel_tool_calls"] = request.parallel_tool_calls
    else:
        check_no_tool_choice(request)
    fmt = request.response_format
    if fmt is not None and fmt.type is ResponseFormatType.JSON_OBJECT:
        options["text"] = {"format": {"type": "json_object"}}
    elif fmt is not None and fmt.type is ResponseFormatType.JSON_SCHEMA:
        options["text"] = {"format": {"type": "json_schema", **schema_format(fmt)}}
    return options


def output_tool_calls(response: Mapping[str, Any]) -> tuple[ToolCall, ...]:
    """The `function_call` items of a response's output, in order."""
    return tuple(
        _call_of(item)
        for item in response.get("output") or ()
        if isinstance(item, Mapping) and item.get("type") == "function_call"
    )


def _call_of(item: Mapping[str, Any]) -> ToolCall:
    call_id, name = item.get("call_id"), item.get("name")
    if not (isinstance(call_id, str) and call_id and isinstance(name, str) and name):
        raise malformed("the provider sent a function call without its call_id or name")
    return ToolCall(call_id, name, arguments_text(item.get("arguments")))


class StreamedFunctionCalls:
    """Numbers streamed function calls 0, 1, … in the order their items are added, and finds the
    call an argument fragment belongs to by its `item_id` (else its `output_index`)."""

    def __init__(self) -> None:
        self._calls: dict[str | int, int] = {}  # item id and output index -> our index
        self._argued: set[int] = set()  # calls whose arguments came in fragments
        self.count = 0

    def added(self, payload: Mapping[str, Any]) -> ToolCallDelta | None:
        """The first delta of a call from `response.output_item.added` (None for other items)."""
        item = payload.get("item")
        if not isinstance(item, Mapping) or item.get("type") != "function_call":
            return None
        call = _call_of(item)
        index = self.count
        self.count += 1
        for key in (item.get("id"), payload.get("output_index")):
            if isinstance(key, str | int):
                self._calls[key] = index
        if call.arguments:
            self._argued.add(index)
        return ToolCallDelta(index, call.arguments, call.id, call.name)

    def arguments(self, payload: Mapping[str, Any]) -> ToolCallDelta:
        """A fragment of a call's arguments (`response.function_call_arguments.delta`)."""
        index = self._index(payload)
        self._argued.add(index)
        return ToolCallDelta(index, arguments_text(payload.get("delta")))

    def done(self, payload: Mapping[str, Any]) -> ToolCallDelta | None:
        """A call's arguments from `response.output_item.done` when no fragment brought them."""
        item = payload.get("item")
        if not isinstance(item, Mapping) or item.get("type") != "function_call":
            return None
        index = self._index({"item_id": item.get("id"), "output_index": payload.get("output_index")})
        if index in self._argued:
            return None
        self._argued.add(index)
        return ToolCallDelta(index, arguments_text(item.get("arguments")))

    def _index(self, payload: Mapping[str, Any]) -> int:
        for key in (payload.get("item_id"), payload.get("output_index")):
            if isinstance(key, str | int) and key in self._calls:
                return self._calls[key]
        raise malformed("the provider sent arguments of a function call it had not begun")
