"""The inputs of rich chat calls (content parts and images, tool calls, tools, tool choice, response
format) and their translation into the call vocabulary. Only the GraphQL shape is checked here
(base64 that decodes, JSON that is an object); the gateway's rules check the rest for both doors."""

from __future__ import annotations

import binascii
from base64 import b64decode
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import strawberry
from strawberry.scalars import JSON

from app.domain import calls
from app.domain.errors import ErrorCollector
from app.domain.gateway import GatewayErrorCode

ToolChoiceMode = strawberry.enum(
    calls.ToolChoiceMode,
    description="AUTO: the model decides; NONE: no tool call; REQUIRED: at least one; TOOL: the named one.",
)
ResponseFormatType = strawberry.enum(
    calls.ResponseFormatType,
    description="TEXT (the default); JSON_OBJECT: any JSON object; JSON_SCHEMA: JSON following a schema "
    "(needs a model with the STRUCTURED_OUTPUT capability).",
)


@strawberry.enum(description="How closely the model looks at an image (OpenAI's `detail`; others ignore it).")
class ImageDetail(StrEnum):
    LOW = "low"
    HIGH = "high"
    AUTO = "auto"


@strawberry.input(
    description="An image, by https URL (the provider fetches it) or as base64 data with its media type, "
    'e.g. `{url: "https://example.com/cat.png"}` or `{data: "iVBORw0KGgo…", mediaType: "image/png"}`. '
    "PNG, JPEG, GIF or WebP, at most 5 MB. Needs a model with the VISION capability."
)
class ImageInput:
    url: str | None = strawberry.field(default=None, description='e.g. "https://example.com/cat.png"')
    data: str | None = strawberry.field(default=None, description='Base64 bytes, e.g. "iVBORw0KGgo…".')
    media_type: str | None = strawberry.field(
        default=None, description='With data: "image/png", "image/jpeg", "image/gif" or "image/webp".'
    )
    detail: ImageDetail | None = strawberry.field(
        default=None, description="e.g. LOW. Default: the provider's."
    )


@strawberry.input(
    one_of=True,
    description='One piece of a message: `{text: "What is in this picture?"}` or '
    '`{image: {url: "https://example.com/cat.png"}}`.',
)
class ContentPartInput:
    text: str | None = strawberry.field(
        default=strawberry.UNSET, description='e.g. "What is in this picture?"'
    )
    image: ImageInput | None = strawberry.field(
        default=strawberry.UNSET, description='e.g. `{url: "https://example.com/cat.png", detail: LOW}`'
    )


@strawberry.input(
    description="A tool call the model made, sent back with the assistant's turn, e.g. "
    '`{id: "call_1", name: "get_weather", arguments: "{\\"city\\": \\"Paris\\"}"}`.'
)
class ToolCallInput:
    id: str = strawberry.field(description='The id the model gave the call, e.g. "call_1".')
    name: str = strawberry.field(description='The tool called, e.g. "get_weather".')
    arguments: str = strawberry.field(description="The JSON text of the arguments, as the model wrote it.")


@strawberry.input(
    description="A function the model may call, e.g. "
    '`{name: "get_weather", description: "Current weather of a city", parameters: {type: "object", '
    'properties: {city: {type: "string"}}, required: ["city"]}}`.'
)
class ToolInput:
    name: str = strawberry.field(description='1 to 64 letters, digits, _ or -, e.g. "get_weather".')
    description: str | None = strawberry.field(
        default=None, description='What the tool does, for the model, e.g. "Current weather of a city".'
    )
    parameters: JSON | None = strawberry.field(
        default=None, description='A JSON Schema of an object, e.g. `{type: "object", properties: {}}`.'
    )
    strict: bool = strawberry.field(
        default=False, description="The arguments must follow the schema exactly."
    )


@strawberry.input(
    description='Which tool the model calls, e.g. `{mode: TOOL, name: "get_weather"}` or `{mode: AUTO}`.'
)
class ToolChoiceInput:
    mode: ToolChoiceMode = strawberry.field(description="e.g. REQUIRED.")  # type: ignore[valid-type]
    name: str | None = strawberry.field(
        default=None, description='With mode TOOL: the tool to call, e.g. "get_weather".'
    )


@strawberry.input(
    description='The shape of the answer, e.g. `{type: JSON_OBJECT}` or `{type: JSON_SCHEMA, name: "city", '
    'schema: {type: "object", properties: {name: {type: "string"}}, required: ["name"]}, strict: true}`.'
)
class ResponseFormatInput:
    type: ResponseFormatType = strawberry.field(description="e.g. JSON_OBJECT.")  # type: ignore[valid-type]
    name: str | None = strawberry.field(default=None, description='With JSON_SCHEMA: its name, e.g. "city".')
    schema: JSON | None = strawberry.field(
        default=None,
        description='With JSON_SCHEMA: the JSON Schema, e.g. `{type: "object", properties: {}}`.',
    )
    strict: bool = strawberry.field(default=False, description="With JSON_SCHEMA: follow the schema exactly.")


def parts_of(
    parts: list[ContentPartInput], at: tuple[str, ...], errors: ErrorCollector
) -> tuple[calls.ContentPart, ...]:
    converted: list[calls.ContentPart] = []
    for index, part in enumerate(parts):
        if part.image:
            converted.append(_image(part.image, (*at, str(index), "image"), errors))
        else:
            converted.append(calls.TextPart(part.text or ""))
    return tuple(converted)


def _image(image: ImageInput, at: tuple[str, ...], errors: ErrorCollector) -> calls.ImagePart:
    data = None
    if image.data == "":
        errors.add(GatewayErrorCode.REQUIRED, "must not be empty", *at, "data")
    elif image.data is not None:
        try:
            data = b64decode(image.data, validate=True)
        except (binascii.Error, ValueError):
            errors.add(GatewayErrorCode.INVALID, "must be standard base64 (no data: prefix)", *at, "data")
            data = b""
    detail = image.detail.value if image.detail else None
    return calls.ImagePart(url=image.url, data=data, media_type=image.media_type, detail=detail)


def tool_calls_of(tool_calls: list[ToolCallInput] | None) -> tuple[calls.ToolCall, ...]:
    return tuple(calls.ToolCall(c.id, c.name, c.arguments) for c in tool_calls or ())


def tools_of(tools: list[ToolInput] | None, errors: ErrorCollector) -> tuple[calls.ToolDefinition, ...]:
    converted = []
    for index, tool in enumerate(tools or ()):
        parameters = _object(tool.parameters, ("input", "tools", str(index), "parameters"), errors)
        converted.append(calls.ToolDefinition(tool.name, tool.description, parameters, tool.strict))
    return tuple(converted)


def tool_choice_of(choice: ToolChoiceInput | None) -> calls.ToolChoice | None:
    return calls.ToolChoice(choice.mode, choice.name) if choice else None


def response_format_of(
    response_format: ResponseFormatInput | None, errors: ErrorCollector
) -> calls.ResponseFormat | None:
    if response_format is None:
        return None
    schema = _object(response_format.schema, ("input", "responseFormat", "schema"), errors)
    return calls.ResponseFormat(response_format.type, response_format.name, schema, response_format.strict)


def _object(value: Any, at: tuple[str, ...], errors: ErrorCollector) -> Mapping[str, Any] | None:
    """A JSON value that must be an object (a JSON Schema)."""
    if value is None or isinstance(value, Mapping):
        return value
    errors.add(GatewayErrorCode.INVALID, 'must be a JSON object, e.g. {"type": "object"}', *at)
    return None
