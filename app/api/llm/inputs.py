"""Inputs of calls and their translation into gateway requests."""

from __future__ import annotations

import strawberry

from app.api.llm.types import ChatRole
from app.domain.calls import ChatMessage
from app.domain.enums import ChatRole as DomainChatRole
from app.domain.gateway import CallOperation, ModelRef
from app.domain.ids import MODEL_TYPES, decode_optional
from app.services.gateway.requests import CallRequest, EmbedCall


@strawberry.input
class ChatMessageInput:
    role: ChatRole  # type: ignore[valid-type]
    content: str


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
    return CallRequest(
        operation=operation,
        messages=tuple(ChatMessage(m.role, m.content) for m in input.messages),
        model=model_ref(input.model),
        project_id=decode_optional(input.project_id, "Project", ["input", "projectId"]),
        system_prompt=input.system_prompt,
        temperature=input.temperature,
        max_tokens=input.max_tokens,
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
