"""Tools, images and structured output through the Bedrock Converse adapter, against the fake
bedrock-runtime (which answers them by `tests/fakes/tool_rules`): the blocks botocore puts on the
wire, the image URL downloaded from a loopback server, and the tool calls, text and finish reasons
made of the answers, plain and streamed."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from app.domain.calls import (
    ChatMessage,
    Finished,
    ImagePart,
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
from app.providers.base import ChatRequest, ProviderAdapter, ProviderTarget
from app.providers.bedrock import bedrock_adapter
from app.providers.runtime import ProviderRuntime
from tests.fakes.bedrock_server import BedrockFake, bedrock_fake, use_fake_aws
from tests.support.streams import collect, failure, text_of

WEATHER = ToolDefinition(
    "get_weather",
    "The weather in a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
TIME = ToolDefinition("get_time", None, {"properties": {"city": {"type": "string"}}})
ASK = ChatMessage(ChatRole.USER, "Weather and time in Paris?")
CALLS = (
    ToolCall("tooluse_1", "get_weather", '{"city": "Paris"}'),
    ToolCall("tooluse_2", "get_time", '{"city":"Paris"}'),
)
LOCATION = ResponseFormat(
    ResponseFormatType.JSON_SCHEMA,
    "Location",
    {"type": "object", "properties": {"city": {"type": "string"}, "temperature": {"type": "integer"}}},
)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(60)


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[BedrockFake]:
    async with bedrock_fake() as fake:
        use_fake_aws(monkeypatch, fake.url, tmp_path)
        yield fake


@pytest.fixture
def adapter(fake: BedrockFake, runtime: ProviderRuntime) -> ProviderAdapter:
    target = ProviderTarget(
        provider=Provider.AWS_BEDROCK,
        provider_model_id="unused",
        model_url="bedrock://anthropic.claude-sonnet-4-5",
        credentials=Credentials(token="iam", platform_identity=True),
    )
    return bedrock_adapter(target, runtime)


@pytest.fixture
async def image_server() -> AsyncIterator[str]:
    async def png(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    app = web.Application()
    app.router.add_get("/cat.png", png)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}"
    await server.close()


def calls_of(events: list[Any]) -> list[ToolCallDone]:
    return [e for e in events if isinstance(e, ToolCallDone)]


async def test_a_tool_call_answer(fake: BedrockFake, adapter: ProviderAdapter) -> None:
    completion = await adapter.complete(ChatRequest(messages=(ASK,), tools=(WEATHER, TIME)))

    assert completion.tool_calls == (
        ToolCall("tooluse_fake00000000000000", "get_weather", '{"city":"city"}'),
    )
    assert completion.text == ""
    assert completion.finish_reason is FinishReason.TOOL_CALLS
    assert fake.requests[0].body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "The weather in a city",
                    "inputSchema": {"json": WEATHER.parameters},
                }
            },
            {
                "toolSpec": {
                    "name": "get_time",
                    "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}},
                }
            },
        ]
    }


async def test_two_parallel_calls_stream_in_order_after_the_text(
    fake: BedrockFake, adapter: ProviderAdapter
) -> None:
    fake.tool_calls_per_answer, fake.tool_preamble = 2, "Let me check."

    events = await collect(adapter.stream(ChatRequest(messages=(ASK,), tools=(WEATHER, TIME))))

    assert text_of(events) == "Let me check."
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    # The text is content block 0; the calls are the answer's calls 0 and 1.
    assert deltas[0] == ToolCallDelta(0, id="tooluse_fake00000000000000", name="get_weather")
    assert [d.index for d in deltas] == sorted(d.index for d in deltas)
    assert calls_of(events) == [
        ToolCallDone(0, ToolCall("tooluse_fake00000000000000", "get_weather", '{"city":"city"}')),
        ToolCallDone(1, ToolCall("tooluse_fake00000000000001", "get_time", '{"city":"city"}')),
    ]
    assert events[-1] == Finished(FinishReason.TOOL_CALLS)


async def test_tool_results_go_back_as_one_user_turn(fake: BedrockFake, adapter: ProviderAdapter) -> None:
    request = ChatRequest(
        messages=(
            ASK,
            ChatMessage(ChatRole.ASSISTANT, "Checking.", tool_calls=CALLS),
            ChatMessage(ChatRole.TOOL, "18 degrees", tool_call_id="tooluse_1"),
            ChatMessage(ChatRole.TOOL, "14:05", tool_call_id="tooluse_2"),
        ),
        tools=(WEATHER, TIME),
    )

    completion = await adapter.complete(request)
    streamed = await collect(adapter.stream(request))

    expected = "Tool result tooluse_1: 18 degrees | Tool result tooluse_2: 14:05"
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
                {"text": "Checking."},
                {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}},
                {"toolUse": {"toolUseId": "tooluse_2", "name": "get_time", "input": {"city": "Paris"}}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "18 degrees"}]}},
                {"toolResult": {"toolUseId": "tooluse_2", "content": [{"text": "14:05"}]}},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("choice", "wire", "called"),
    [
        (None, None, ["get_weather"]),
        (ToolChoice(ToolChoiceMode.AUTO), {"auto": {}}, ["get_weather"]),
        (ToolChoice(ToolChoiceMode.REQUIRED), {"any": {}}, ["get_weather"]),
        (ToolChoice(ToolChoiceMode.TOOL, "get_time"), {"tool": {"name": "get_time"}}, ["get_time"]),
    ],
)
async def test_tool_choice(
    fake: BedrockFake,
    adapter: ProviderAdapter,
    choice: ToolChoice | None,
    wire: dict[str, Any] | None,
    called: list[str],
) -> None:
    completion = await adapter.complete(
        ChatRequest(messages=(ASK,), tools=(WEATHER, TIME), tool_choice=choice)
    )

    assert fake.requests[0].body["toolConfig"].get("toolChoice") == wire
    assert [call.name for call in completion.tool_calls] == called


async def test_tool_choice_none_leaves_the_tools_out(fake: BedrockFake, adapter: ProviderAdapter) -> None:
    none = ToolChoice(ToolChoiceMode.NONE)

    completion = await adapter.complete(ChatRequest(messages=(ASK,), tools=(WEATHER,), tool_choice=none))

    assert completion.text == fake.reply
    assert "toolConfig" not in fake.requests[0].body


async def test_tool_choice_none_keeps_the_tools_a_conversation_of_tool_blocks_needs(
    fake: BedrockFake, adapter: ProviderAdapter
) -> None:
    request = ChatRequest(
        messages=(
            ASK,
            ChatMessage(ChatRole.ASSISTANT, tool_calls=CALLS[:1]),
            ChatMessage(ChatRole.TOOL, "18 degrees", tool_call_id="tooluse_1"),
        ),
        tools=(WEATHER,),
        tool_choice=ToolChoice(ToolChoiceMode.NONE),
    )

    completion = await adapter.complete(request)  # without toolConfig, Converse would refuse it

    assert completion.text == "Tool result tooluse_1: 18 degrees"
    config = fake.requests[0].body["toolConfig"]
    assert [t["toolSpec"]["name"] for t in config["tools"]] == ["get_weather"]
    assert "toolChoice" not in config


async def test_images_by_url_are_downloaded_and_by_data_sent(
    fake: BedrockFake, adapter: ProviderAdapter, image_server: str
) -> None:
    message = ChatMessage(
        ChatRole.USER,
        parts=(
            TextPart("What do you see?"),
            ImagePart(url=f"{image_server}/cat.png"),
            ImagePart(data=b"GIF89a" + bytes(10), media_type="image/gif"),
        ),
    )

    completion = await adapter.complete(ChatRequest(messages=(message,)))

    assert completion.text == "I see 2 images: image/png (68 bytes); image/gif (16 bytes)"
    [sent] = fake.requests[0].body["messages"]
    assert sent["content"] == [
        {"text": "What do you see?"},
        {"image": {"format": "png", "source": {"bytes": base64.b64encode(PNG).decode()}}},
        {"image": {"format": "gif", "source": {"bytes": base64.b64encode(b"GIF89a" + bytes(10)).decode()}}},
    ]


async def test_an_image_url_that_is_not_an_image_is_refused_before_the_call(
    fake: BedrockFake, adapter: ProviderAdapter, image_server: str
) -> None:
    message = ChatMessage(ChatRole.USER, parts=(ImagePart(url=f"{image_server}/missing.png"),))

    error = failure(await collect(adapter.stream(ChatRequest(messages=(message,)))))

    assert (error.code, error.retryable) == (ProviderErrorCode.BAD_REQUEST, False)
    assert fake.requests == []


async def test_json_schema_is_a_forced_tool_answered_as_text(
    fake: BedrockFake, adapter: ProviderAdapter
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
    assert not calls_of(events)
    assert events[-1] == Finished(FinishReason.STOP)
    config = fake.requests[0].body["toolConfig"]
    assert config["tools"][0]["toolSpec"]["name"] == "json_answer"
    assert config["tools"][0]["toolSpec"]["inputSchema"] == {"json": LOCATION.schema}
    assert config["toolChoice"] == {"tool": {"name": "json_answer"}}


async def test_json_object_with_tools_lets_the_model_call_a_tool_or_answer(
    fake: BedrockFake, adapter: ProviderAdapter
) -> None:
    json_object = ResponseFormat(ResponseFormatType.JSON_OBJECT)
    request = ChatRequest(messages=(ASK,), tools=(WEATHER,), response_format=json_object)

    completion = await adapter.complete(request)

    config = fake.requests[0].body["toolConfig"]
    assert [t["toolSpec"]["name"] for t in config["tools"]] == ["get_weather", "json_answer"]
    assert config["tools"][1]["toolSpec"]["inputSchema"] == {"json": {"type": "object"}}
    assert config["toolChoice"] == {"any": {}}
    assert [call.name for call in completion.tool_calls] == ["get_weather"]
    assert json.loads(completion.tool_calls[0].arguments) == {"city": "city"}
