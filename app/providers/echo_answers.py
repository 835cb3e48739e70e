"""What the ECHO demo model answers to a chat, decided from the request alone (no I/O, no chance), so
that an agent loop runs offline and a test can predict every answer:

- tools, a tool choice other than NONE and a user message last: it calls one tool (the named one
  under TOOL, else the first) with arguments built from the tool's parameter schema, and finishes
  TOOL_CALLS;
- tool results last: it answers with text quoting each result;
- a JSON_OBJECT or JSON_SCHEMA response format: a JSON object (shaped by the schema);
- otherwise `Echo: <the last user message>`; images are counted, never downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from app.domain.calls import ChatMessage, ResponseFormatType, ToolCall, ToolChoiceMode, ToolDefinition
from app.domain.enums import ChatRole
from app.providers.base import ChatRequest

_MAX_DEPTH = 5  # nested object schemas deeper than this get {}


@dataclass(frozen=True, slots=True)
class EchoAnswer:
    text: str = ""
    tool_call: ToolCall | None = None


def answer(request: ChatRequest) -> EchoAnswer:
    last = request.messages[-1] if request.messages else None
    if last is not None and last.role is ChatRole.TOOL:
        return EchoAnswer(_quoting_results(request.messages))
    user = _last_user_message(request.messages)
    text = " ".join(user.text.split()) if user else ""  # whitespace as the word-by-word stream has it
    tool = _tool_to_call(request)
    if tool is not None and last is not None and last.role is ChatRole.USER:
        arguments = orjson.dumps(value_for(tool.parameters or {"type": "object"}, text))
        return EchoAnswer(tool_call=ToolCall(_call_id(request.messages), tool.name, arguments.decode()))
    response_format = request.response_format
    if response_format is not None and response_format.type is not ResponseFormatType.TEXT:
        schema = response_format.schema if response_format.type is ResponseFormatType.JSON_SCHEMA else None
        shaped = value_for(schema, text) if schema else {"echo": text}
        return EchoAnswer(orjson.dumps(shaped).decode())
    images = len(user.images) if user else 0
    seen = [f"I see {images} image{'s' if images != 1 else ''}."] if images else []
    return EchoAnswer(" ".join(["Echo:", *seen, *text.split()]))


def value_for(schema: Mapping[str, Any], text: str, depth: int = 0) -> Any:
    """A value following a simple JSON Schema: strings are `text`, numbers its word count,
    booleans true, enums their first value, arrays one item, objects every property."""
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for combined in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combined)
        if isinstance(options, list) and options and isinstance(options[0], Mapping):
            return value_for(options[0], text, depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties")
        if depth >= _MAX_DEPTH or not isinstance(properties, Mapping):
            return {}
        return {
            name: value_for(sub if isinstance(sub, Mapping) else {}, text, depth + 1)
            for name, sub in properties.items()
        }
    if kind == "array":
        items = schema.get("items")
        return [value_for(items if isinstance(items, Mapping) else {}, text, depth + 1)]
    if kind in ("integer", "number"):
        return len(text.split())
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return text


def _tool_to_call(request: ChatRequest) -> ToolDefinition | None:
    choice = request.tool_choice
    if not request.tools or (choice is not None and choice.mode is ToolChoiceMode.NONE):
        return None
    if choice is not None and choice.mode is ToolChoiceMode.TOOL:
        return next((t for t in request.tools if t.name == choice.name), request.tools[0])
    return request.tools[0]


def _call_id(messages: tuple[ChatMessage, ...]) -> str:
    """call_1, call_2, …: unique within the conversation, the same on every replay."""
    return f"call_{sum(len(m.tool_calls) for m in messages) + 1}"


def _quoting_results(messages: tuple[ChatMessage, ...]) -> str:
    names = {call.id: call.name for m in messages for call in m.tool_calls}
    results: list[ChatMessage] = []
    for message in reversed(messages):
        if message.role is not ChatRole.TOOL:
            break
        results.insert(0, message)
    quoted = [f"{names.get(m.tool_call_id or '', 'the tool')} answered {m.text}" for m in results]
    return "Echo: " + "; ".join(quoted)


def _last_user_message(messages: tuple[ChatMessage, ...]) -> ChatMessage | None:
    return next((m for m in reversed(messages) if m.role is ChatRole.USER), None)
