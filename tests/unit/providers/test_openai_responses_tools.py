"""Tools, images and structured output through the Responses API (OpenAI and Azure) against the fake,
which checks each request as the real API does: function tools, `function_call` /
`function_call_output` input items, `input_image` parts, `text.format`, and the function calls that
come back, complete and streamed."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from app.domain.calls import (
    ChatMessage,
    ImagePart,
    ProviderError,
    ProviderErrorCode,
    ResponseFormat,
    ResponseFormatType,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolCallDone,
    ToolChoice,
    ToolChoiceMode,
    ToolDefinition,
)
from app.domain.enums import ApiType, ChatRole, FinishReason, Provider
from app.providers.base import ChatRequest, ProviderAdapter
from app.providers.openai_family import openai_family_adapter
from app.providers.runtime import ProviderRuntime
from tests.fakes.openai_server import OpenAIFake, make_target
from tests.support.streams import collect_result
from tests.support.tool_requests import (
    ASK,
    JSON_ANSWER,
    PNG,
    SCHEMA,
    SCHEMA_ANSWER,
    TIME,
    TIME_ARGS,
    TOOLS,
    WEATHER,
    WEATHER_ARGS,
)


@pytest.fixture(params=["openai", "azure"])
def flavor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def responses(flavor: str, fake: OpenAIFake, runtime: ProviderRuntime) -> ProviderAdapter:
    if flavor == "azure":  # the v1 API: no api-version, the deployment is the model
        settings = {"baseCustomUrl": fake.url}
        target = make_target(Provider.AZURE_OPENAI, None, api_type=ApiType.RESPONSES, settings=settings)
    else:
        target = make_target(Provider.OPENAI, f"{fake.url}/v1", model="gpt-4.1", api_type=ApiType.RESPONSES)
    return openai_family_adapter(target, runtime)


async def test_two_parallel_calls_complete_and_streamed_in_order(
    flavor: str, openai_fake: OpenAIFake, runtime: ProviderRuntime
) -> None:
    openai_fake.tool_calls_per_answer = 2
    adapter = responses(flavor, openai_fake, runtime)
    completion = await adapter.complete(TOOLS)
    streamed = await collect_result(adapter.stream(TOOLS))

    expected = (
        ToolCall("call_fake0000000000000000000", "get_weather", WEATHER_ARGS),
        ToolCall("call_fake0000000000000000001", "get_time", TIME_ARGS),
    )
    assert (completion.tool_calls, completion.finish_reason, completion.text) == (
        expected,
        FinishReason.TOOL_CALLS,
        "",
    )
    assert [e for e in streamed.events if isinstance(e, ToolCallDone)] == [
        ToolCallDone(0, expected[0]),
        ToolCallDone(1, expected[1]),
    ]
    assert len([e for e in streamed.events if isinstance(e, ToolCallDelta)]) > 2  # arguments in fragments
    assert streamed.finish is FinishReason.TOOL_CALLS
    body = openai_fake.requests[0].body
    assert body["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": WEATHER.parameters,
            "strict": True,
        },
        # Responses makes a function strict unless told otherwise: a loose schema says so.
        {"type": "function", "name": "get_time", "parameters": TIME.parameters, "strict": False},
    ]


async def test_a_tool_result_turn(flavor: str, openai_fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    call = ToolCall("call_Y6qJ7ofLgOrBnMD5WbVAeiRV", "get_weather", '{"city":"Paris","units":"c"}')
    request = ChatRequest(
        messages=(
            ASK,
            ChatMessage(ChatRole.ASSISTANT, "Let me look.", tool_calls=(call,)),
            ChatMessage(ChatRole.TOOL, "18 degrees, sunny", tool_call_id=call.id),
        ),
        tools=TOOLS.tools,
    )
    adapter = responses(flavor, openai_fake, runtime)
    completion = await adapter.complete(request)
    streamed = await collect_result(adapter.stream(request))

    expected = f"Tool result {call.id}: 18 degrees, sunny"
    assert (completion.text, completion.finish_reason, completion.tool_calls) == (
        expected,
        FinishReason.STOP,
        (),
    )
    assert (streamed.text, streamed.finish) == (expected, FinishReason.STOP)
    assert openai_fake.requests[0].body["input"] == [
        {"role": "user", "content": ASK.content},
        {"role": "assistant", "content": "Let me look."},
        {"type": "function_call", "call_id": call.id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.id, "output": "18 degrees, sunny"},
    ]


async def test_images_by_url_and_by_data(
    flavor: str, openai_fake: OpenAIFake, runtime: ProviderRuntime
) -> None:
    message = ChatMessage(
        ChatRole.USER,
        parts=(
            TextPart("What is in these?"),
            ImagePart(url="https://example.com/cat.jpg", detail="high"),
            ImagePart(data=PNG, media_type="image/png"),
        ),
    )
    completion = await responses(flavor, openai_fake, runtime).complete(ChatRequest(messages=(message,)))

    assert completion.text == f"I see 2 images: https://example.com/cat.jpg; image/png ({len(PNG)} bytes)"
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert openai_fake.requests[0].body["input"] == [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is in these?"},
                {"type": "input_image", "image_url": "https://example.com/cat.jpg", "detail": "high"},
                {"type": "input_image", "image_url": data_url, "detail": "auto"},
            ],
        }
    ]


@pytest.mark.parametrize(
    ("fmt", "wire", "answer"),
    [
        (
            ResponseFormat(ResponseFormatType.JSON_OBJECT),
            {"type": "json_object"},
            JSON_ANSWER,
        ),
        (
            ResponseFormat(ResponseFormatType.JSON_SCHEMA, "weather", SCHEMA, strict=True),
            {"type": "json_schema", "name": "weather", "schema": SCHEMA, "strict": True},
            SCHEMA_ANSWER,
        ),
    ],
    ids=["json_object", "json_schema"],
)
async def test_text_formats(
    flavor: str,
    openai_fake: OpenAIFake,
    runtime: ProviderRuntime,
    fmt: ResponseFormat,
    wire: dict[str, Any],
    answer: str,
) -> None:
    request = ChatRequest(messages=(ASK,), response_format=fmt)
    adapter = responses(flavor, openai_fake, runtime)
    completion = await adapter.complete(request)
    streamed = await collect_result(adapter.stream(request))
    assert (completion.text, streamed.text, streamed.finish) == (answer, answer, FinishReason.STOP)
    assert openai_fake.requests[0].body["text"] == {"format": wire}


@pytest.mark.parametrize(
    ("choice", "wire", "called"),
    [
        (ToolChoice(ToolChoiceMode.AUTO), "auto", ["get_weather"]),
        (ToolChoice(ToolChoiceMode.NONE), "none", []),
        (ToolChoice(ToolChoiceMode.REQUIRED), "required", ["get_weather"]),
        (ToolChoice(ToolChoiceMode.TOOL, "get_time"), {"type": "function", "name": "get_time"}, ["get_time"]),
    ],
    ids=["auto", "none", "required", "named"],
)
async def test_tool_choices(
    openai_fake: OpenAIFake, runtime: ProviderRuntime, choice: ToolChoice, wire: Any, called: list[str]
) -> None:
    openai_fake.tool_calls_per_answer = 2
    request = ChatRequest(messages=(ASK,), tools=TOOLS.tools, tool_choice=choice, parallel_tool_calls=False)
    completion = await responses("openai", openai_fake, runtime).complete(request)
    assert [call.name for call in completion.tool_calls] == called
    body = openai_fake.requests[0].body
    assert (body["tool_choice"], body["parallel_tool_calls"]) == (wire, False)


def event(name: str, **data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()


async def test_a_call_streamed_without_argument_fragments(
    openai_fake: OpenAIFake, runtime: ProviderRuntime
) -> None:
    """A server that sends the arguments only with the finished item still gives the whole call."""
    item = {"id": "fc_1", "type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": ""}
    done = {**item, "arguments": '{"city":"Paris"}', "status": "completed"}
    openai_fake.raw = b"".join(
        [
            event("response.output_item.added", item=item, output_index=0),
            event("response.output_item.done", item=done, output_index=0),
            event("response.completed", response={"status": "completed", "output": [done], "usage": None}),
        ]
    )
    streamed = await collect_result(responses("openai", openai_fake, runtime).stream(TOOLS))
    assert [e for e in streamed.events if isinstance(e, ToolCallDone)] == [
        ToolCallDone(0, ToolCall("c1", "get_weather", '{"city":"Paris"}'))
    ]
    assert streamed.finish is FinishReason.TOOL_CALLS


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            ChatRequest(messages=(ASK,), tool_choice=ToolChoice(ToolChoiceMode.TOOL, "get_time")),
            "a tool choice needs tools",
        ),
        (
            ChatRequest(
                messages=(ChatMessage(ChatRole.ASSISTANT, parts=(ImagePart(url="https://e.com/a.png"),)),)
            ),
            "only user messages can carry images, not assistant messages",
        ),
    ],
    ids=["choice-without-tools", "image-in-assistant-message"],
)
async def test_refused_before_any_call(
    openai_fake: OpenAIFake, runtime: ProviderRuntime, request_: ChatRequest, message: str
) -> None:
    with pytest.raises(ProviderError) as raised:
        await responses("openai", openai_fake, runtime).complete(request_)
    assert (raised.value.code, raised.value.message, raised.value.retryable) == (
        ProviderErrorCode.BAD_REQUEST,
        message,
        False,
    )
    assert openai_fake.requests == []


async def test_a_tool_without_parameters(openai_fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    """The API wants an object schema even for a function without arguments."""
    request = ChatRequest(messages=(ASK,), tools=(ToolDefinition("ping"),))
    completion = await responses("openai", openai_fake, runtime).complete(request)
    assert completion.tool_calls == (ToolCall("call_fake0000000000000000000", "ping", "{}"),)
    assert openai_fake.requests[0].body["tools"] == [
        {
            "type": "function",
            "name": "ping",
            "parameters": {"type": "object", "properties": {}},
            "strict": False,
        }
    ]
