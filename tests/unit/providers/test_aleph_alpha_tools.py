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
    ToolDefinition,
)
from app.domain.credentials import Credentials
from app.domain.enums import ChatRole, FinishReason, ModelGroup, Provider
from app.providers.aleph_alpha import aleph_alpha_adapter
from app.providers.base import ChatRequest, ProviderAdapter, ProviderTarget
from app.providers.runtime import ProviderRuntime
from tests.fakes.aleph_alpha_server import TOKEN, AlephAlphaFake, aleph_alpha_fake
from tests.support.streams import collect, failure, text_of

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
