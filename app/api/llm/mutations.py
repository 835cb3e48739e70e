"""generate, chat and embed: thin resolvers over the gateway service."""

from __future__ import annotations

from typing import Any

import strawberry

from app.api.context import GraphQLInfo, services
from app.api.errors import MutationFrame
from app.api.llm.inputs import ChatInput, EmbedInput, GenerateInput, chat_call, embed_call, generate_call
from app.api.llm.types import (
    CallWarning,
    ChatMessage,
    FinishReason,
    GatewayUserError,
    TokenUsage,
    ToolCall,
    gateway_error,
    warnings_of,
)
from app.api.models.types import Model, model_type
from app.domain.auth import Principal
from app.domain.enums import ChatRole
from app.domain.gateway import CallOperation
from app.services.gateway.service import CallResult, EmbedResult


@strawberry.type
class GeneratePayload:
    request_id: str
    user_errors: list[GatewayUserError]
    text: str | None = None
    model: Model | None = strawberry.field(
        default=None, description="The model asked for (or the project default)."
    )
    served_by: Model | None = strawberry.field(
        default=None, description="Who answered: after a fallback or migration."
    )
    usage: TokenUsage | None = None
    finish_reason: FinishReason | None = None  # type: ignore[valid-type]
    warnings: list[CallWarning] = strawberry.field(default_factory=list)


@strawberry.type
class ChatPayload:
    request_id: str
    user_errors: list[GatewayUserError]
    message: ChatMessage | None = None
    model: Model | None = None
    served_by: Model | None = None
    usage: TokenUsage | None = None
    finish_reason: FinishReason | None = None  # type: ignore[valid-type]
    warnings: list[CallWarning] = strawberry.field(default_factory=list)


@strawberry.type
class EmbedPayload:
    request_id: str
    user_errors: list[GatewayUserError]
    embeddings: list[list[float]] | None = strawberry.field(
        default=None, description="One vector per text, in order."
    )
    model: Model | None = None
    served_by: Model | None = None
    usage: TokenUsage | None = None
    warnings: list[CallWarning] = strawberry.field(default_factory=list)


def _served(result: CallResult | EmbedResult) -> dict[str, Any]:
    """What every answered call shows: who was asked, who answered, usage, warnings."""
    return {
        "model": model_type(result.requested),
        "served_by": model_type(result.served),
        "usage": TokenUsage.of(result.usage, result.credits),
        "warnings": warnings_of(result.warnings),
    }


_GATEWAY_FRAME = MutationFrame(gateway_error)


@strawberry.type
class LlmMutations:
    @strawberry.mutation(description="One prompt, one answer. Needs llm:invoke.")
    async def generate(self, info: GraphQLInfo, input: GenerateInput) -> GeneratePayload:
        request_id = info.context.request_id

        async def work(principal: Principal) -> CallResult:
            return await services(info).gateway.complete(principal, generate_call(input), request_id)

        result, errors = await _GATEWAY_FRAME.run(info, input, work)
        if result is None:
            return GeneratePayload(request_id=request_id, user_errors=errors)
        return GeneratePayload(
            request_id=request_id,
            user_errors=[],
            text=result.text,
            finish_reason=result.finish_reason,
            **_served(result),
        )

    @strawberry.mutation(
        description="A conversation; the answer as the assistant's message. Needs llm:invoke."
    )
    async def chat(self, info: GraphQLInfo, input: ChatInput) -> ChatPayload:
        request_id = info.context.request_id

        async def work(principal: Principal) -> CallResult:
            return await services(info).gateway.complete(
                principal, chat_call(input, CallOperation.CHAT), request_id
            )

        result, errors = await _GATEWAY_FRAME.run(info, input, work)
        if result is None:
            return ChatPayload(request_id=request_id, user_errors=errors)
        return ChatPayload(
            request_id=request_id,
            user_errors=[],
            message=ChatMessage(
                role=ChatRole.ASSISTANT,
                content=result.text,
                tool_calls=[ToolCall.of(call) for call in result.tool_calls],
            ),
            finish_reason=result.finish_reason,
            **_served(result),
        )

    @strawberry.mutation(description="Vectors for texts, with an EMBEDDING model. Needs llm:invoke.")
    async def embed(self, info: GraphQLInfo, input: EmbedInput) -> EmbedPayload:
        request_id = info.context.request_id

        async def work(principal: Principal) -> EmbedResult:
            return await services(info).gateway.embed(principal, embed_call(input), request_id)

        result, errors = await _GATEWAY_FRAME.run(info, input, work)
        if result is None:
            return EmbedPayload(request_id=request_id, user_errors=errors)
        return EmbedPayload(
            request_id=request_id, user_errors=[], embeddings=result.vectors, **_served(result)
        )
