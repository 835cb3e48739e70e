"""/v1/chat/completions bodies as the gateway's call: messages with image parts, tool calls and
tool results, tools, tool choice and response format — built by the official SDK's own helpers
where it has them — and every malformed field's OpenAI-style 400 naming the parameter."""

from __future__ import annotations

import base64
from typing import Any

import openai
import orjson
import pytest
from openai.lib._parsing._completions import type_to_response_format_param
from pydantic import ValidationError

from app.domain.calls import (
    ChatMessage,
    ImagePart,
    ResponseFormat,
    ResponseFormatType,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolChoiceMode,
)
from app.domain.enums import ChatRole
from app.rest.chat import call_request
from app.rest.errors import RestError, from_validation
from app.rest.schemas import ChatCompletionRequest
from app.services.gateway.requests import CallRequest
from tests.support.sdk_models import Forecast, GetWeather

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
)
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
CAT = "https://images.example.com/cat.jpg"
HI = [{"role": "user", "content": "What is the weather in Paris?"}]


def mapped(**fields: Any) -> CallRequest:
    """What the REST door asks the gateway for (the handler's two steps, without the server)."""
    try:
        body = ChatCompletionRequest.model_validate_json(orjson.dumps({"model": "m", **fields}))
    except ValidationError as exc:
        raise from_validation(exc) from None
    return call_request(body, None)


def refused(**fields: Any) -> RestError:
    with pytest.raises(RestError) as caught:
        mapped(**fields)
    assert caught.value.status == 400
    assert caught.value.type == "invalid_request_error"
    return caught.value


def test_plain_messages_stay_text_and_no_tool_fields_are_asked() -> None:
    call = mapped(
        messages=[
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}],
            },
        ]
    )
    assert call.messages == (
        ChatMessage(ChatRole.SYSTEM, "Be brief."),
        ChatMessage(ChatRole.USER, "Hello\nthere"),
    )
    assert (call.tools, call.tool_choice, call.parallel_tool_calls, call.response_format) == (
        (),
        None,
        None,
        None,
    )


def test_image_parts_by_url_and_by_data_url() -> None:
    (message,) = mapped(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image_url", "image_url": {"url": CAT, "detail": "low"}},
                    {"type": "image_url", "image_url": {"url": PNG_URL}},
                ],
            }
        ]
    ).messages
    assert message == ChatMessage(
        ChatRole.USER,
        parts=(
            TextPart("Compare"),
            ImagePart(url=CAT, detail="low"),  # the provider fetches it, never Modelgate
            ImagePart(data=PNG, media_type="image/png"),
        ),
    )


def test_a_tool_loop_as_the_sdk_sends_it() -> None:
    tool = openai.pydantic_function_tool(GetWeather, description="The weather in a city")
    call = mapped(
        messages=[
            *HI,
            {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "GetWeather", "arguments": "{}"},
                        "index": 0,  # what the SDK's stream helper leaves on the calls it accumulates
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        # what `parse` adds to the message it returns, sent back as is
                        "function": {"name": "GetWeather", "arguments": "{}", "parsed_arguments": {}},
                    },
                ],
                "parsed": None,
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18 degrees"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "sunny"}]},
        ],
        tools=[tool],
        tool_choice="required",
        parallel_tool_calls=False,
    )
    assert call.messages[1:] == (
        ChatMessage(
            ChatRole.ASSISTANT,
            tool_calls=(ToolCall("call_1", "GetWeather", "{}"), ToolCall("call_2", "GetWeather", "{}")),
        ),
        ChatMessage(ChatRole.TOOL, "18 degrees", tool_call_id="call_1"),
        ChatMessage(ChatRole.TOOL, "sunny", tool_call_id="call_2"),
    )
    (definition,) = call.tools
    assert (definition.name, definition.description, definition.strict) == (
        "GetWeather",
        "The weather in a city",
        True,
    )
    assert definition.parameters == tool["function"]["parameters"]
    assert call.tool_choice == ToolChoice(ToolChoiceMode.REQUIRED)
    assert call.parallel_tool_calls is False


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", ToolChoice(ToolChoiceMode.AUTO)),
        ("none", ToolChoice(ToolChoiceMode.NONE)),
        (
            {"type": "function", "function": {"name": "GetWeather"}},
            ToolChoice(ToolChoiceMode.TOOL, "GetWeather"),
        ),
    ],
)
def test_tool_choices(choice: Any, expected: ToolChoice) -> None:
    tools = [openai.pydantic_function_tool(GetWeather)]
    assert mapped(messages=HI, tools=tools, tool_choice=choice).tool_choice == expected


def test_auto_or_none_without_tools_change_nothing() -> None:
    for choice in ("auto", "none"):
        assert mapped(messages=HI, tool_choice=choice, parallel_tool_calls=True).tool_choice is None


def test_response_formats() -> None:
    assert mapped(messages=HI, response_format={"type": "text"}).response_format is None
    assert mapped(messages=HI, response_format={"type": "json_object"}).response_format == ResponseFormat(
        ResponseFormatType.JSON_OBJECT
    )
    sdk_format: Any = type_to_response_format_param(
        Forecast
    )  # what `client.beta.chat.completions.parse` sends
    fmt = mapped(messages=HI, response_format=sdk_format).response_format
    assert fmt is not None
    assert (fmt.type, fmt.name, fmt.strict) == (ResponseFormatType.JSON_SCHEMA, "Forecast", True)
    assert fmt.schema == sdk_format["json_schema"]["schema"]
    described = {"name": "a", "schema": {"type": "object"}, "description": "an answer"}
    assert mapped(
        messages=HI, response_format={"type": "json_schema", "json_schema": described}
    ).response_format == (ResponseFormat(ResponseFormatType.JSON_SCHEMA, "a", {"type": "object"}, False))


TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
ASKED = [*HI, {"role": "assistant", "content": None, "tool_calls": [CALL]}]


def image(url: Any, **more: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url, **more}}]}]


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        # tools
        ({"tools": {"type": "function"}}, "tools"),
        ({"tools": [{"function": TOOL["function"]}]}, "tools[0].type"),
        ({"tools": [{"type": "custom", "function": TOOL["function"]}]}, "tools[0].type"),
        ({"tools": [{"type": "function"}]}, "tools[0].function"),
        ({"tools": [{"type": "function", "function": {}}]}, "tools[0].function.name"),
        ({"tools": [{"type": "function", "function": {"name": "no spaces"}}]}, "tools[0].function.name"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": "{}"}}]},
            "tools[0].function.parameters",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]},
            "tools[0].function.parameters",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "strict": "yes"}}]},
            "tools[0].function.strict",
        ),
        ({"tools": [{"type": "function", "function": {"name": "f", "frob": 1}}]}, "tools[0].function.frob"),
        ({"tools": [TOOL, TOOL]}, "tools[1].function.name"),
        # tool_choice
        ({"tools": [TOOL], "tool_choice": "any"}, "tool_choice"),
        ({"tools": [TOOL], "tool_choice": {"type": "function"}}, "tool_choice.function"),
        ({"tools": [TOOL], "tool_choice": {"type": "function", "function": {}}}, "tool_choice.function.name"),
        ({"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "g"}}}, "tool_choice"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tool_choice": {"type": "function", "function": {"name": "f"}}}, "tool_choice"),
        ({"tools": [TOOL], "parallel_tool_calls": "yes"}, "parallel_tool_calls"),
        # the deprecated function calling
        ({"functions": [TOOL["function"]]}, "functions"),
        ({"function_call": "auto"}, "function_call"),
        # content parts and images
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "messages[0].content[0].type",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content[0].text"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0].image_url",
        ),
        ({"messages": image(None)}, "messages[0].content[0].image_url.url"),
        ({"messages": image("ftp://example.com/cat.png")}, "messages[0].content[0].image_url.url"),
        ({"messages": image("http://example.com/cat.png")}, "messages[0].content[0].image_url.url"),
        ({"messages": image("data:image/png,rawbytes")}, "messages[0].content[0].image_url.url"),
        ({"messages": image("data:image/svg+xml;base64,PHN2Zz4=")}, "messages[0].content[0].image_url.url"),
        ({"messages": image("data:image/png;base64,not base64!")}, "messages[0].content[0].image_url.url"),
        ({"messages": image(CAT, detail="ultra")}, "messages[0].content[0].image_url.detail"),
        (
            {
                "messages": [
                    {"role": "system", "content": [{"type": "image_url", "image_url": {"url": CAT}}]},
                    *HI,
                ]
            },
            "messages[0].content[0].type",
        ),
        # assistant tool calls and tool results
        ({"messages": [*HI, {"role": "assistant", "content": None}]}, "messages[1].content"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        (
            {"messages": [*HI, {"role": "assistant", "tool_calls": [{**CALL, "type": "x"}]}]},
            "messages[1].tool_calls[0].type",
        ),
        (
            {
                "messages": [
                    *HI,
                    {"role": "assistant", "tool_calls": [{"type": "function", "function": CALL["function"]}]},
                ]
            },
            "messages[1].tool_calls[0].id",
        ),
        (
            {
                "messages": [
                    *HI,
                    {
                        "role": "assistant",
                        "tool_calls": [{**CALL, "function": {"name": "f", "arguments": {}}}],
                    },
                ]
            },
            "messages[1].tool_calls[0].function.arguments",
        ),
        ({"messages": [{**HI[0], "tool_calls": [CALL]}]}, "messages[0].tool_calls"),
        ({"messages": [{**HI[0], "tool_call_id": "c1"}]}, "messages[0].tool_call_id"),
        ({"messages": [*ASKED, {"role": "tool", "content": "18"}]}, "messages[2].tool_call_id"),
        (
            {"messages": [*ASKED, {"role": "tool", "tool_call_id": "c9", "content": "18"}]},
            "messages[2].tool_call_id",
        ),
        ({"messages": [*HI, {"role": "tool", "tool_call_id": "c1", "content": "18"}]}, "messages[1].role"),
        ({"messages": [*ASKED, {"role": "user", "content": "and?"}]}, "messages[2].role"),
        ({"messages": [{"role": "function", "name": "f", "content": "18"}]}, "messages[0].role"),
        # response_format
        ({"response_format": "json"}, "response_format"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}},
            "response_format.json_schema.name",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "a b"}}},
            "response_format.json_schema.name",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": []}}},
            "response_format.json_schema.schema",
        ),
    ],
)
def test_a_malformed_field_is_a_400_naming_it(fields: dict[str, Any], param: str) -> None:
    error = refused(**{"messages": HI, **fields})
    assert error.param == param, error.message
    assert error.message


def test_a_missing_field_reads_as_openai_says_it() -> None:
    error = refused(messages=HI, tools=[{"type": "function", "function": {}}])
    assert error.message == "Missing required parameter: 'tools[0].function.name'."
    assert error.code == "missing_required_parameter"
