"""ECHO, the deterministic offline provider: replies, word-by-word streams, the max_tokens cut-off,
usage in words, embeddings, and the demo settings wordDelayMs, failWith and failAfterWords."""

from __future__ import annotations

import math
import time

import pytest

from app.domain.calls import (
    ChatMessage,
    Finished,
    ProviderError,
    ProviderErrorCode,
    StreamFailed,
    TextDelta,
    Usage,
    UsageUpdate,
)
from app.domain.enums import ChatRole, FinishReason, ModelGroup, Provider
from app.providers.base import ChatRequest, EmbedRequest, ProviderAdapter, ProviderTarget
from app.providers.echo import echo_adapter
from app.providers.runtime import ProviderRuntime
from tests.support.streams import collect

REQUEST = ChatRequest(
    messages=(
        ChatMessage(ChatRole.USER, "first question"),
        ChatMessage(ChatRole.ASSISTANT, "an answer"),
        ChatMessage(ChatRole.USER, "Tell me   a story"),
    ),
    system_prompt="Be kind.",
)


def echo(
    runtime: ProviderRuntime, group: ModelGroup = ModelGroup.CHAT, /, **settings: str
) -> ProviderAdapter:
    # ECHO never uses the runtime (conftest.py's); it is only the factories' common argument.
    target = ProviderTarget(
        provider=Provider.ECHO, provider_model_id="echo", model_group=group, settings=settings
    )
    return echo_adapter(target, runtime)


async def test_chat_echoes_the_last_user_message(runtime: ProviderRuntime) -> None:
    completion = await echo(runtime).complete(REQUEST)
    assert completion.text == "Echo: Tell me a story"
    assert completion.finish_reason is FinishReason.STOP
    assert completion.usage == Usage(input_tokens=10, output_tokens=5)  # 2 + 2 + 2 + 4 words in


async def test_replies_are_deterministic(runtime: ProviderRuntime) -> None:
    first = await echo(runtime).complete(REQUEST)
    assert await echo(runtime).complete(REQUEST) == first


async def test_completion_models_echo_the_whole_prompt(runtime: ProviderRuntime) -> None:
    completion = await echo(runtime, ModelGroup.COMPLETION).complete(REQUEST)
    assert completion.text == "Echo: Be kind. first question an answer Tell me a story"


async def test_streams_word_by_word(runtime: ProviderRuntime) -> None:
    events = await collect(echo(runtime).stream(REQUEST))
    assert events == [
        TextDelta("Echo: "),
        TextDelta("Tell "),
        TextDelta("me "),
        TextDelta("a "),
        TextDelta("story"),
        UsageUpdate(Usage(10, 5)),
        Finished(FinishReason.STOP),
    ]


async def test_max_tokens_cuts_the_reply_with_length(runtime: ProviderRuntime) -> None:
    request = ChatRequest(messages=REQUEST.messages, max_tokens=3)
    completion = await echo(runtime).complete(request)
    events = await collect(echo(runtime).stream(request))

    assert (completion.text, completion.finish_reason) == ("Echo: Tell me", FinishReason.LENGTH)
    assert completion.usage.output_tokens == 3
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Echo: ", "Tell ", "me"]
    assert events[-2:] == [UsageUpdate(Usage(8, 3)), Finished(FinishReason.LENGTH)]


async def test_a_reply_that_fits_exactly_stops_normally(runtime: ProviderRuntime) -> None:
    request = ChatRequest(messages=REQUEST.messages, max_tokens=5)
    assert (await echo(runtime).complete(request)).finish_reason is FinishReason.STOP


async def test_without_a_user_message(runtime: ProviderRuntime) -> None:
    request = ChatRequest(messages=(ChatMessage(ChatRole.SYSTEM, "only rules"),))
    assert (await echo(runtime).complete(request)).text == "Echo:"


async def test_word_delay(runtime: ProviderRuntime) -> None:
    adapter = echo(runtime, wordDelayMs="40")
    started = time.monotonic()
    events = await collect(adapter.stream(REQUEST))
    streamed = time.monotonic() - started
    started = time.monotonic()
    await adapter.complete(REQUEST)
    completed = time.monotonic() - started

    assert isinstance(events[-1], Finished)
    assert 0.16 <= streamed < 1  # four pauses between five words
    assert 0.16 <= completed < 1


async def test_word_delay_is_clamped(runtime: ProviderRuntime) -> None:
    started = time.monotonic()
    await echo(runtime, wordDelayMs="-500").complete(REQUEST)
    assert time.monotonic() - started < 0.1


@pytest.mark.parametrize(
    ("name", "code", "retryable"),
    [
        ("RATE_LIMITED", ProviderErrorCode.RATE_LIMITED, True),
        ("overloaded", ProviderErrorCode.OVERLOADED, True),
        ("CONTEXT_TOO_LONG", ProviderErrorCode.CONTEXT_TOO_LONG, False),
    ],
)
async def test_fail_with(
    runtime: ProviderRuntime, name: str, code: ProviderErrorCode, retryable: bool
) -> None:
    adapter = echo(runtime, failWith=name)
    with pytest.raises(ProviderError) as raised:
        await adapter.complete(REQUEST)
    events = await collect(adapter.stream(REQUEST))
    with pytest.raises(ProviderError) as embed_raised:
        await adapter.embed(EmbedRequest(("x",)))

    assert len(events) == 1
    assert isinstance(events[0], StreamFailed)
    for error in (raised.value, events[0].error, embed_raised.value):
        assert (error.code, error.retryable) == (code, retryable)


async def test_fail_after_words(runtime: ProviderRuntime) -> None:
    events = await collect(echo(runtime, failWith="OVERLOADED", failAfterWords="2").stream(REQUEST))
    assert events[:2] == [TextDelta("Echo: "), TextDelta("Tell ")]
    assert isinstance(events[2], StreamFailed)
    assert events[2].error.code is ProviderErrorCode.OVERLOADED
    assert len(events) == 3


async def test_fail_after_more_words_than_the_reply_has(runtime: ProviderRuntime) -> None:
    events = await collect(echo(runtime, failWith="TIMEOUT", failAfterWords="99").stream(REQUEST))
    assert len([e for e in events if isinstance(e, TextDelta)]) == 5
    assert isinstance(events[-1], StreamFailed)


@pytest.mark.parametrize("settings", [{"failWith": "NOT_A_CODE"}, {"wordDelayMs": "soon"}])
async def test_bad_settings_are_bad_requests(runtime: ProviderRuntime, settings: dict[str, str]) -> None:
    with pytest.raises(ProviderError) as raised:
        await echo(runtime, **settings).complete(REQUEST)
    assert (raised.value.code, raised.value.retryable) == (ProviderErrorCode.BAD_REQUEST, False)


async def test_embeddings(runtime: ProviderRuntime) -> None:
    adapter = echo(runtime, ModelGroup.EMBEDDING)
    result = await adapter.embed(EmbedRequest(("hello world", "bye", "hello world")))

    assert result.usage == Usage(input_tokens=5)
    assert [len(v) for v in result.vectors] == [8, 8, 8]
    assert result.vectors[0] == result.vectors[2] != result.vectors[1]
    assert math.isclose(sum(x * x for x in result.vectors[0]), 1.0)
    assert (await adapter.embed(EmbedRequest(("bye",)))).vectors == [result.vectors[1]]
