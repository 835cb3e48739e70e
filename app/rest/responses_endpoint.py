"""POST /v1/responses: one gateway `complete` (CHAT), answered as OpenAI's Responses API answers.

The output is the answer's text as one `message` item (`output_text`), then each tool call as a
`function_call` item — what the SDK's `response.output_text`, `client.responses.parse` (`parsed`,
`parsed_arguments`) and an agent loop that sends `response.output` back as input read.
"""

from __future__ import annotations

import re
import time
from typing import Any

from aiohttp import web

from app.domain.enums import FinishReason
from app.domain.errors import UserInputError
from app.domain.ids import model_global_id
from app.rest.caller import body_of, caller_of
from app.rest.errors import RestError, from_gateway
from app.rest.headers import call_headers
from app.rest.responses import json_response, modelgate_extension
from app.rest.responses_input import ResponsesRequest, call_request
from app.services.gateway.service import CallResult, as_gateway_error

_INCOMPLETE = {FinishReason.LENGTH: "max_output_tokens", FinishReason.CONTENT_FILTER: "content_filter"}
# The gateway's params that are named otherwise here (messages are built from `input` and `instructions`).
_PARAMS = {"messages": "input", "max_tokens": "max_output_tokens", "response_format": "text.format"}


async def create_response(request: web.Request) -> web.StreamResponse:
    caller = await caller_of(request)
    body = await body_of(request, ResponsesRequest)
    call = call_request(body, caller.project_id)
    try:
        result = await caller.services.gateway.complete(caller.principal, call, caller.request_id)
    except UserInputError as exc:
        raise _renamed(from_gateway(as_gateway_error(exc))) from None
    answer_id = f"resp_{caller.request_id}"
    incomplete = _INCOMPLETE.get(result.finish_reason)
    fmt = body.text.format if body.text and body.text.format else None
    return json_response(
        {
            "id": answer_id,
            "object": "response",
            "created_at": int(time.time()),
            "status": "incomplete" if incomplete else "completed",
            "error": None,
            "incomplete_details": {"reason": incomplete} if incomplete else None,
            "instructions": body.instructions,
            "max_output_tokens": body.max_output_tokens,
            "model": model_global_id(result.served.record),
            "output": _output(result, caller.request_id, incomplete is not None),
            "parallel_tool_calls": body.parallel_tool_calls is not False,
            "previous_response_id": None,
            "temperature": body.temperature,
            "text": {"format": fmt.model_dump(by_alias=True, exclude_none=True) if fmt else {"type": "text"}},
            "tool_choice": _dumped(body.tool_choice) or "auto",
            "tools": [_dumped(t) for t in body.tools or ()],
            "top_p": None,
            "truncation": "disabled",
            "usage": {
                "input_tokens": result.usage.input_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": result.usage.output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": result.usage.total_tokens,
            },
            "metadata": body.metadata or {},
            "store": False,  # Modelgate keeps no responses
            "modelgate": modelgate_extension(
                caller.request_id, result.requested, result.served, result.credits, result.warnings
            ),
        },
        headers=call_headers(result.served, result.warnings),
    )


def _output(result: CallResult, request_id: str, incomplete: bool) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if result.text or not result.tool_calls:
        text = {"type": "output_text", "text": result.text, "annotations": [], "logprobs": []}
        items.append(
            {
                "id": f"msg_{request_id}",
                "type": "message",
                "status": "incomplete" if incomplete else "completed",
                "role": "assistant",
                "content": [text],
            }
        )
    for index, call in enumerate(result.tool_calls):
        items.append(
            {
                "id": f"fc_{request_id}_{index}",
                "type": "function_call",
                "status": "completed",
                "call_id": call.id,
                "name": call.name,
                "arguments": call.arguments,
            }
        )
    return items


def _dumped(value: Any) -> Any:
    return value.model_dump(by_alias=True, exclude_none=True) if hasattr(value, "model_dump") else value


def _renamed(error: RestError) -> RestError:
    """The gateway names the chat call's fields; here they are the Responses API's."""
    head = re.split(r"[.\[]", error.param, maxsplit=1)[0] if error.param else None
    if head in _PARAMS:
        error.param = _PARAMS[head]
    return error
