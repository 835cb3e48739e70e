"""generate, chat and embed: thin resolvers over the gateway service."""

from __future__ import annotations

import strawberry

from app.api.context import GraphQLInfo, authenticated, services
from app.api.errors import attempt
from app.api.llm.inputs import ChatInput, EmbedInput, GenerateInput, chat_call, embed_call, generate_call
from app.api.llm.types import (
    CallWarning,
    ChatMessage,
    FinishReason,
    GatewayUserError,
    TokenUsage,
    gateway_error,
    warnings_of,
)
from app.api.models.types import Model, model_type
from app.domain.enums import ChatRole
from app.domain.gateway import CallOperation
from app.services.gateway.service import CallResult, EmbedResult


@strawberry.type
class GeneratePayload:
    text: str | None
    model: Model | None = strawberry.field(description="The model asked for (or the project default).")
    served_by: Model | None = strawberry.field(description="Who answered: after a fallback or migration.")
    usage: TokenUsage | None
    finish_reason: FinishReason | None  # type: ignore[valid-type]
    warnings: list[CallWarning]
    request_id: str
    user_errors: list[GatewayUserError]


@strawberry.type
class ChatPayload:
    message: ChatMessage | None
    model: Model | None
    served_by: Model | None
    usage: TokenUsage | None
    finish_reason: FinishReason | None  # type: ignore[valid-type]
    warnings: list[CallWarning]
    request_id: str
    user_errors: list[GatewayUserError]


@strawberry.type
class EmbedPayload:
    embeddings: list[list[float]] | None = strawberry.field(description="One vector per text, in order.")
    model: Model | None
    served_by: Model | None
    usage: TokenUsage | None
    warnings: list[CallWarning]
    request_id: str
    user_errors: list[GatewayUserError]


@strawberry.type
class LlmMutations:
    @strawberry.mutation(description="One prompt, one answer. Needs llm:invoke.")
    async def generate(self, info: GraphQLInfo, input: GenerateInput) -> GeneratePayload:
        principal = authenticated(info)
        request_id = info.context.request_id

        async def work() -> CallResult:
            return await services(info).gateway.complete(principal, generate_call(input), request_id)

        result, errors = await attempt(work(), gateway_error)
        if result is None:
            return GeneratePayload(
                text=None,
                model=None,
                served_by=None,
                usage=None,
                finish_reason=None,
                warnings=[],
                request_id=request_id,
                user_errors=errors,
            )
        return GeneratePayload(
            text=result.text,
            model=model_type(result.requested),
            served_by=model_type(result.served),
            usage=TokenUsage.of(result.usage, result.credits),
            finish_reason=result.finish_reason,
            warnings=warnings_of(result.warnings),
            request_id=request_id,
            user_errors=[],
        )

    @strawberry.mutation(
        description="A conversation; the answer as the assistant's message. Needs llm:invoke."
    )
    async def chat(self, info: GraphQLInfo, input: ChatInput) -> ChatPayload:
        principal = authenticated(info)
        request_id = info.context.request_id

        async def work() -> CallResult:
            return await services(info).gateway.complete(
                principal, chat_call(input, CallOperation.CHAT), request_id
            )

        result, errors = await attempt(work(), gateway_error)
        if result is None:
            return ChatPayload(
                message=None,
                model=None,
                served_by=None,
                usage=None,
                finish_reason=None,
                warnings=[],
                request_id=request_id,
                user_errors=errors,
            )
        return ChatPayload(
            message=ChatMessage(role=ChatRole.ASSISTANT, content=result.text),
            model=model_type(result.requested),
            served_by=model_type(result.served),
            usage=TokenUsage.of(result.usage, result.credits),
            finish_reason=result.finish_reason,
            warnings=warnings_of(result.warnings),
            request_id=request_id,
            user_errors=[],
        )

    @strawberry.mutation(description="Vectors for texts, with an EMBEDDING model. Needs llm:invoke.")
    async def embed(self, info: GraphQLInfo, input: EmbedInput) -> EmbedPayload:
        principal = authenticated(info)
        request_id = info.context.request_id

        async def work() -> EmbedResult:
            return await services(info).gateway.embed(principal, embed_call(input), request_id)

        result, errors = await attempt(work(), gateway_error)
        if result is None:
            return EmbedPayload(
                embeddings=None,
                model=None,
                served_by=None,
                usage=None,
                warnings=[],
                request_id=request_id,
                user_errors=errors,
            )
        return EmbedPayload(
            embeddings=result.vectors,
            model=model_type(result.requested),
            served_by=model_type(result.served),
            usage=TokenUsage.of(result.usage, result.credits),
            warnings=warnings_of(result.warnings),
            request_id=request_id,
            user_errors=[],
        )
