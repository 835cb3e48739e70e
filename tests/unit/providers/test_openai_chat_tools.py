"""Tools, images and structured output through Chat Completions for every provider of the family
(OpenAI, Azure OpenAI, Mistral, OpenAI-compatible) against the fake, which checks each request as the
real API does and answers by `tests/fakes/tool_rules`: what goes on the wire, and the calls, finish
reasons and texts that come back, complete and streamed."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.domain.calls import (
    ChatMessage,
    ImagePart,
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
from app.domain.enums import ChatRole, FinishReason, Provider
from app.providers.base import ChatRequest, ProviderAdapter
from app.providers.openai_family import openai_family_adapter
from app.providers.runtime import ProviderRuntime
from tests.fakes.openai_server import OpenAIFake, make_target, openai_fake_server
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

FLAVORS = ["openai", "azure", "mistral", "compatible"]


@pytest.fixture(params=FLAVORS)
def flavor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def fake(flavor: str) -> AsyncIterator[OpenAIFake]:
    async with openai_fake_server(flavor="mistral" if flavor == "mistral" else "openai") as served:
        yield served


def adapter_for(flavor: str, fake: OpenAIFake, runtime: ProviderRuntime, **settings: str) -> ProviderAdapter:
    if flavor == "azure":
        settings = {
            "baseCustomUrl": fake.url,
            "deploymentName": "gpt4o",
            "apiVersion": "2024-10-21",
            **settings,
        }
        target = make_target(Provider.AZURE_OPENAI, None, settings=settings)
    else:
        provider = {"openai": Provider.OPENAI, "mistral": Provider.MISTRAL}.get(
            flavor, Provider.OPENAI_COMPATIBLE
        )
        target = make_target(provider, f"{fake.url}/v1", settings=settings)
    return openai_family_adapter(target, runtime)


def call_ids(flavor: str, count: int) -> list[str]:
    """The ids the fake gives its calls (Mistral's are 9 letters and digits)."""
    return [f"fake{i:05d}" if flavor == "mistral" else f"call_fake{i:019d}" for i in range(count)]


async def test_two_parallel_calls_complete_and_streamed_in_order(
    flavor: str, fake: OpenAIFake, runtime: ProviderRuntime
) -> None:
    fake.tool_calls_per_answer = 2
    adapter = adapter_for(flavor, fake, runtime)
    completion = await adapter.complete(TOOLS)
    streamed = await collect_result(adapter.stream(TOOLS))

    first, second = call_ids(flavor, 2)
    expected = (ToolCall(first, "get_weather", WEATHER_ARGS), ToolCall(second, "get_time", TIME_ARGS))
    assert (completion.tool_calls, completion.finish_reason, completion.text) == (
        expected,
        FinishReason.TOOL_CALLS,
        "",
    )
    done = [e for e in streamed.events if isinstance(e, ToolCallDone)]
    assert done == [ToolCallDone(0, expected[0]), ToolCallDone(1, expected[1])]
    assert streamed.finish is FinishReason.TOOL_CALLS
    deltas = [e for e in streamed.events if isinstance(e, ToolCallDelta)]
    assert [(d.id, d.name) for d in deltas if d.id] == [(first, "get_weather"), (second, "get_time")]
    if flavor != "mistral":  # Mistral sends each call whole
        assert len(deltas) > 2
    body = fake.requests[0].body
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": WEATHER.parameters,
                "strict": True,
            },
        },
        {"type": "function", "function": {"name": "get_time", "parameters": TIME.parameters}},
    ]
    assert not {"tool_choice", "parallel_tool_calls"} & body.keys()


async def test_interleaved_call_fragments_are_kept_apart(
    openai_fake: OpenAIFake, runtime: ProviderRuntime
) -> None:
    openai_fake.tool_calls_per_answer, openai_fake.interleave_tool_calls = 2, True
    streamed = await collect_result(adapter_for("openai", openai_fake, runtime).stream(TOOLS))
    calls = [e.call for e in streamed.events if isinstance(e, ToolCallDone)]
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", WEATHER_ARGS), ("get_time", TIME_ARGS)]


async def test_a_tool_result_turn(flavor: str, fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    # The call was made by another provider (an OpenAI-style id): Mistral gets a 9-character id for
    # both the call and its result.
    call = ToolCall("call_Y6qJ7ofLgOrBnMD5WbVAeiRV", "get_weather", '{"city":"Paris","units":"c"}')
    request = ChatRequest(
        messages=(
            ASK,
            ChatMessage(ChatRole.ASSISTANT, tool_calls=(call,)),
            ChatMessage(ChatRole.TOOL, "18 degrees, sunny", tool_call_id=call.id),
        ),
        tools=(WEATHER, TIME),
    )
    adapter = adapter_for(flavor, fake, runtime)
    completion = await adapter.complete(request)
    streamed = await collect_result(adapter.stream(request))

    assistant, result = fake.requests[0].body["messages"][1:]
    sent_id = assistant["tool_calls"][0]["id"]
    assert assistant == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": sent_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
        ],
    }
    assert result == {"role": "tool", "tool_call_id": sent_id, "content": "18 degrees, sunny"}
    if flavor == "mistral":
        assert re.fullmatch("[a-zA-Z0-9]{9}", sent_id)
    else:
        assert sent_id == call.id
    expected = f"Tool result {sent_id}: 18 degrees, sunny"
    assert (completion.text, completion.finish_reason, completion.tool_calls) == (
        expected,
        FinishReason.STOP,
        (),
    )
    assert (streamed.text, streamed.finish) == (expected, FinishReason.STOP)


async def test_images_by_url_and_by_data(flavor: str, fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    message = ChatMessage(
        ChatRole.USER,
        parts=(
            TextPart("What is in these?"),
            ImagePart(url="https://example.com/cat.jpg", detail="low"),
            ImagePart(data=PNG, media_type="image/png"),
        ),
    )
    adapter = adapter_for(flavor, fake, runtime)
    completion = await adapter.complete(ChatRequest(messages=(message,)))

    assert completion.text == f"I see 2 images: https://example.com/cat.jpg; image/png ({len(PNG)} bytes)"
    assert fake.requests[0].body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
                },
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
            {"type": "json_schema", "json_schema": {"name": "weather", "schema": SCHEMA, "strict": True}},
            SCHEMA_ANSWER,
        ),
    ],
    ids=["json_object", "json_schema"],
)
async def test_response_formats(
    flavor: str,
    fake: OpenAIFake,
    runtime: ProviderRuntime,
    fmt: ResponseFormat,
    wire: dict[str, Any],
    answer: str,
) -> None:
    request = ChatRequest(
        messages=(ChatMessage(ChatRole.USER, "The weather in Paris, as JSON."),), response_format=fmt
    )
    adapter = adapter_for(flavor, fake, runtime)
    completion = await adapter.complete(request)
    streamed = await collect_result(adapter.stream(request))

    assert (completion.text, streamed.text, streamed.finish) == (answer, answer, FinishReason.STOP)
    assert fake.requests[0].body["response_format"] == wire


@pytest.mark.parametrize(
    ("choice", "wire", "called"),
    [
        (ToolChoice(ToolChoiceMode.AUTO), "auto", ["get_weather"]),
        (ToolChoice(ToolChoiceMode.NONE), "none", []),
        (ToolChoice(ToolChoiceMode.REQUIRED), "required", ["get_weather"]),
        (
            ToolChoice(ToolChoiceMode.TOOL, "get_time"),
            {"type": "function", "function": {"name": "get_time"}},
            ["get_time"],
        ),
    ],
    ids=["auto", "none", "required", "named"],
)
async def test_tool_choices(
    flavor: str, fake: OpenAIFake, runtime: ProviderRuntime, choice: ToolChoice, wire: Any, called: list[str]
) -> None:
    request = ChatRequest(messages=TOOLS.messages, tools=TOOLS.tools, tool_choice=choice)
    completion = await adapter_for(flavor, fake, runtime).complete(request)

    assert [call.name for call in completion.tool_calls] == called
    assert completion.finish_reason is (FinishReason.TOOL_CALLS if called else FinishReason.STOP)
    expected = "any" if flavor == "mistral" and wire == "required" else wire
    assert fake.requests[0].body["tool_choice"] == expected


async def test_parallel_calls_switched_off(flavor: str, fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    fake.tool_calls_per_answer = 2
    request = ChatRequest(messages=TOOLS.messages, tools=TOOLS.tools, parallel_tool_calls=False)
    completion = await adapter_for(flavor, fake, runtime).complete(request)
    assert [call.name for call in completion.tool_calls] == ["get_weather"]
    assert fake.requests[0].body["parallel_tool_calls"] is False


async def test_a_tool_without_parameters(flavor: str, fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    """The APIs want an object schema even for a function without arguments."""
    request = ChatRequest(messages=(ASK,), tools=(ToolDefinition("ping"),))
    completion = await adapter_for(flavor, fake, runtime).complete(request)
    assert completion.tool_calls == (ToolCall(call_ids(flavor, 1)[0], "ping", "{}"),)
    assert fake.requests[0].body["tools"] == [
        {"type": "function", "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}}}
    ]
