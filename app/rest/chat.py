"""POST /v1/chat/completions: one gateway `complete` (CHAT) or `chat_stream` call."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from aiohttp import web

from app.domain.calls import ToolCall
from app.domain.gateway import CallOperation, ModelRef, StreamStart
from app.domain.ids import model_global_id
from app.rest.caller import body_of, caller_of
from app.rest.chat_messages import call_messages
from app.rest.chat_tools import NamedTool, response_format, tool_choice, tool_definitions
from app.rest.errors import RestError
from app.rest.headers import call_headers
from app.rest.responses import finish_reason, json_response, modelgate_extension, usage_object
from app.rest.schemas import ChatCompletionRequest
from app.rest.stream_relay import relay
from app.rest.streaming import ChatChunks
from app.services.gateway.requests import CallRequest


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

        def chunks(first: StreamStart) -> ChatChunks:
            created, model = int(time.time()), model_global_id(first.served.record)
            return ChatChunks(
                f"chatcmpl-{caller.request_id}", created, model, include_usage=body.include_usage
            )

        return await relay(request, caller, call, chunks)
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
