"""The rules on a chat call's rich content: message parts and images, tool calls and results, tool
definitions, the tool choice and the response format. Checked with the other call rules, before a
model is resolved, so a refused call costs nothing and is not metered. Field paths are GraphQL's
(e.g. input.messages.2.parts.0.image.url); the REST door maps them to its own parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from app.domain.calls import (
    IMAGE_MEDIA_TYPES,
    MAX_IMAGE_BYTES,
    TOOL_NAME,
    ChatMessage,
    ImagePart,
    ResponseFormat,
    ResponseFormatType,
    TextPart,
    ToolChoice,
    ToolChoiceMode,
    ToolDefinition,
)
from app.domain.enums import ChatRole
from app.domain.errors import ErrorCollector
from app.domain.gateway import GatewayErrorCode

MAX_TOOLS = 128
MAX_PARTS = 100
MAX_URL = 8192
IMAGE_DETAILS = frozenset({"low", "high", "auto"})
_NAME_RULE = "must be 1 to 64 letters, digits, _ or -"


def check_messages(messages: tuple[ChatMessage, ...], errors: ErrorCollector) -> None:
    """Each message's content, parts, tool calls and tool result; a result answers an earlier call."""
    called: set[str] = set()
    for index, message in enumerate(messages):
        at = ("input", "messages", str(index))
        if message.parts and message.content:
            errors.add(GatewayErrorCode.INVALID, "give content or parts, not both", *at, "parts")
        if not (message.content.strip() or message.parts or message.tool_calls):
            errors.add(
                GatewayErrorCode.REQUIRED, "a message needs content, parts or tool calls", *at, "content"
            )
        _check_parts(message, at, errors)
        _check_tool_calls(message, at, called, errors)
        if message.role is ChatRole.TOOL:
            if not message.tool_call_id:
                errors.add(
                    GatewayErrorCode.REQUIRED, "a TOOL message names the call it answers", *at, "toolCallId"
                )
            elif message.tool_call_id not in called:
                errors.add(
                    GatewayErrorCode.INVALID,
                    f"{message.tool_call_id!r} answers no tool call of an earlier ASSISTANT message",
                    *at,
                    "toolCallId",
                )
        elif message.tool_call_id is not None:
            errors.add(GatewayErrorCode.INVALID, "only a TOOL message answers a tool call", *at, "toolCallId")


def _check_parts(message: ChatMessage, at: tuple[str, ...], errors: ErrorCollector) -> None:
    if len(message.parts) > MAX_PARTS:
        errors.add(GatewayErrorCode.TOO_LONG, f"at most {MAX_PARTS} parts", *at, "parts")
    for number, part in enumerate(message.parts[:MAX_PARTS]):
        where = (*at, "parts", str(number))
        if isinstance(part, TextPart):
            if not part.text.strip():
                errors.add(GatewayErrorCode.REQUIRED, "must not be empty", *where, "text")
        elif message.role is not ChatRole.USER:
            errors.add(GatewayErrorCode.INVALID, "images are allowed in USER messages only", *where, "image")
        else:
            _check_image(part, (*where, "image"), errors)


def _check_image(image: ImagePart, at: tuple[str, ...], errors: ErrorCollector) -> None:
    if (image.url is None) == (image.data is None):
        errors.add(GatewayErrorCode.INVALID, "give an image's url or its data, one of them", *at)
    if image.url is not None:
        parts = urlsplit(image.url)
        if parts.scheme != "https" or not parts.hostname or len(image.url) > MAX_URL:
            errors.add(
                GatewayErrorCode.INVALID, "must be an https URL (send other images as data)", *at, "url"
            )
    if image.data is not None:
        if image.media_type is None:
            errors.add(GatewayErrorCode.REQUIRED, "image data needs its media type", *at, "mediaType")
        if len(image.data) > MAX_IMAGE_BYTES:
            limit = MAX_IMAGE_BYTES // (1024 * 1024)
            errors.add(GatewayErrorCode.TOO_LONG, f"an image may be at most {limit} MB", *at, "data")
    if image.media_type is not None and image.media_type not in IMAGE_MEDIA_TYPES:
        allowed = ", ".join(sorted(IMAGE_MEDIA_TYPES))
        errors.add(GatewayErrorCode.INVALID, f"must be one of {allowed}", *at, "mediaType")
    if image.detail is not None and image.detail not in IMAGE_DETAILS:
        errors.add(GatewayErrorCode.INVALID, "must be low, high or auto", *at, "detail")


def _check_tool_calls(
    message: ChatMessage, at: tuple[str, ...], called: set[str], errors: ErrorCollector
) -> None:
    if message.tool_calls and message.role is not ChatRole.ASSISTANT:
        errors.add(GatewayErrorCode.INVALID, "only an ASSISTANT message makes tool calls", *at, "toolCalls")
    for number, call in enumerate(message.tool_calls):
        where = (*at, "toolCalls", str(number))
        if not call.id.strip():
            errors.add(GatewayErrorCode.REQUIRED, "must not be empty", *where, "id")
        elif call.id in called:
            errors.add(GatewayErrorCode.DUPLICATE, f"the call id {call.id!r} is used twice", *where, "id")
        if not TOOL_NAME.match(call.name):
            errors.add(GatewayErrorCode.INVALID, _NAME_RULE, *where, "name")
        if not isinstance(_json(call.arguments), dict):
            errors.add(GatewayErrorCode.INVALID, "must be a JSON object, e.g. {}", *where, "arguments")
        called.add(call.id)


def check_tools(tools: tuple[ToolDefinition, ...], choice: ToolChoice | None, errors: ErrorCollector) -> None:
    if len(tools) > MAX_TOOLS:
        errors.add(GatewayErrorCode.TOO_LONG, f"at most {MAX_TOOLS} tools", "input", "tools")
    names: set[str] = set()
    for index, tool in enumerate(tools[:MAX_TOOLS]):
        at = ("input", "tools", str(index))
        if not TOOL_NAME.match(tool.name):
            errors.add(GatewayErrorCode.INVALID, _NAME_RULE, *at, "name")
        elif tool.name in names:
            errors.add(
                GatewayErrorCode.DUPLICATE, f"a tool named {tool.name!r} is defined twice", *at, "name"
            )
        names.add(tool.name)
        if tool.parameters is not None and not _is_object_schema(tool.parameters):
            errors.add(
                GatewayErrorCode.INVALID,
                'must be a JSON Schema of an object, e.g. {"type": "object", "properties": {}}',
                *at,
                "parameters",
            )
    if choice is None:
        return
    if choice.mode is ToolChoiceMode.TOOL:
        if not choice.name:
            errors.add(
                GatewayErrorCode.REQUIRED, "mode TOOL names the tool to call", "input", "toolChoice", "name"
            )
        elif choice.name not in names:
            errors.add(
                GatewayErrorCode.INVALID,
                f"no tool named {choice.name!r} is defined",
                "input",
                "toolChoice",
                "name",
            )
    elif choice.name is not None:
        errors.add(GatewayErrorCode.INVALID, "a name goes with mode TOOL only", "input", "toolChoice", "name")
    if choice.mode in (ToolChoiceMode.REQUIRED, ToolChoiceMode.TOOL) and not tools:
        errors.add(GatewayErrorCode.REQUIRED, f"toolChoice {choice.mode} needs tools", "input", "tools")


def check_response_format(response_format: ResponseFormat | None, errors: ErrorCollector) -> None:
    if response_format is None:
        return
    at = ("input", "responseFormat")
    if response_format.type is not ResponseFormatType.JSON_SCHEMA:
        if response_format.schema is not None:
            errors.add(GatewayErrorCode.INVALID, "a schema goes with type JSON_SCHEMA", *at, "schema")
        return
    if response_format.name is None:
        errors.add(GatewayErrorCode.REQUIRED, "JSON_SCHEMA needs the schema's name", *at, "name")
    elif not TOOL_NAME.match(response_format.name):
        errors.add(GatewayErrorCode.INVALID, _NAME_RULE, *at, "name")
    if response_format.schema is None:
        errors.add(GatewayErrorCode.REQUIRED, "JSON_SCHEMA needs a schema", *at, "schema")
    elif not isinstance(response_format.schema, Mapping) or not response_format.schema:
        errors.add(GatewayErrorCode.INVALID, 'must be a JSON Schema, e.g. {"type": "object"}', *at, "schema")


def _is_object_schema(schema: Mapping[str, Any]) -> bool:
    return isinstance(schema, Mapping) and schema.get("type") == "object"


def _json(text: str) -> object:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
