"""What a caller asks the gateway for, and the rules on it (checked before anything else)."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from app.domain.calls import ChatMessage, ResponseFormat, ToolChoice, ToolDefinition
from app.domain.errors import ErrorCollector
from app.domain.gateway import CallOperation, GatewayErrorCode, ModelRef
from app.services.gateway.content_rules import check_messages, check_response_format, check_tools

MAX_MESSAGES = 1000
MAX_SYSTEM_PROMPT = 50_000
MAX_TEXT = 1_000_000
MAX_EMBED_TEXTS = 100
MAX_TEMPERATURE = 2.0


@dataclass(frozen=True, slots=True)
class CallRequest:
    """A generate or chat call. For generate, `messages` holds the prompt as one user message."""

    operation: CallOperation
    messages: tuple[ChatMessage, ...]
    model: ModelRef = field(default_factory=ModelRef)
    project_id: UUID | None = None
    system_prompt: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    tools: tuple[ToolDefinition, ...] = ()
    tool_choice: ToolChoice | None = None  # None: the provider's default (auto when there are tools)
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None  # None: text
    # A stream that fails after text was sent moves on to the next fallback with a reset (GraphQL's
    # ChatStreamReset). False for front doors that cannot retract text (the OpenAI-compatible REST
    # API): such a stream ends with PROVIDER_ERROR instead.
    fail_over_after_text: bool = True


@dataclass(frozen=True, slots=True)
class EmbedCall:
    texts: tuple[str, ...]
    model: ModelRef = field(default_factory=ModelRef)
    project_id: UUID | None = None


def check_call(request: CallRequest) -> None:
    errors = ErrorCollector()
    if request.operation is CallOperation.GENERATE:
        if not request.messages or not request.messages[0].content.strip():
            errors.add(GatewayErrorCode.REQUIRED, "must not be empty", "input", "prompt")
        elif len(request.messages[0].content) > MAX_TEXT:
            errors.add(GatewayErrorCode.TOO_LONG, f"must be at most {MAX_TEXT} characters", "input", "prompt")
    else:
        if not request.messages:
            errors.add(GatewayErrorCode.REQUIRED, "at least one message is needed", "input", "messages")
        elif len(request.messages) > MAX_MESSAGES:
            errors.add(GatewayErrorCode.TOO_LONG, f"at most {MAX_MESSAGES} messages", "input", "messages")
        check_messages(request.messages[:MAX_MESSAGES], errors)
        for index, message in enumerate(request.messages[:MAX_MESSAGES]):
            if len(message.text) > MAX_TEXT:
                errors.add(
                    GatewayErrorCode.TOO_LONG,
                    f"must be at most {MAX_TEXT} characters",
                    "input",
                    "messages",
                    str(index),
                    "parts" if message.parts else "content",
                )
        check_tools(request.tools, request.tool_choice, errors)
        check_response_format(request.response_format, errors)
    if request.system_prompt is not None and len(request.system_prompt) > MAX_SYSTEM_PROMPT:
        errors.add(
            GatewayErrorCode.TOO_LONG,
            f"must be at most {MAX_SYSTEM_PROMPT} characters",
            "input",
            "systemPrompt",
        )
    if request.temperature is not None and not 0 <= request.temperature <= MAX_TEMPERATURE:
        errors.add(
            GatewayErrorCode.OUT_OF_RANGE, f"must be between 0 and {MAX_TEMPERATURE}", "input", "temperature"
        )
    if request.max_tokens is not None and request.max_tokens < 1:
        errors.add(GatewayErrorCode.OUT_OF_RANGE, "must be at least 1", "input", "maxTokens")
    errors.raise_if_any()


def check_embed(request: EmbedCall) -> None:
    errors = ErrorCollector()
    if not request.texts:
        errors.add(GatewayErrorCode.REQUIRED, "at least one text is needed", "input", "texts")
    elif len(request.texts) > MAX_EMBED_TEXTS:
        errors.add(GatewayErrorCode.TOO_LONG, f"at most {MAX_EMBED_TEXTS} texts", "input", "texts")
    for index, text in enumerate(request.texts[:MAX_EMBED_TEXTS]):
        if not text.strip():
            errors.add(GatewayErrorCode.REQUIRED, "must not be empty", "input", "texts", str(index))
        elif len(text) > MAX_TEXT:
            errors.add(
                GatewayErrorCode.TOO_LONG,
                f"must be at most {MAX_TEXT} characters",
                "input",
                "texts",
                str(index),
            )
    errors.raise_if_any()
