"""Inputs of calls and their translation into gateway requests."""

from __future__ import annotations

import strawberry

from app.api.llm.rich_inputs import (
    ContentPartInput,
    ResponseFormatInput,
    ToolCallInput,
    ToolChoiceInput,
    ToolInput,
    parts_of,
    response_format_of,
    tool_calls_of,
    tool_choice_of,
    tools_of,
)
from app.api.llm.types import ChatRole
from app.domain.calls import ChatMessage
from app.domain.enums import ChatRole as DomainChatRole
from app.domain.errors import ErrorCollector
from app.domain.gateway import CallOperation, GatewayErrorCode, ModelRef
from app.domain.ids import MODEL_TYPES, decode_optional
from app.services.gateway.requests import CallRequest, EmbedCall

_MESSAGE = (
    'One turn: `{role: USER, content: "Hi"}`; with images, `{role: USER, parts: [{text: "What is this?"}, '
    '{image: {url: "https://example.com/cat.png"}}]}`; the tool calls the model made, `{role: ASSISTANT, '
    'toolCalls: [{id: "call_1", name: "get_weather", arguments: "{\\"city\\": \\"Paris\\"}"}]}`; '
    'a tool\'s result, `{role: TOOL, toolCallId: "call_1", content: "{\\"temp\\": 21}"}`.'
)


@strawberry.input(description=_MESSAGE)
class ChatMessageInput:
    role: ChatRole  # type: ignore[valid-type]
    content: str | None = strawberry.field(
        default=None, description="The text of the turn; may be left out when parts or toolCalls carry it."
    )
    parts: list[ContentPartInput] | None = strawberry.field(
        default=None, description="Text and images in order, instead of content (images in USER turns only)."
    )
    tool_calls: list[ToolCallInput] | None = strawberry.field(
        default=None, description="ASSISTANT turns: the tool calls the model made, sent back as it made them."
    )
    tool_call_id: str | None = strawberry.field(
        default=None, description='TOOL turns: the id of the call this result answers, e.g. "call_1".'
    )


@strawberry.input(description="What every call on a model may say: which model, in which project, how.")
class CallOptionsInput:
    model: strawberry.ID | None = strawberry.field(
        default=None, description="Default: the project's default model."
    )
    project_id: strawberry.ID | None = strawberry.field(
        default=None, description="Default: the key's project."
    )
    system_prompt: str | None = strawberry.field(
        default=None, description="After the model's own system prompt."
    )
    temperature: float | None = None
    max_tokens: int | None = None


@strawberry.input
class GenerateInput(CallOptionsInput):
    prompt: str


@strawberry.input
class ChatInput(CallOptionsInput):
    messages: list[ChatMessageInput]
    tools: list[ToolInput] | None = strawberry.field(
        default=None,
        description="Functions the model may call (needs a model with the TOOLS capability), e.g. "
        '`[{name: "get_weather", parameters: {type: "object", properties: {city: {type: "string"}}}}]`.',
    )
    tool_choice: ToolChoiceInput | None = strawberry.field(
        default=None,
        description='Default: AUTO when there are tools. E.g. `{mode: TOOL, name: "get_weather"}`.',
    )
    parallel_tool_calls: bool | None = strawberry.field(
        default=None,
        description="Whether the model may call several tools in one answer, e.g. false. "
        "Default: the provider's.",
    )
    response_format: ResponseFormatInput | None = strawberry.field(
        default=None, description="Default: TEXT. E.g. `{type: JSON_OBJECT}`."
    )


@strawberry.input
class EmbedInput:
    texts: list[str]
    model: strawberry.ID | None = None
    project_id: strawberry.ID | None = None


def generate_call(input: GenerateInput) -> CallRequest:
    return CallRequest(
        operation=CallOperation.GENERATE,
        messages=(ChatMessage(DomainChatRole.USER, input.prompt),),
        model=model_ref(input.model),
        project_id=decode_optional(input.project_id, "Project", ["input", "projectId"]),
        system_prompt=input.system_prompt,
        temperature=input.temperature,
        max_tokens=input.max_tokens,
    )


def chat_call(input: ChatInput, operation: CallOperation) -> CallRequest:
    """The call, or every input that does not translate (bad base64, a schema that is not an
    object) as user errors."""
    errors = ErrorCollector()
    messages = tuple(
        _message(m, ("input", "messages", str(i), "parts"), errors) for i, m in enumerate(input.messages)
    )
    tools = tools_of(input.tools, errors)
    response_format = response_format_of(input.response_format, errors)
    errors.raise_if_any()
    return CallRequest(
        operation=operation,
        messages=messages,
        model=model_ref(input.model),
        project_id=decode_optional(input.project_id, "Project", ["input", "projectId"]),
        system_prompt=input.system_prompt,
        temperature=input.temperature,
        max_tokens=input.max_tokens,
        tools=tools,
        tool_choice=tool_choice_of(input.tool_choice),
        parallel_tool_calls=input.parallel_tool_calls,
        response_format=response_format,
    )


def _message(message: ChatMessageInput, parts_at: tuple[str, ...], errors: ErrorCollector) -> ChatMessage:
    # An empty list sent is a mistake on that field (left out, the message is what its other fields say).
    if message.parts == []:
        errors.add(GatewayErrorCode.REQUIRED, "must not be empty (leave it out instead)", *parts_at)
    if message.tool_calls == []:
        errors.add(
            GatewayErrorCode.REQUIRED, "must not be empty (leave it out instead)", *parts_at[:-1], "toolCalls"
        )
    return ChatMessage(
        message.role,
        message.content or "",
        parts=parts_of(message.parts or [], parts_at, errors),
        tool_calls=tool_calls_of(message.tool_calls),
        tool_call_id=message.tool_call_id,
    )


def embed_call(input: EmbedInput) -> EmbedCall:
    return EmbedCall(
        texts=tuple(input.texts),
        model=model_ref(input.model),
        project_id=decode_optional(input.project_id, "Project", ["input", "projectId"]),
    )


def model_ref(model: strawberry.ID | None) -> ModelRef:
    """GraphQL's `model` is an ID: a model's id, never a name."""
    return ModelRef(id=decode_optional(model, MODEL_TYPES, ["input", "model"]))
