"""/v1/responses bodies as the gateway's call: instructions, input items (as an agent loop sends
`response.output` back), flat tools built by the SDK's helper, the tool choice and `text.format`."""

from __future__ import annotations

import base64
from typing import Any

import openai
import orjson
from openai.lib._parsing._responses import type_to_text_format_param

from app.domain.calls import (
    ChatMessage,
    ImagePart,
    ResponseFormatType,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolChoiceMode,
)
from app.domain.enums import ChatRole
from app.rest.responses_input import ResponsesRequest, call_request
from app.services.gateway.requests import CallRequest
from tests.support.sdk_models import Forecast, GetWeather

PNG = b"\x89PNG\r\n\x1a\n"


def mapped(**fields: Any) -> CallRequest:
    return call_request(ResponsesRequest.model_validate_json(orjson.dumps({"model": "m", **fields})), None)


def test_instructions_and_a_string_input() -> None:
    call = mapped(instructions="Be brief.", input="Hello")
    assert call.messages == (ChatMessage(ChatRole.SYSTEM, "Be brief."), ChatMessage(ChatRole.USER, "Hello"))
    assert (call.tools, call.tool_choice, call.response_format) == ((), None, None)


def test_an_agent_loop_sent_back_as_items() -> None:
    image = "data:image/png;base64," + base64.b64encode(PNG).decode()
    tool = openai.pydantic_responses_function_tool(GetWeather)
    call = mapped(
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Where is this?"},
                    {"type": "input_image", "image_url": image, "detail": "high"},
                ],
            },
            {
                "id": "msg_1",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Let me look.", "annotations": [], "parsed": {}}],
            },
            {"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "c1",
             "name": "GetWeather", "arguments": "{}", "parsed_arguments": {}},
            {"type": "function_call", "call_id": "c2", "name": "GetWeather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "18"},
            {"type": "function_call_output", "call_id": "c2", "output": "20"},
        ],
        tools=[tool],
        tool_choice={"type": "function", "name": "GetWeather"},
        parallel_tool_calls=False,
    )  # fmt: skip
    assert call.messages == (
        ChatMessage(
            ChatRole.USER,
            parts=(TextPart("Where is this?"), ImagePart(data=PNG, media_type="image/png", detail="high")),
        ),
        ChatMessage(
            ChatRole.ASSISTANT,
            "Let me look.",
            tool_calls=(ToolCall("c1", "GetWeather", "{}"), ToolCall("c2", "GetWeather", "{}")),
        ),
        ChatMessage(ChatRole.TOOL, "18", tool_call_id="c1"),
        ChatMessage(ChatRole.TOOL, "20", tool_call_id="c2"),
    )
    (definition,) = call.tools
    assert (definition.name, definition.parameters, definition.strict) == (
        "GetWeather",
        tool["parameters"],
        True,
    )
    assert call.tool_choice == ToolChoice(ToolChoiceMode.TOOL, "GetWeather")
    assert call.parallel_tool_calls is False


def test_text_formats() -> None:
    sdk_format: Any = type_to_text_format_param(Forecast)  # what `client.responses.parse` sends
    fmt = mapped(input="x", text={"format": sdk_format}).response_format
    assert fmt is not None
    assert (fmt.type, fmt.name, fmt.schema, fmt.strict) == (
        ResponseFormatType.JSON_SCHEMA,
        "Forecast",
        sdk_format["schema"],
        True,
    )
    json_mode = mapped(input="x", text={"format": {"type": "json_object"}}).response_format
    assert json_mode is not None
    assert json_mode.type is ResponseFormatType.JSON_OBJECT
    assert mapped(input="x", text={"format": {"type": "text"}}).response_format is None
