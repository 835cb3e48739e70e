"""Tools, images and structured output through the Anthropic adapter, against the fake Anthropic API
(which answers them by `tests/fakes/tool_rules`): the blocks on the wire, and the tool calls, text and
finish reasons made of the answers, plain and streamed."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.domain.calls import (
    ChatMessage,
    Finished,
    ImagePart,
    ProviderError,
    ProviderErrorCode,
    ResponseFormat,
    ResponseFormatType,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolCallDone,
    ToolChoice,
    ToolChoiceMode,
    ToolDefinition,
)
from app.domain.credentials import Credentials
from app.domain.enums import ChatRole, FinishReason, Provider
from app.providers.anthropic import anthropic_adapter
from app.providers.base import ChatRequest, ProviderAdapter, ProviderTarget
from app.providers.runtime import ProviderRuntime
from tests.fakes.anthropic_server import API_KEY, AnthropicFake, anthropic_fake
from tests.fakes.common import RawReply
from tests.support.streams import collect, failure, text_of

WEATHER = ToolDefinition(
    "get_weather",
    "The weather in a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
TIME = ToolDefinition("get_time", "The local time in a city", {"properties": {"city": {"type": "string"}}})
ASK = ChatMessage(ChatRole.USER, "Weather and time in Paris?")
CALLS = (
    ToolCall("toolu_1", "get_weather", '{"city": "Paris"}'),
    ToolCall("toolu_2", "get_time", '{"city":"Paris"}'),
)
LOCATION = ResponseFormat(
    ResponseFormatType.JSON_SCHEMA,
    "Location",
    {"type": "object", "properties": {"city": {"type": "string"}, "temperature": {"type": "integer"}}},
)


@pytest.fixture
async def fake() -> AsyncIterator[AnthropicFake]:
    async with anthropic_fake() as fake:
        yield fake


@pytest.fixture
def adapter(fake: AnthropicFake, runtime: ProviderRuntime) -> ProviderAdapter:
    target = ProviderTarget(
        provider=Provider.ANTHROPIC,
        provider_model_id="claude-sonnet-4-5",
        model_url=fake.url,
        credentials=Credentials(token=API_KEY),
    )
    return anthropic_adapter(target, runtime)


def calls_of(events: list[Any]) -> list[ToolCallDone]:
    return [e for e in events if isinstance(e, ToolCallDone)]


async def test_a_tool_call_answer(fake: AnthropicFake, adapter: ProviderAdapter) -> None:
    completion = await adapter.complete(ChatRequest(messages=(ASK,), tools=(WEATHER, TIME)))

    assert completion.tool_calls == (ToolCall("toolu_fake00000000000000", "get_weather", '{"city":"city"}'),)
    assert completion.text == ""
    assert completion.finish_reason is FinishReason.TOOL_CALLS
    body = fake.requests[0].body
    assert body["tools"] == [
        {"name": "get_weather", "description": "The weather in a city", "input_schema": WEATHER.parameters},
        {
            "name": "get_time",
            "description": "The local time in a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    ]
    assert "tool_choice" not in body  # the API's default, auto


async def test_two_parallel_calls_stream_in_order_after_the_text(
    fake: AnthropicFake, adapter: ProviderAdapter
) -> None:
    fake.tool_calls_per_answer, fake.tool_preamble = 2, "Let me check."

    events = await collect(adapter.stream(ChatRequest(messages=(ASK,), tools=(WEATHER, TIME))))

    assert text_of(events) == "Let me check."
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    # The text is content block 0; the calls are the answer's calls 0 and 1.
    assert deltas[0] == ToolCallDelta(0, id="toolu_fake00000000000000", name="get_weather")
    assert "".join(d.arguments for d in deltas if d.index == 0) == '{"city":"city"}'
    assert [d.index for d in deltas] == sorted(d.index for d in deltas)
    assert calls_of(events) == [
        ToolCallDone(0, ToolCall("toolu_fake00000000000000", "get_weather", '{"city":"city"}')),
        ToolCallDone(1, ToolCall("toolu_fake00000000000001", "get_time", '{"city":"city"}')),
    ]
    assert events[-1] == Finished(FinishReason.TOOL_CALLS)


async def test_tool_results_go_back_as_one_user_turn(fake: AnthropicFake, adapter: ProviderAdapter) -> None:
    request = ChatRequest(
        messages=(
            ASK,
            ChatMessage(ChatRole.ASSISTANT, "Checking.", tool_calls=CALLS),
            ChatMessage(ChatRole.TOOL, "18 degrees", tool_call_id="toolu_1"),
            ChatMessage(ChatRole.TOOL, "14:05", tool_call_id="toolu_2"),
        ),
        tools=(WEATHER, TIME),
    )

    completion = await adapter.complete(request)
    streamed = await collect(adapter.stream(request))

    expected = "Tool result toolu_1: 18 degrees | Tool result toolu_2: 14:05"
    assert (completion.text, completion.finish_reason, completion.tool_calls) == (
        expected,
        FinishReason.STOP,
        (),
    )
    assert text_of(streamed) == expected
    assert fake.requests[0].body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 degrees"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "14:05"},
            ],
        },
    ]


async def test_an_assistant_turn_of_calls_only_has_no_empty_text(
    fake: AnthropicFake, adapter: ProviderAdapter
) -> None:
    request = ChatRequest(
        messages=(
            ASK,
            ChatMessage(ChatRole.ASSISTANT, tool_calls=(ToolCall("toolu_1", "get_weather", ""),)),
            ChatMessage(ChatRole.TOOL, "18 degrees", tool_call_id="toolu_1"),
            ChatMessage(ChatRole.USER, "Thanks. In Fahrenheit?"),
        ),
        tools=(WEATHER,),
    )

    await adapter.complete(request)

    assistant, results = fake.requests[0].body["messages"][1:]
    assert assistant["content"] == [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]
    assert results["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 degrees"},
        {"type": "text", "text": "Thanks. In Fahrenheit?"},
    ]


async def test_arguments_that_are_not_a_json_object_are_refused(
    fake: AnthropicFake, adapter: ProviderAdapter
) -> None:
    call = ToolCall("toolu_1", "get_weather", "[1, 2]")
    request = ChatRequest(
        messages=(ASK, ChatMessage(ChatRole.ASSISTANT, tool_calls=(call,))), tools=(WEATHER,)
    )

    with pytest.raises(ProviderError) as raised:
        await adapter.complete(request)

    assert (raised.value.code, raised.value.retryable) == (ProviderErrorCode.BAD_REQUEST, False)
    assert fake.requests == []


@pytest.mark.parametrize(
    ("choice", "parallel", "wire", "called"),
    [
        (ToolChoice(ToolChoiceMode.AUTO), None, {"type": "auto"}, ["get_weather", "get_time"]),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}, ["get_weather"]),
        (ToolChoice(ToolChoiceMode.NONE), None, {"type": "none"}, []),
        (ToolChoice(ToolChoiceMode.REQUIRED), None, {"type": "any"}, ["get_weather", "get_time"]),
        (
            ToolChoice(ToolChoiceMode.TOOL, "get_time"),
            False,
            {"type": "tool", "name": "get_time", "disable_parallel_tool_use": True},
            ["get_time"],
        ),
    ],
)
async def test_tool_choice(
    fake: AnthropicFake,
    adapter: ProviderAdapter,
    choice: ToolChoice | None,
    parallel: bool | None,
    wire: dict[str, Any],
    called: list[str],
) -> None:
    fake.tool_calls_per_answer = 2
    request = ChatRequest(
        messages=(ASK,), tools=(WEATHER, TIME), tool_choice=choice, parallel_tool_calls=parallel
    )

    completion = await adapter.complete(request)

    assert fake.requests[0].body["tool_choice"] == wire
    assert [call.name for call in completion.tool_calls] == called


async def test_images_by_url_and_by_data(fake: AnthropicFake, adapter: ProviderAdapter) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(60)
    message = ChatMessage(
        ChatRole.USER,
        parts=(
            TextPart("What do you see?"),
            ImagePart(url="https://images.example/cat.jpg", detail="high"),
            ImagePart(data=png, media_type="image/png"),
        ),
    )

    completion = await adapter.complete(ChatRequest(messages=(message,)))

    assert completion.text == "I see 2 images: https://images.example/cat.jpg; image/png (68 bytes)"
    [sent] = fake.requests[0].body["messages"]
    assert sent["content"] == [
        {"type": "text", "text": "What do you see?"},
        {"type": "image", "source": {"type": "url", "url": "https://images.example/cat.jpg"}},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(png).decode()},
        },
    ]


async def test_json_schema_is_a_forced_tool_answered_as_text(
    fake: AnthropicFake, adapter: ProviderAdapter
) -> None:
    request = ChatRequest(messages=(ASK,), response_format=LOCATION)

    completion = await adapter.complete(request)
    events = await collect(adapter.stream(request))

    expected = '{"city":"city","temperature":1}'
    assert (completion.text, completion.finish_reason, completion.tool_calls) == (
        expected,
        FinishReason.STOP,
        (),
    )
    assert text_of(events) == expected
    assert len([e for e in events if isinstance(e, TextDelta)]) == 3  # the input's fragments, as they came
    assert not [e for e in events if isinstance(e, ToolCallDelta | ToolCallDone)]
    assert events[-1] == Finished(FinishReason.STOP)
    body = fake.requests[0].body
    assert body["tools"] == [
        {
            "name": "json_answer",
            "description": "Give your answer by calling this tool: its input is the answer, as JSON.",
            "input_schema": LOCATION.schema,
        }
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "json_answer", "disable_parallel_tool_use": True}


async def test_json_object_is_a_forced_tool_of_any_object(
    fake: AnthropicFake, adapter: ProviderAdapter
) -> None:
    request = ChatRequest(messages=(ASK,), response_format=ResponseFormat(ResponseFormatType.JSON_OBJECT))

    completion = await adapter.complete(request)

    assert json.loads(completion.text) == {}
    assert fake.requests[0].body["tools"][0]["input_schema"] == {"type": "object"}


async def test_json_with_tools_lets_the_model_call_a_tool_or_answer(
    fake: AnthropicFake, adapter: ProviderAdapter
) -> None:
    request = ChatRequest(messages=(ASK,), tools=(WEATHER,), response_format=LOCATION)

    completion = await adapter.complete(request)

    body = fake.requests[0].body
    assert [tool["name"] for tool in body["tools"]] == ["get_weather", "json_answer"]
    assert body["tool_choice"] == {"type": "any"}
    assert [call.name for call in completion.tool_calls] == ["get_weather"]
    assert completion.finish_reason is FinishReason.TOOL_CALLS


async def test_a_json_schema_that_is_not_an_object_is_refused(
    fake: AnthropicFake, adapter: ProviderAdapter
) -> None:
    array = ResponseFormat(
        ResponseFormatType.JSON_SCHEMA, "Ids", {"type": "array", "items": {"type": "integer"}}
    )
    request = ChatRequest(messages=(ASK,), response_format=array)

    events = await collect(adapter.stream(request))

    assert failure(events).code is ProviderErrorCode.BAD_REQUEST
    assert fake.requests == []


async def test_a_call_streamed_without_input_has_empty_arguments(
    fake: AnthropicFake, adapter: ProviderAdapter
) -> None:
    frames = [
        (
            "message_start",
            {"type": "message_start", "message": {"usage": {"input_tokens": 5, "output_tokens": 1}}},
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "toolu_9", "name": "get_time", "input": {}},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": ""},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    body = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in frames).encode()
    fake.raw = RawReply(200, {"content-type": "text/event-stream"}, body)

    events = await collect(adapter.stream(ChatRequest(messages=(ASK,), tools=(TIME,))))

    assert calls_of(events) == [ToolCallDone(0, ToolCall("toolu_9", "get_time", "{}"))]
    assert events[-1] == Finished(FinishReason.TOOL_CALLS)
