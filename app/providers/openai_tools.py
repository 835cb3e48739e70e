"""Tools, images and structured output in the Chat Completions format (OpenAI, Azure OpenAI, Mistral,
OpenAI-compatible servers), both ways.

Out: `tools` [{type:function, function:{name, description, parameters, strict}}], `tool_choice`
("auto" | "none" | "required" (Mistral: "any") | {type:function, function:{name}}),
`parallel_tool_calls`, user content arrays of `text` and `image_url` parts (inline data as a
`data:<media type>;base64,` URL), assistant `tool_calls` (content null when there is no text),
`{role:tool, tool_call_id, content}` results, and `response_format` json_object / json_schema.
In: `message.tool_calls`, and streamed `delta.tool_calls[{index, id, function:{name, arguments}}]`.

What a provider of the family cannot take is refused with a non-retryable BAD_REQUEST before the call,
never dropped: images outside user messages, a tool choice without tools, a tool result without its
call id (and, in `openai_endpoints`, features an older Azure API version lacks).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from typing import Any

import orjson

from app.domain.calls import (
    ChatMessage,
    ImagePart,
    ProviderError,
    ProviderErrorCode,
    ResponseFormat,
    ResponseFormatType,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolChoiceMode,
)
from app.domain.enums import ChatRole
from app.providers.base import ChatRequest
from app.providers.openai_endpoints import OpenAIDialect
from app.providers.openai_wire import malformed

_EMPTY_PARAMETERS = {"type": "object", "properties": {}}
_MISTRAL_CALL_ID = re.compile(r"^[a-zA-Z0-9]{9}\Z")
_ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def refused(message: str) -> ProviderError:
    """The request asks for something this provider cannot do: not retryable, the caller must change it."""
    return ProviderError(ProviderErrorCode.BAD_REQUEST, message, retryable=False)


def data_url(image: ImagePart) -> str:
    """The image as a URL: its https URL, or its bytes as a base64 data URL."""
    if image.data is not None:
        if not image.media_type:
            raise refused("an inline image needs its media type")
        return f"data:{image.media_type};base64,{base64.b64encode(image.data).decode()}"
    if image.url is None:
        raise refused("an image needs a URL or data")
    return image.url


# --- requests --------------------------------------------------------------------------------------


def chat_messages(request: ChatRequest, dialect: OpenAIDialect) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if request.system_prompt:
        messages.append({"role": "system", "content": request.system_prompt})
    call_id = _short_id if dialect.short_tool_call_ids else str
    for message in request.messages:
        role = message.role.value.lower()
        if message.role is ChatRole.TOOL:
            if not message.tool_call_id:
                raise refused("a tool result needs the id of the call it answers")
            messages.append(
                {"role": "tool", "tool_call_id": call_id(message.tool_call_id), "content": message.text}
            )
            continue
        wire: dict[str, Any] = {"role": role, "content": _content(message)}
        if message.tool_calls:
            wire["content"] = wire["content"] or None
            wire["tool_calls"] = [
                {
                    "id": call_id(c.id),
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in message.tool_calls
            ]
        messages.append(wire)
    return messages


def has_images(message: ChatMessage) -> bool:
    """Whether the message carries images; only a user message may."""
    if message.images and message.role is not ChatRole.USER:
        raise refused(f"only user messages can carry images, not {message.role.value.lower()} messages")
    return bool(message.images)


def _content(message: ChatMessage) -> str | list[dict[str, Any]]:
    """Plain text as a string; a message with images as its parts, in order."""
    if not has_images(message):
        return message.text
    parts: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            parts.append({"type": "text", "text": part.text})
        else:
            image_url = {"url": data_url(part)}
            if part.detail:
                image_url["detail"] = part.detail
            parts.append({"type": "image_url", "image_url": image_url})
    return parts


def _short_id(call_id: str) -> str:
    """Mistral takes only 9-character alphanumeric call ids; a call made by another provider (after a
    fallback) gets a stable one derived from its id, the same for the call and for its result."""
    if _MISTRAL_CALL_ID.match(call_id):
        return call_id
    number = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8], "big")
    return "".join(_ID_ALPHABET[(number >> (6 * i)) % len(_ID_ALPHABET)] for i in range(9))


def chat_options(request: ChatRequest, dialect: OpenAIDialect) -> dict[str, Any]:
    """The body fields for tools and the response format (none when the request asks for neither)."""
    options: dict[str, Any] = {}
    if request.tools:
        options["tools"] = [
            {
                "type": "function",
                "function": function_definition(
                    tool.name, tool.description, tool.parameters, strict=tool.strict or None
                ),
            }
            for tool in request.tools
        ]
        if request.tool_choice is not None:
            options["tool_choice"] = tool_choice(
                request.tool_choice, dialect.required_tool_choice, nested=True
            )
        if request.parallel_tool_calls is not None:
            options["parallel_tool_calls"] = request.parallel_tool_calls
    else:
        check_no_tool_choice(request)
    fmt = request.response_format
    if fmt is not None and fmt.type is ResponseFormatType.JSON_OBJECT:
        options["response_format"] = {"type": "json_object"}
    elif fmt is not None and fmt.type is ResponseFormatType.JSON_SCHEMA:
        options["response_format"] = {"type": "json_schema", "json_schema": schema_format(fmt)}
    return options


def check_no_tool_choice(request: ChatRequest) -> None:
    """A request without tools may say "none", but cannot ask for a tool call."""
    if request.tool_choice is not None and request.tool_choice.mode is not ToolChoiceMode.NONE:
        raise refused("a tool choice needs tools")


def function_definition(
    name: str, description: str | None, parameters: Mapping[str, Any] | None, *, strict: bool | None
) -> dict[str, Any]:
    """A function's name, description, parameters (an empty object schema when it takes none: the
    APIs require an object schema) and `strict` when it is set."""
    function: dict[str, Any] = {"name": name}
    if description:
        function["description"] = description
    function["parameters"] = dict(parameters or _EMPTY_PARAMETERS)
    if strict is not None:
        function["strict"] = strict
    return function


def tool_choice(choice: ToolChoice, required: str, *, nested: bool) -> str | dict[str, Any]:
    """The choice as a mode string, or the named function (`nested` under `function` in Chat
    Completions, flat in Responses)."""
    if choice.mode is ToolChoiceMode.TOOL:
        if not choice.name:
            raise refused("a tool choice of a named tool needs the tool's name")
        return (
            {"type": "function", "function": {"name": choice.name}}
            if nested
            else {"type": "function", "name": choice.name}
        )
    return required if choice.mode is ToolChoiceMode.REQUIRED else choice.mode.value.lower()


def schema_format(fmt: ResponseFormat) -> dict[str, Any]:
    """A JSON Schema response format's {name, schema, strict}; OpenAI requires a name."""
    spec: dict[str, Any] = {"name": fmt.name or "response", "schema": dict(fmt.schema or _EMPTY_PARAMETERS)}
    if fmt.strict:
        spec["strict"] = True
    return spec


# --- answers ---------------------------------------------------------------------------------------


def message_tool_calls(message: Mapping[str, Any]) -> tuple[ToolCall, ...]:
    """The tool calls of an answer's `message`."""
    calls = []
    for item in message.get("tool_calls") or ():
        function = item.get("function") if isinstance(item, Mapping) else None
        if not isinstance(function, Mapping):
            raise malformed("the provider sent a tool call without its function")
        call_id, name = item.get("id"), function.get("name")
        if not (isinstance(call_id, str) and call_id and isinstance(name, str) and name):
            raise malformed("the provider sent a tool call without its id or name")
        calls.append(ToolCall(call_id, name, arguments_text(function.get("arguments"))))
    return tuple(calls)


def arguments_text(arguments: Any) -> str:
    """Arguments are JSON text; a few compatible servers send the object itself."""
    if arguments is None:
        return ""
    return arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()


class StreamedToolCalls:
    """Numbers streamed tool calls 0, 1, … in the order they begin. A call begins with its id and
    name; later pieces name it by the upstream `index`. A new id at an index already in use is a new
    call (some servers send every whole call at index 0)."""

    def __init__(self) -> None:
        self._by_index: dict[int, tuple[int, str]] = {}  # upstream index -> (our index, call id)
        self.count = 0

    def deltas(self, items: Any) -> list[ToolCallDelta]:
        deltas = []
        for position, item in enumerate(items or ()):
            if not isinstance(item, Mapping):
                raise malformed("the provider sent a malformed tool call delta")
            upstream = item.get("index", position)
            function = item.get("function")
            function = function if isinstance(function, Mapping) else {}
            call_id, name = item.get("id"), function.get("name")
            known = self._by_index.get(upstream)
            if call_id and (known is None or known[1] != call_id):
                if not name:
                    raise malformed("the provider began a tool call without its name")
                known = self._by_index[upstream] = (self.count, call_id)
                self.count += 1
                deltas.append(
                    ToolCallDelta(known[0], arguments_text(function.get("arguments")), call_id, name)
                )
            elif known is None:
                raise malformed("the provider continued a tool call it had not begun")
            else:
                deltas.append(ToolCallDelta(known[0], arguments_text(function.get("arguments"))))
        return deltas
