"""chatStream: the gateway's stream events as GraphQL events. Expected failures arrive as a
ChatStreamError event, after which the stream completes; cancelling the subscription closes the
gateway's generator, which closes the upstream request."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing

import strawberry

from app.api.context import GraphQLInfo, authenticated, services
from app.api.input_check import refuse_unstorable_named
from app.api.llm.inputs import ChatInput, chat_call
from app.api.llm.types import (
    ChatStreamDelta,
    ChatStreamEnd,
    ChatStreamError,
    ChatStreamEvent,
    ChatStreamReset,
    ChatStreamStart,
    ChatStreamToolCall,
    ChatStreamToolCallDelta,
    TokenUsage,
    ToolCall,
    warnings_of,
)
from app.api.models.types import model_type
from app.api.revocation import until_refused
from app.domain.calls import TextDelta, ToolCallDelta, ToolCallDone
from app.domain.errors import UserInputError
from app.domain.gateway import (
    CallOperation,
    GatewayError,
    GatewayStreamEvent,
    StreamEnd,
    StreamReset,
    StreamStart,
)
from app.services.gateway.service import as_gateway_error


class _Events:
    """The gateway's stream events as GraphQL's; `ChatStreamDelta.index` counts the deltas of the
    current answer (from 0 again after a reset)."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.index = 0

    def of(self, event: GatewayStreamEvent) -> ChatStreamEvent:
        if isinstance(event, TextDelta):
            self.index += 1
            return ChatStreamDelta(text=event.text, index=self.index - 1)
        if isinstance(event, ToolCallDelta):
            return ChatStreamToolCallDelta(
                index=event.index, id=event.id, name=event.name, arguments_delta=event.arguments
            )
        if isinstance(event, ToolCallDone):
            return ChatStreamToolCall(index=event.index, tool_call=ToolCall.of(event.call))
        if isinstance(event, StreamStart):
            return ChatStreamStart(
                request_id=self.request_id,
                model=model_type(event.requested),
                served_by=model_type(event.served),
            )
        if isinstance(event, StreamReset):
            self.index = 0
            return ChatStreamReset(reason=event.reason, served_by=model_type(event.served))
        if isinstance(event, StreamEnd):
            return ChatStreamEnd(
                finish_reason=event.finish_reason,
                usage=TokenUsage.of(event.usage, event.credits),
                warnings=warnings_of(event.warnings),
            )
        return _error(event.error)


def _error(error: GatewayError) -> ChatStreamError:
    return ChatStreamError(
        code=error.code, message=error.message, retryable=error.retryable, retry_after=error.retry_after
    )


@strawberry.type
class LlmSubscriptions:
    @strawberry.subscription(description="A chat answer as it is written. Needs llm:invoke.")
    async def chat_stream(self, info: GraphQLInfo, input: ChatInput) -> AsyncGenerator[ChatStreamEvent, None]:
        principal = authenticated(info)
        # Every stream its own id, also when many share one WebSocket (and so one context).
        request_id = uuid.uuid4().hex
        try:
            refuse_unstorable_named(input, "input")
            request = chat_call(input, CallOperation.CHAT_STREAM)
        except UserInputError as exc:
            yield _error(as_gateway_error(exc))
            return
        stream = services(info).gateway.chat_stream(principal, request, request_id)
        graphql = _Events(request_id)
        async with aclosing(until_refused(info, stream)) as events:
            async for event in events:
                yield graphql.of(event)
