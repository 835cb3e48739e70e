"""POST /v1/responses: one gateway `complete` (CHAT) or `chat_stream` call, answered as OpenAI's
Responses API answers (responses_output.py) — what the SDK's `response.output_text`,
`client.responses.parse` (`output_parsed`, `parsed_arguments`), `client.responses.stream` and an agent
loop that sends `response.output` back as input read.
"""

from __future__ import annotations

import re
import time
from typing import Any

from aiohttp import web

from app.domain.errors import UserInputError
from app.domain.gateway import StreamStart
from app.domain.ids import model_global_id
from app.rest.caller import body_of, caller_of
from app.rest.errors import RestError, from_gateway
from app.rest.headers import call_headers
from app.rest.responses import json_response, modelgate_extension
from app.rest.responses_input import ResponsesRequest, call_request
from app.rest.responses_output import ResponseEvents, call_item, finished, message_item
from app.rest.stream_relay import relay
from app.services.gateway.service import CallResult, as_gateway_error

# The gateway's params that are named otherwise here (messages are built from `input` and `instructions`).
_PARAMS = {"messages": "input", "max_tokens": "max_output_tokens", "response_format": "text.format"}


async def create_response(request: web.Request) -> web.StreamResponse:
    caller = await caller_of(request)
    body = await body_of(request, ResponsesRequest)
    call = call_request(body, caller.project_id)
    answer_id = f"resp_{caller.request_id}"
    try:
        if body.stream:

            def events(first: StreamStart) -> ResponseEvents:
                return ResponseEvents(
                    _base(body, answer_id, model_global_id(first.served.record)), caller.request_id
                )

            return await relay(request, caller, call, events)
        result = await caller.services.gateway.complete(caller.principal, call, caller.request_id)
    except UserInputError as exc:
        raise _renamed(from_gateway(as_gateway_error(exc))) from None
    except RestError as exc:  # a stream refused before its first event
        raise _renamed(exc) from None
    base = _base(body, answer_id, model_global_id(result.served.record))
    answer = finished(base, result.finish_reason, _output(result, caller.request_id), result.usage)
    answer["modelgate"] = modelgate_extension(
        caller.request_id, result.requested, result.served, result.credits, result.warnings
    )
    return json_response(answer, headers=call_headers(result.served, result.warnings))


def _base(body: ResponsesRequest, answer_id: str, model: str) -> dict[str, Any]:
    """The response object's fields that the request fixes."""
    fmt = body.text.format if body.text and body.text.format else None
    return {
        "id": answer_id,
        "object": "response",
        "created_at": int(time.time()),
        "error": None,
        "instructions": body.instructions,
        "max_output_tokens": body.max_output_tokens,
        "model": model,
        "parallel_tool_calls": body.parallel_tool_calls is not False,
        "previous_response_id": None,
        "temperature": body.temperature,
        "text": {"format": _dumped(fmt) if fmt else {"type": "text"}},
        "tool_choice": _dumped(body.tool_choice) or "auto",
        "tools": [_dumped(t) for t in body.tools or ()],
        "top_p": None,
        "truncation": "disabled",
        "metadata": body.metadata or {},
        "store": False,  # Modelgate keeps no responses
    }


def _output(result: CallResult, request_id: str) -> list[dict[str, Any]]:
    items = []
    if result.text or not result.tool_calls:
        items.append(message_item(f"msg_{request_id}_0", result.text, "completed"))
    for call in result.tool_calls:
        item_id = f"fc_{request_id}_{len(items)}"
        items.append(call_item(item_id, call.id, call.name, call.arguments, "completed"))
    return items


def _dumped(value: Any) -> Any:
    return value.model_dump(by_alias=True, exclude_none=True) if hasattr(value, "model_dump") else value


def _renamed(error: RestError) -> RestError:
    """The gateway names the chat call's fields; here they are the Responses API's."""
    head = re.split(r"[.\[]", error.param, maxsplit=1)[0] if error.param else None
    if head in _PARAMS:
        error.param = _PARAMS[head]
    return error
