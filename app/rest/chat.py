"""POST /v1/chat/completions: one gateway `complete` (CHAT) or `chat_stream` call."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any
from uuid import UUID

from aiohttp import web

from app.domain.calls import TextDelta, ToolCall, ToolCallDelta, ToolCallDone
from app.domain.gateway import (
    CallOperation,
    GatewayStreamEvent,
    ModelRef,
    StreamEnd,
    StreamError,
    StreamReset,
    StreamStart,
)
from app.domain.ids import model_global_id
from app.rest.caller import Caller, body_of, caller_of
from app.rest.chat_messages import call_messages
from app.rest.chat_tools import NamedTool, response_format, tool_choice, tool_definitions
from app.rest.errors import RestError, from_gateway
from app.rest.headers import call_headers
from app.rest.responses import finish_reason, json_response, modelgate_extension, usage_object
from app.rest.schemas import ChatCompletionRequest
from app.rest.streaming import DONE, SSE_HEADERS, STREAMS, ChatChunks
from app.services.gateway.requests import CallRequest
from app.services.revocation import stream_refused

log = logging.getLogger("modelgate.rest")


async def chat_completions(request: web.Request) -> web.StreamResponse:
    caller = await caller_of(request)
    body = await body_of(request, ChatCompletionRequest)
    if body.stream_options is not None and not body.stream:
        raise RestError(
            400,
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
            code="invalid_value",
        )
    call = call_request(body, caller.project_id)
    if body.stream:
        return await _stream(request, caller, call, include_usage=body.include_usage)
    result = await caller.services.gateway.complete(caller.principal, call, caller.request_id)
    return json_response(
        {
            "id": f"chatcmpl-{caller.request_id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model_global_id(result.served.record),
            "choices": [
                {
                    "index": 0,
                    "message": assistant_message(result.text, result.tool_calls),
                    "logprobs": None,
                    "finish_reason": finish_reason(result.finish_reason),
                }
            ],
            "usage": usage_object(result.usage),
            "system_fingerprint": None,
            "modelgate": modelgate_extension(
                caller.request_id, result.requested, result.served, result.credits, result.warnings
            ),
        },
        headers=call_headers(result.served, result.warnings),
    )


def call_request(body: ChatCompletionRequest, project_id: UUID | None) -> CallRequest:
    tools = tool_definitions(body.tools)
    return CallRequest(
        operation=CallOperation.CHAT_STREAM if body.stream else CallOperation.CHAT,
        messages=call_messages(body.messages),
        model=ModelRef.parse(body.model),
        project_id=project_id,
        temperature=body.temperature,
        max_tokens=body.output_limit,
        tools=tools,
        tool_choice=tool_choice(
            body.tool_choice if isinstance(body.tool_choice, str) else None,
            body.tool_choice.function.name if isinstance(body.tool_choice, NamedTool) else None,
            tools,
        ),
        parallel_tool_calls=body.parallel_tool_calls if tools else None,
        response_format=response_format(body.response_format),
        # OpenAI's stream has no way to take back text already sent: fail over only before it.
        fail_over_after_text=False,
    )


def assistant_message(text: str, tool_calls: tuple[ToolCall, ...]) -> dict[str, Any]:
    """OpenAI's answer message: content null when the answer is only tool calls."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text if text or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in tool_calls
        ]
    return message


async def _stream(
    request: web.Request, caller: Caller, call: CallRequest, *, include_usage: bool
) -> web.StreamResponse:
    events = caller.services.revocations.until_refused(
        caller.session,
        caller.services.gateway.chat_stream(caller.principal, call, caller.request_id),
        stream_refused,
    )
    response: web.StreamResponse | None = None
    try:
        async with request.app[STREAMS].watching(request), aclosing(events):
            first = await anext(events, None)
            if isinstance(first, StreamError):
                raise from_gateway(first.error)  # nothing sent yet: a plain HTTP error
            if not isinstance(first, StreamStart):
                raise RuntimeError(f"a chat stream began with {first!r}")
            headers = {**SSE_HEADERS, **call_headers(first.served, first.warnings)}
            chunks = ChatChunks(
                f"chatcmpl-{caller.request_id}",
                int(time.time()),
                model_global_id(first.served.record),
                include_usage=include_usage,
            )
            response = web.StreamResponse(headers=headers)
            await response.prepare(request)
            try:
                await _relay(response, events, chunks, include_usage=include_usage)
            except ConnectionError:
                raise
            except Exception:
                log.exception("a chat stream failed", extra={"requestId": caller.request_id})
                await response.write(RestError(500, "Unexpected error.", type="server_error").frame())
                await response.write(DONE)
            await response.write_eof()
    except ConnectionError:
        pass  # the client left while we wrote; leaving the block closed the gateway's stream
    # 499: the client closed the request before anything was sent (nginx's convention).
    return response if response is not None else web.Response(status=499)


async def _relay(
    response: web.StreamResponse,
    events: AsyncGenerator[GatewayStreamEvent],
    chunks: ChatChunks,
    *,
    include_usage: bool,
) -> None:
    """Writes the answer as it comes. Before the last frame the gateway's stream is closed, so
    that the call is metered and its stream slot free by the time the client sees the end. Every
    stream ends with `[DONE]`, a failed one after its error frame."""
    async for event in events:
        if isinstance(event, TextDelta):
            await response.write(chunks.text(event.text))
        elif isinstance(event, ToolCallDelta | ToolCallDone):
            await response.write(chunks.tool_call(event))
        elif isinstance(event, StreamEnd):
            await response.write(chunks.finish(event.finish_reason))
            if include_usage:
                await response.write(chunks.usage(event.usage))
            await events.aclose()
            await response.write(DONE)
            return
        elif isinstance(event, StreamError):
            await events.aclose()
            await response.write(from_gateway(event.error).frame())
            await response.write(DONE)
            return
        elif isinstance(event, StreamReset):
            # Not sent to this front door (fail_over_after_text=False); never relay a mixed answer.
            await events.aclose()
            error = RestError(502, "the model failed mid-answer", type="server_error", code="provider_error")
            await response.write(error.frame())
            await response.write(DONE)
            return
