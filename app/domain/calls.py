"""The call vocabulary shared by the providers, the gateway and both doors: messages (text, image
parts, tool calls and tool results), tool definitions and choice, the response format, usage, the
provider stream events and the failure codes of an attempt. Owned by the domain so that neither
door has to import the provider layer to speak of a call."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from app.domain.enums import ChatRole, FinishReason


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str


# OpenAI's rule for tool and schema names; every other provider accepts at least these.
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}\Z")

# The image types every vision provider takes, and the largest image Modelgate passes on or downloads
# (Bedrock's own limit is 3.75 MB; Gemini's request limit is 20 MB).
IMAGE_MEDIA_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
MAX_IMAGE_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image for the model to look at: an https URL (the provider fetches it) or the bytes
    themselves with their media type."""

    url: str | None = None
    data: bytes | None = None
    media_type: str | None = None  # image/png, image/jpeg, image/gif or image/webp; required with data
    detail: str | None = None  # OpenAI's resolution hint: low, high or auto


ContentPart = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model asks the caller to make: `arguments` is the JSON text the model wrote."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One turn. Plain text is `content`; a message with images has its `parts` in order instead
    (and no `content`). An assistant turn may carry `tool_calls`; a TOOL turn answers the call
    `tool_call_id` with its `content`."""

    role: ChatRole
    content: str = ""
    parts: tuple[ContentPart, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    @property
    def text(self) -> str:
        """Every text of the message, in order (images left out)."""
        if not self.parts:
            return self.content
        return "\n".join(p.text for p in self.parts if isinstance(p, TextPart))

    def content_parts(self) -> tuple[ContentPart, ...]:
        """The message's content as parts: its parts, or its text as one part (none when empty)."""
        if self.parts:
            return self.parts
        return (TextPart(self.content),) if self.content else ()

    @property
    def images(self) -> tuple[ImagePart, ...]:
        return tuple(p for p in self.parts if isinstance(p, ImagePart))


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """A function the model may call: its name, what it does and its parameters (a JSON Schema
    of an object). `strict`: the arguments must follow the schema exactly."""

    name: str
    description: str | None = None
    parameters: Mapping[str, Any] | None = None
    strict: bool = False


class ToolChoiceMode(StrEnum):
    AUTO = "AUTO"  # the model decides
    NONE = "NONE"  # no tool call
    REQUIRED = "REQUIRED"  # at least one tool call
    TOOL = "TOOL"  # a call of the named tool


@dataclass(frozen=True, slots=True)
class ToolChoice:
    mode: ToolChoiceMode = ToolChoiceMode.AUTO
    name: str | None = None  # with TOOL


class ResponseFormatType(StrEnum):
    TEXT = "TEXT"
    JSON_OBJECT = "JSON_OBJECT"  # any JSON object
    JSON_SCHEMA = "JSON_SCHEMA"  # JSON that follows `schema`


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    type: ResponseFormatType = ResponseFormatType.TEXT
    name: str | None = None  # the schema's name (OpenAI requires one)
    schema: Mapping[str, Any] | None = None
    strict: bool = False


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class UsageUpdate:
    """Usage so far; a later update replaces an earlier one."""

    usage: Usage


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call as it is streamed: the call is the `index`-th of the answer (in
    order); the first piece of each call carries its `id` and `name`, every piece a fragment of its
    JSON `arguments`."""

    index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCallDone:
    """A streamed tool call, complete (sent after its last delta, before the stream finishes)."""

    index: int
    call: ToolCall


@dataclass(frozen=True, slots=True)
class Finished:
    reason: FinishReason


@dataclass(frozen=True, slots=True)
class StreamFailed:
    error: ProviderError


StreamEvent = TextDelta | ToolCallDelta | ToolCallDone | UsageUpdate | Finished | StreamFailed


class ProviderErrorCode(StrEnum):
    RATE_LIMITED = "RATE_LIMITED"
    OVERLOADED = "OVERLOADED"
    TIMEOUT = "TIMEOUT"
    CONNECT_FAILED = "CONNECT_FAILED"
    CONTEXT_TOO_LONG = "CONTEXT_TOO_LONG"
    CONTENT_FILTERED = "CONTENT_FILTERED"
    AUTH_FAILED = "AUTH_FAILED"
    BAD_REQUEST = "BAD_REQUEST"
    UPSTREAM_ERROR = "UPSTREAM_ERROR"
    MALFORMED_RESPONSE = "MALFORMED_RESPONSE"
    # The answer stopped before its end: no finish reason, no terminal event (EOF or a cut body).
    TRUNCATED = "TRUNCATED"


_RETRYABLE_BY_DEFAULT = frozenset(
    {
        ProviderErrorCode.RATE_LIMITED,
        ProviderErrorCode.OVERLOADED,
        ProviderErrorCode.TIMEOUT,
        ProviderErrorCode.CONNECT_FAILED,
        ProviderErrorCode.UPSTREAM_ERROR,
        ProviderErrorCode.MALFORMED_RESPONSE,
        ProviderErrorCode.TRUNCATED,
    }
)


class ProviderError(Exception):
    """The only exception adapters raise. `message` is safe to show a caller: it never holds
    upstream headers, the request, or a credential."""

    def __init__(
        self,
        code: ProviderErrorCode,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.retryable = code in _RETRYABLE_BY_DEFAULT if retryable is None else retryable

    def __repr__(self) -> str:
        return f"ProviderError({self.code}, {self.message!r}, status={self.status})"
