"""GraphQL types of calls: results, usage, warnings and the chatStream events."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

import strawberry

from app.api.errors import UserError
from app.api.models.types import Model, model_type
from app.domain import calls, gateway
from app.domain.calls import Usage
from app.domain.enums import ChatRole as DomainChatRole
from app.domain.enums import FinishReason as DomainFinishReason

ChatRole = strawberry.enum(DomainChatRole)
FinishReason = strawberry.enum(DomainFinishReason, description="Why the model stopped writing.")
GatewayErrorCode = strawberry.enum(gateway.GatewayErrorCode, name="GatewayErrorCode")
CallWarningCode = strawberry.enum(gateway.WarningCode, name="CallWarningCode")


@strawberry.type
class TokenUsage:
    input_tokens: int
    output_tokens: int
    total_tokens: int
    credits: Decimal = strawberry.field(description="(input + output) / 1000 x the model's creditMultiplier.")

    @classmethod
    def of(cls, usage: Usage, credits: Decimal) -> TokenUsage:
        return cls(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            total_tokens=usage.total_tokens,
            credits=credits,
        )


@strawberry.type(description="Something the caller should know: a deprecation, a migration, a fallback.")
class CallWarning:
    code: CallWarningCode  # type: ignore[valid-type]
    message: str
    end_of_life_at: datetime | None
    replacement: Model | None = strawberry.field(
        description="The replacement of a deprecated or migrated model, when you may use it."
    )

    @classmethod
    def of(cls, warning: gateway.CallWarning) -> CallWarning:
        return cls(
            code=warning.code,
            message=warning.message,
            end_of_life_at=warning.end_of_life_at,
            replacement=model_type(warning.replacement) if warning.replacement else None,
        )


def warnings_of(warnings: tuple[gateway.CallWarning, ...]) -> list[CallWarning]:
    return [CallWarning.of(w) for w in warnings]


@strawberry.type(
    description="A call of one of your tools that the model asks for: make it, then send its result "
    'as a TOOL message, e.g. `{role: TOOL, toolCallId: "call_1", content: "{\\"temp\\": 21}"}`.'
)
class ToolCall:
    id: str
    name: str
    arguments: str = strawberry.field(description="The arguments, as the JSON text the model wrote.")

    @classmethod
    def of(cls, call: calls.ToolCall) -> ToolCall:
        return cls(id=call.id, name=call.name, arguments=call.arguments)


@strawberry.type
class ChatMessage:
    role: ChatRole  # type: ignore[valid-type]
    content: str
    tool_calls: list[ToolCall] = strawberry.field(
        default_factory=list, description="The tools the model wants called (finishReason TOOL_CALLS)."
    )


@strawberry.type
class GatewayUserError(UserError):
    code: GatewayErrorCode  # type: ignore[valid-type]


def gateway_error(code: str, field: list[str] | None, message: str) -> GatewayUserError:
    return GatewayUserError(code=gateway.GatewayErrorCode(code), field=field, message=message)


@strawberry.type(description="The stream began: which model was asked for and which one answers.")
class ChatStreamStart:
    request_id: str
    model: Model
    served_by: Model


@strawberry.type(description="The next piece of the answer; `index` counts from 0 (again after a reset).")
class ChatStreamDelta:
    text: str
    index: int


@strawberry.type(
    description="A piece of a tool call as the model writes it: `index` orders the calls of the answer; "
    "the first piece of a call has its `id` and `name`, each piece a fragment of its JSON arguments. "
    "A ChatStreamToolCall follows with the call whole."
)
class ChatStreamToolCallDelta:
    index: int
    id: str | None
    name: str | None
    arguments_delta: str


@strawberry.type(
    description="A tool call, complete (after its deltas): make it and send its result as a TOOL message. "
    "The call is a ToolCall, as `chat` returns it (so its fields do not clash with the delta's nullable "
    'id and name in one selection), e.g. `{index: 0, toolCall: {id: "call_1", name: "get_weather", '
    'arguments: "{\\"city\\": \\"Paris\\"}"}}`.'
)
class ChatStreamToolCall:
    index: int
    tool_call: ToolCall


@strawberry.type(description="The stream failed over after text was sent: discard what you have.")
class ChatStreamReset:
    reason: str
    served_by: Model


@strawberry.type(description="The answer is complete.")
class ChatStreamEnd:
    finish_reason: FinishReason  # type: ignore[valid-type]
    usage: TokenUsage
    warnings: list[CallWarning]


@strawberry.type(description="The call failed (an expected failure); the stream then completes.")
class ChatStreamError:
    code: GatewayErrorCode  # type: ignore[valid-type]
    message: str
    retryable: bool
    retry_after: float | None = strawberry.field(description="Seconds, when the provider said.")


ChatStreamEvent = Annotated[
    ChatStreamStart
    | ChatStreamDelta
    | ChatStreamToolCallDelta
    | ChatStreamToolCall
    | ChatStreamReset
    | ChatStreamEnd
    | ChatStreamError,
    strawberry.union("ChatStreamEvent"),
]
