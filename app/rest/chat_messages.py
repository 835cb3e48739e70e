"""The `messages` of a chat completion request, with OpenAI's shapes, and their call messages.

Content is a string or a list of parts: `{"type": "text", "text"}`, and in user messages
`{"type": "image_url", "image_url": {"url", "detail"}}` — an https URL stays a URL (the provider
fetches it, never Modelgate), a `data:image/…;base64,…` URL becomes the image's bytes. An assistant
turn may carry `tool_calls` (its content then may be null); a `tool` message answers one of them by
`tool_call_id`. pydantic checks the types; `call_messages` the rules between fields and messages,
with OpenAI's messages and `param` paths.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from app.domain.calls import ChatMessage, ContentPart, ImagePart, TextPart, ToolCall
from app.domain.enums import ChatRole
from app.rest.errors import RestError, invalid, missing

_ROLES = {
    "system": ChatRole.SYSTEM,
    "developer": ChatRole.SYSTEM,  # OpenAI's newer name for the system role
    "user": ChatRole.USER,
    "assistant": ChatRole.ASSISTANT,
    "tool": ChatRole.TOOL,
}
# What the providers take inline (the provider layer's list; the REST door may not import it).
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_DATA_URL = re.compile(r"^data:([^;,]+);base64,(.*)$", re.DOTALL)


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ImageURL(_Shape):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class Part(_Shape):
    type: Literal["text", "image_url"]
    text: str | None = None
    image_url: ImageURL | None = None


class FunctionCall(_Shape):
    name: str
    arguments: str
    parsed_arguments: Any = None  # ignored: the SDK's `parse` adds it to the message it returns


class MessageToolCall(_Shape):
    id: str
    type: Literal["function"]
    function: FunctionCall
    index: int | None = None  # ignored: the SDK's stream helper leaves the chunks' index on its calls


class Message(_Shape):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[Part] | None = None
    name: str | None = None  # ignored
    tool_calls: list[MessageToolCall] | None = None
    tool_call_id: str | None = None
    # An earlier assistant turn as the SDK returned it: accepted and ignored.
    refusal: str | None = None
    annotations: list[Any] | None = None
    audio: None = None
    function_call: None = None  # the deprecated function calling (see schemas.py)
    parsed: Any = None  # added by the SDK's `parse`


def call_messages(messages: list[Message]) -> tuple[ChatMessage, ...]:
    converted = tuple(_message(m, f"messages[{i}]") for i, m in enumerate(messages))
    _check_tool_turns(messages)
    return converted


def _message(message: Message, where: str) -> ChatMessage:
    role = _ROLES[message.role]
    if message.tool_calls is not None and message.role != "assistant":
        raise invalid(f"{where}.tool_calls", "only assistant messages carry 'tool_calls'")
    if message.tool_call_id is not None and message.role != "tool":
        raise invalid(f"{where}.tool_call_id", "only tool messages carry a 'tool_call_id'")
    if message.role == "tool" and message.tool_call_id is None:
        raise missing(f"{where}.tool_call_id")
    calls = tuple(ToolCall(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or ())
    if message.content is None:
        if not calls:
            raise missing(f"{where}.content")
        return ChatMessage(role, tool_calls=calls)
    if isinstance(message.content, str):
        return ChatMessage(role, message.content, tool_calls=calls, tool_call_id=message.tool_call_id)
    parts = tuple(_part(p, f"{where}.content[{n}]", message.role) for n, p in enumerate(message.content))
    if any(isinstance(p, ImagePart) for p in parts):
        return ChatMessage(role, parts=parts)
    text = "\n".join(p.text for p in parts if isinstance(p, TextPart))
    return ChatMessage(role, text, tool_calls=calls, tool_call_id=message.tool_call_id)


def _part(part: Part, where: str, role: str) -> ContentPart:
    if part.type == "text":
        if part.text is None:
            raise missing(f"{where}.text")
        return TextPart(part.text)
    if role != "user":
        raise invalid(
            f"{where}.type", f"image parts are only allowed in user messages, not in {role} messages"
        )
    if part.image_url is None:
        raise missing(f"{where}.image_url")
    return image_part(part.image_url.url, part.image_url.detail, f"{where}.image_url.url")


def image_part(url: str, detail: str | None, where: str) -> ImagePart:
    """An https URL as it is (the provider fetches it), a base64 data URL as the image's bytes."""
    if url.startswith("https://"):
        return ImagePart(url=url, detail=detail)
    if not url.startswith("data:"):
        raise invalid(where, "an image is an https URL or a base64 data URL (data:image/png;base64,…)")
    match = _DATA_URL.match(url)
    if match is None:
        raise invalid(where, "a data URL must be base64-encoded: data:<media type>;base64,<data>")
    media_type, encoded = match.groups()
    if media_type not in _IMAGE_TYPES:
        raise RestError(
            400,
            f"{where}: unsupported image type '{media_type}' (supported: {', '.join(_IMAGE_TYPES)})",
            param=where,
            code="invalid_image_format",
        )
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(where, "the data URL's base64 data is invalid") from None
    if not data:
        raise invalid(where, "the data URL holds no image")
    return ImagePart(data=data, media_type=media_type, detail=detail)


def _check_tool_turns(messages: list[Message]) -> None:
    """As OpenAI: every tool message answers a call of the assistant turn just before it (or of
    its tool messages), and every call of an assistant turn is answered before the conversation
    goes on. (A last assistant turn with calls is left alone: its answer is what is being asked.)"""
    open_calls: set[str] | None = None  # the ids the current run of tool messages may answer
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if message.role == "tool":
            if open_calls is None:
                raise invalid(
                    f"{where}.role",
                    "messages with role 'tool' must be a response to a preceding message with 'tool_calls'",
                )
            if message.tool_call_id not in open_calls:
                raise invalid(
                    f"{where}.tool_call_id",
                    f"'{message.tool_call_id}' answers no call of the assistant turn before",
                )
            open_calls.discard(message.tool_call_id)
            continue
        if open_calls:
            raise invalid(
                f"{where}.role",
                "an assistant message with 'tool_calls' must be followed by tool messages answering each "
                f"'tool_call_id'; not answered: {', '.join(sorted(open_calls))}",
            )
        open_calls = {c.id for c in message.tool_calls} if message.tool_calls else None
