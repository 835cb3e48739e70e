"""What Aleph Alpha's `/complete` cannot do — tool calls, images, JSON output — is refused clearly and
before any upstream call, not flattened into a prompt that silently loses it. (Chat models speak
OpenAI's Chat Completions, tools and images included, through the OpenAI family's mapping.)"""

from __future__ import annotations

from collections.abc import AsyncIterator

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
    ToolDefinition,
)
from app.domain.credentials import Credentials
from app.domain.enums import ChatRole, FinishReason, ModelGroup, Provider
from app.providers.aleph_alpha import aleph_alpha_adapter
from app.providers.base import ChatRequest, ProviderAdapter, ProviderTarget
from app.providers.runtime import ProviderRuntime
from tests.fakes.aleph_alpha_server import TOKEN, AlephAlphaFake, aleph_alpha_fake
from tests.support.streams import collect, collect_result, failure, text_of

ASK = ChatMessage(ChatRole.USER, "Weather in Paris?")
WEATHER = ToolDefinition(name="get_weather", parameters={"type": "object", "properties": {}})
CALL = ToolCall("call_1", "get_weather", "{}")
PICTURE = ChatMessage(
    ChatRole.USER, parts=(TextPart("What is this?"), ImagePart(url="https://example.com/cat.png"))
)


@pytest.fixture
async def fake() -> AsyncIterator[AlephAlphaFake]:
    async with aleph_alpha_fake() as fake:
        yield fake


@pytest.fixture
def adapter(fake: AlephAlphaFake, runtime: ProviderRuntime) -> ProviderAdapter:
    target = ProviderTarget(
        provider=Provider.ALEPH_ALPHA,
        provider_model_id="luminous-base",
        model_group=ModelGroup.COMPLETION,
        model_url=fake.url,
        credentials=Credentials(token=TOKEN),
    )
    return aleph_alpha_adapter(target, runtime)


@pytest.mark.parametrize(
    ("request_", "needs"),
    [
        pytest.param(ChatRequest(messages=(ASK,), tools=(WEATHER,)), "tool calls", id="tools"),
        pytest.param(
            ChatRequest(
                messages=(
                    ASK,
                    ChatMessage(ChatRole.ASSISTANT, tool_calls=(CALL,)),
                    ChatMessage(ChatRole.TOOL, "sunny", tool_call_id="call_1"),
                )
            ),
            "tool calls",
            id="tool-history",
        ),
        pytest.param(ChatRequest(messages=(PICTURE,)), "images", id="image"),
        pytest.param(
            ChatRequest(messages=(ASK,), response_format=ResponseFormat(ResponseFormatType.JSON_OBJECT)),
            "JSON output",
            id="json-object",
        ),
        pytest.param(
            ChatRequest(
                messages=(ASK,),
                response_format=ResponseFormat(
                    ResponseFormatType.JSON_SCHEMA, name="w", schema={"type": "object"}
                ),
            ),
            "JSON output",
            id="json-schema",
        ),
        pytest.param(
            ChatRequest(
                messages=(PICTURE,),
                tools=(WEATHER,),
                response_format=ResponseFormat(ResponseFormatType.JSON_OBJECT),
            ),
            "tool calls or images or JSON output",
            id="all",
        ),
    ],
)
async def test_complete_refuses_what_it_cannot_do_before_any_call(
    fake: AlephAlphaFake, adapter: ProviderAdapter, request_: ChatRequest, needs: str
) -> None:
    with pytest.raises(ProviderError) as raised:
        await adapter.complete(request_)
    streamed = failure(await collect(adapter.stream(request_)))

    for error in (raised.value, streamed):
        assert (error.code, error.retryable) == (ProviderErrorCode.BAD_REQUEST, False)
        assert error.message == f"Aleph Alpha completion models do not support {needs}; a chat model does"
    assert fake.requests == []


async def test_complete_takes_a_text_response_format(fake: AlephAlphaFake, adapter: ProviderAdapter) -> None:
    request = ChatRequest(messages=(ASK,), response_format=ResponseFormat(ResponseFormatType.TEXT))

    completion = await adapter.complete(request)
    events = await collect(adapter.stream(request))

    assert completion.text == text_of(events) == fake.reply
    assert completion.finish_reason == FinishReason.STOP
    assert len(fake.requests) == 2


@pytest.fixture
def chat_adapter(fake: AlephAlphaFake, runtime: ProviderRuntime) -> ProviderAdapter:
    target = ProviderTarget(
        provider=Provider.ALEPH_ALPHA,
        provider_model_id="llama-3.1-8b-instruct",
        model_url=fake.url,
        credentials=Credentials(token=TOKEN),
    )
    return aleph_alpha_adapter(target, runtime)


async def test_chat_models_call_tools_streamed_or_not(
    fake: AlephAlphaFake, chat_adapter: ProviderAdapter
) -> None:
    fake.tool_calls_per_answer = 2
    request = ChatRequest(messages=(ASK,), tools=(WEATHER,))

    completion = await chat_adapter.complete(request)
    streamed = await collect_result(chat_adapter.stream(request))

    assert completion.finish_reason == streamed.finish == FinishReason.TOOL_CALLS
    assert [c.name for c in completion.tool_calls] == ["get_weather", "get_weather"]
    done = [e.call for e in streamed.events if isinstance(e, ToolCallDone)]
    assert done == list(completion.tool_calls)
    assert fake.requests[0].body["tools"][0]["function"]["name"] == "get_weather"


async def test_chat_models_take_images_and_tool_results(
    fake: AlephAlphaFake, chat_adapter: ProviderAdapter
) -> None:
    history = (
        PICTURE,
        ChatMessage(ChatRole.ASSISTANT, tool_calls=(CALL,)),
        ChatMessage(ChatRole.TOOL, "sunny", tool_call_id="call_1"),
    )
    await chat_adapter.complete(ChatRequest(messages=history, tools=(WEATHER,)))

    sent = fake.requests[0].body["messages"]
    assert sent[0]["content"][1] == {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    assert sent[2] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}


async def test_a_chat_model_without_the_capability_is_a_clear_refusal(
    fake: AlephAlphaFake, chat_adapter: ProviderAdapter
) -> None:
    fake.missing_capabilities = {"tools"}
    with pytest.raises(ProviderError) as raised:
        await chat_adapter.complete(ChatRequest(messages=(ASK,), tools=(WEATHER,)))
    assert (raised.value.code, raised.value.retryable) == (ProviderErrorCode.BAD_REQUEST, False)
    assert "does not support tools" in raised.value.message
