"""POST /v1/completions: the legacy text completion, as one gateway GENERATE call (COMPLETION and
CHAT models). Not streamed: the gateway streams chat only, so `stream: true` is refused."""

from __future__ import annotations

import time

from aiohttp import web

from app.domain.calls import ChatMessage
from app.domain.enums import ChatRole
from app.domain.gateway import CallOperation, ModelRef
from app.domain.ids import model_global_id
from app.rest.caller import body_of, caller_of
from app.rest.headers import call_headers
from app.rest.responses import finish_reason, json_response, modelgate_extension, usage_object
from app.rest.schemas import CompletionRequest
from app.services.gateway.requests import CallRequest


async def completions(request: web.Request) -> web.StreamResponse:
    caller = await caller_of(request)
    body = await body_of(request, CompletionRequest)
    call = CallRequest(
        operation=CallOperation.GENERATE,
        messages=(ChatMessage(ChatRole.USER, body.prompt_text),),
        model=ModelRef.parse(body.model),
        project_id=caller.project_id,
        temperature=body.temperature,
        max_tokens=body.max_tokens,
    )
    result = await caller.services.gateway.complete(caller.principal, call, caller.request_id)
    choice = {
        "text": result.text,
        "index": 0,
        "logprobs": None,
        "finish_reason": finish_reason(result.finish_reason),
    }
    return json_response(
        {
            "id": f"cmpl-{caller.request_id}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model_global_id(result.served.record),
            "choices": [choice],
            "usage": usage_object(result.usage),
            "system_fingerprint": None,
            "modelgate": modelgate_extension(
                caller.request_id, result.requested, result.served, result.credits, result.warnings
            ),
        },
        headers=call_headers(result.served, result.warnings),
    )
