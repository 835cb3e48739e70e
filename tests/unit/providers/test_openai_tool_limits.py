"""What the Chat Completions adapters refuse before any call (a clear, non-retryable BAD_REQUEST,
never a silent drop), and the tool-call shapes of OpenAI-compatible servers they tolerate."""

from __future__ import annotations

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
    ToolCallDone,
    ToolChoice,
    ToolChoiceMode,
    ToolDefinition,
)
from app.domain.enums import ChatRole, FinishReason, ModelGroup, Provider
from app.providers.base import ChatRequest
from app.providers.openai_family import openai_family_adapter
from app.providers.runtime import ProviderRuntime
from tests.fakes.openai_server import OpenAIFake, make_target
from tests.support.streams import collect_result

ASK = ChatMessage(ChatRole.USER, "What is the weather in Paris? Answer in JSON.")
WEATHER = ToolDefinition("get_weather", None, {"type": "object", "properties": {"city": {"type": "string"}}})
TOOLS = ChatRequest(messages=(ASK,), tools=(WEATHER,))
SCHEMA = ResponseFormat(ResponseFormatType.JSON_SCHEMA, "weather", {"type": "object", "properties": {}})
IMAGE = ChatMessage(ChatRole.USER, parts=(TextPart("this?"), ImagePart(url="https://example.com/a.png")))


async def refusal(adapter: Any, request: ChatRequest) -> ProviderError:
    with pytest.raises(ProviderError) as raised:
        await adapter.complete(request)
    streamed = await collect_result(adapter.stream(request))
    assert streamed.error is not None
    assert (streamed.error.code, streamed.error.message) == (raised.value.code, raised.value.message)
    assert raised.value.code is ProviderErrorCode.BAD_REQUEST
    assert raised.value.retryable is False
    return raised.value


def azure(fake: OpenAIFake, runtime: ProviderRuntime, api_version: str) -> Any:
    settings = {"baseCustomUrl": fake.url, "deploymentName": "gpt4o", "apiVersion": api_version}
    return openai_family_adapter(make_target(Provider.AZURE_OPENAI, None, settings=settings), runtime)


@pytest.mark.parametrize(
    ("api_version", "request_", "feature"),
    [
        ("2023-05-15", TOOLS, "tools"),
        ("2023-05-15", ChatRequest(messages=(IMAGE,)), "images"),
        (
            "2023-05-15",
            ChatRequest(messages=(ASK,), response_format=ResponseFormat(ResponseFormatType.JSON_OBJECT)),
            "json_object",
        ),
        ("2024-06-01", ChatRequest(messages=(ASK,), response_format=SCHEMA), "json_schema"),
        (
            "2024-08-01-preview",
            ChatRequest(messages=(ASK,), tools=(WEATHER,), parallel_tool_calls=False),
            "parallel_tool_calls",
        ),
    ],
)
async def test_azure_api_versions_without_a_feature_refuse_it(
    openai_fake: OpenAIFake, runtime: ProviderRuntime, api_version: str, request_: ChatRequest, feature: str
) -> None:
    error = await refusal(azure(openai_fake, runtime, api_version), request_)
    assert f"Azure OpenAI API version {api_version} does not support" in error.message
    assert feature in error.message
    assert openai_fake.requests == []


async def test_azure_api_versions_with_the_feature_pass_it(
    openai_fake: OpenAIFake, runtime: ProviderRuntime
) -> None:
    request = ChatRequest(messages=(ASK,), tools=(WEATHER,), parallel_tool_calls=False)
    completion = await azure(openai_fake, runtime, "2024-09-01-preview").complete(request)
    assert completion.finish_reason is FinishReason.TOOL_CALLS
    schema = await azure(openai_fake, runtime, "2024-08-01-preview").complete(
        ChatRequest(messages=(ASK,), response_format=SCHEMA)
    )
    assert schema.text == "{}"
    # The v1 API (no deployment, no api-version) takes everything.
    v1 = make_target(Provider.AZURE_OPENAI, None, settings={"baseCustomUrl": openai_fake.url})
    everything = ChatRequest(
        messages=(ASK, IMAGE), tools=(WEATHER,), parallel_tool_calls=True, response_format=SCHEMA
    )
    assert (await openai_family_adapter(v1, runtime).complete(everything)).tool_calls
    assert openai_fake.requests[-1].path == "/openai/v1/chat/completions"


@pytest.mark.parametrize(
    "request_",
    [TOOLS, ChatRequest(messages=(IMAGE,)), ChatRequest(messages=(ASK,), response_format=SCHEMA)],
    ids=["tools", "images", "response_format"],
)
async def test_the_legacy_completions_endpoint_refuses_rich_requests(
    openai_fake: OpenAIFake, runtime: ProviderRuntime, request_: ChatRequest
) -> None:
    target = make_target(Provider.OPENAI, f"{openai_fake.url}/v1", group=ModelGroup.COMPLETION)
    error = await refusal(openai_family_adapter(target, runtime), request_)
    assert error.message == "the completions endpoint takes no tools, images or response format"
    assert openai_fake.requests == []


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            ChatRequest(messages=(ChatMessage(ChatRole.SYSTEM, parts=IMAGE.parts), ASK)),
            "only user messages can carry images, not system messages",
        ),
        (
            ChatRequest(messages=(ASK, ChatMessage(ChatRole.TOOL, "18 degrees")), tools=(WEATHER,)),
            "a tool result needs the id of the call it answers",
        ),
        (
            ChatRequest(messages=(ASK,), tool_choice=ToolChoice(ToolChoiceMode.REQUIRED)),
            "a tool choice needs tools",
        ),
        (
            ChatRequest(messages=(ChatMessage(ChatRole.USER, parts=(ImagePart(data=b"\x89PNG"),)),)),
            "an inline image needs its media type",
        ),
    ],
    ids=["image-in-system-message", "result-without-call-id", "choice-without-tools", "data-without-type"],
)
async def test_requests_no_provider_can_take(
    openai_fake: OpenAIFake, runtime: ProviderRuntime, request_: ChatRequest, message: str
) -> None:
    adapter = openai_family_adapter(make_target(Provider.OPENAI, f"{openai_fake.url}/v1"), runtime)
    assert (await refusal(adapter, request_)).message == message
    assert openai_fake.requests == []


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return b"data: " + json.dumps({"object": "chat.completion.chunk", "choices": [choice]}).encode() + b"\n\n"


def whole_call(call_id: str, name: str, arguments: str, index: int = 0) -> dict[str, Any]:
    return {
        "index": index,
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


async def test_whole_calls_all_at_index_zero_stay_apart(
    openai_fake: OpenAIFake, runtime: ProviderRuntime
) -> None:
    """Some compatible servers send each parallel call whole, every one at index 0."""
    openai_fake.raw = b"".join(
        [
            chunk({"role": "assistant", "tool_calls": [whole_call("a1", "get_weather", '{"city":"Paris"}')]}),
            chunk({"tool_calls": [whole_call("b2", "get_weather", '{"city":"Rome"}')]}),
            chunk({}, "tool_calls"),
            b"data: [DONE]\n\n",
        ]
    )
    target = make_target(Provider.OPENAI_COMPATIBLE, f"{openai_fake.url}/v1")
    streamed = await collect_result(openai_family_adapter(target, runtime).stream(TOOLS))
    assert [e for e in streamed.events if isinstance(e, ToolCallDone)] == [
        ToolCallDone(0, ToolCall("a1", "get_weather", '{"city":"Paris"}')),
        ToolCallDone(1, ToolCall("b2", "get_weather", '{"city":"Rome"}')),
    ]
    assert streamed.finish is FinishReason.TOOL_CALLS


async def test_calls_finished_with_stop_still_finish_as_tool_calls(
    openai_fake: OpenAIFake, runtime: ProviderRuntime
) -> None:
    """OpenAI says `stop` when a named tool was forced; some servers always do. Arguments sent as an
    object (not JSON text) are written back as JSON."""
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
    }
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    openai_fake.raw = json.dumps(
        {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
    ).encode()
    openai_fake.raw_content_type = "application/json"
    adapter = openai_family_adapter(make_target(Provider.OPENAI_COMPATIBLE, f"{openai_fake.url}/v1"), runtime)
    completion = await adapter.complete(TOOLS)
    assert completion.tool_calls == (ToolCall("c1", "get_weather", '{"city":"Paris"}'),)
    assert completion.finish_reason is FinishReason.TOOL_CALLS

    openai_fake.raw = (
        chunk({"tool_calls": [whole_call("c1", "get_weather", "{}")]}, "stop") + b"data: [DONE]\n\n"
    )
    openai_fake.raw_content_type = "text/event-stream"
    assert (await collect_result(adapter.stream(TOOLS))).finish is FinishReason.TOOL_CALLS


@pytest.mark.parametrize(
    "tool_calls",
    [
        [{"index": 0, "function": {"arguments": "{}"}}],
        [{"index": 0, "id": "c1", "function": {"arguments": "{}"}}],
    ],
    ids=["continued-before-begun", "begun-without-name"],
)
async def test_malformed_streamed_calls(
    openai_fake: OpenAIFake, runtime: ProviderRuntime, tool_calls: list[dict[str, Any]]
) -> None:
    openai_fake.raw = chunk({"tool_calls": tool_calls}, "tool_calls") + b"data: [DONE]\n\n"
    adapter = openai_family_adapter(make_target(Provider.OPENAI, f"{openai_fake.url}/v1"), runtime)
    streamed = await collect_result(adapter.stream(TOOLS))
    assert streamed.error is not None
    assert streamed.error.code is ProviderErrorCode.MALFORMED_RESPONSE
