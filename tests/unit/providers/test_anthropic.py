"""Anthropic Messages against the fake Anthropic API: the request on the wire (URL, headers, body),
the results and stream events made of the answers, and every failure mapped to its error code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from app.domain.calls import (
    ChatMessage,
    Finished,
    ProviderError,
    ProviderErrorCode,
    TextDelta,
    Usage,
    UsageUpdate,
)
from app.domain.credentials import Credentials
from app.domain.enums import ChatRole, FinishReason, Provider
from app.providers.anthropic import anthropic_adapter, messages_url
from app.providers.base import ChatRequest, EmbedRequest, ProviderAdapter, ProviderTarget
from app.providers.runtime import ProviderRuntime
from tests.fakes.anthropic_server import API_KEY, AnthropicFake, anthropic_fake
from tests.support.streams import collect, consumer_cancelled_on_exit, failure, last_usage, text_of

MODEL = "claude-sonnet-4-5"
REQUEST = ChatRequest(
    messages=(
        ChatMessage(ChatRole.SYSTEM, "Answer in English."),
        ChatMessage(ChatRole.USER, "What is the capital of France?"),
        ChatMessage(ChatRole.ASSISTANT, "Paris."),
        ChatMessage(ChatRole.USER, "And of Spain?"),
        ChatMessage(ChatRole.USER, "One word."),
    ),
    system_prompt="You are terse.",
    temperature=0.2,
    max_tokens=64,
)


@pytest.fixture
async def fake() -> AsyncIterator[AnthropicFake]:
    async with anthropic_fake() as fake:
        yield fake


def adapter(fake: AnthropicFake, runtime: ProviderRuntime, **changes: Any) -> ProviderAdapter:
    fields: dict[str, Any] = {
        "provider": Provider.ANTHROPIC,
        "provider_model_id": MODEL,
        "model_url": fake.url,
        "credentials": Credentials(token=API_KEY),
        **changes,
    }
    return anthropic_adapter(ProviderTarget(**fields), runtime)


async def test_complete_sends_the_messages_request(fake: AnthropicFake, runtime: ProviderRuntime) -> None:
    completion = await adapter(fake, runtime).complete(REQUEST)

    assert completion.text == fake.reply
    assert completion.finish_reason == FinishReason.STOP
    assert completion.usage == Usage(input_tokens=21, output_tokens=9)
    [sent] = fake.requests
    assert (sent.method, sent.path, sent.query) == ("POST", "/v1/messages", {})
    assert sent.headers["x-api-key"] == API_KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert "authorization" not in sent.headers
    assert sent.body == {
        "model": MODEL,
        "max_tokens": 64,
        "system": "You are terse.\n\nAnswer in English.",
        "messages": [
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": "And of Spain?\n\nOne word."},
        ],
        "temperature": 0.2,
    }


async def test_defaults_max_tokens_and_honours_custom_model(
    fake: AnthropicFake, runtime: ProviderRuntime
) -> None:
    request = ChatRequest(messages=(ChatMessage(ChatRole.USER, "Hi"),))
    target = adapter(fake, runtime, settings={"customModel": "claude-haiku-4-5"})

    await target.complete(request)

    assert fake.requests[0].body == {
        "model": "claude-haiku-4-5",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "Hi"}],
    }


@pytest.mark.parametrize(
    ("model_url", "expected"),
    [
        (None, "https://api.anthropic.com/v1/messages"),
        ("https://proxy.example/anthropic/", "https://proxy.example/anthropic/v1/messages"),
        ("https://proxy.example/v1", "https://proxy.example/v1/messages"),
        ("https://proxy.example/v1/messages", "https://proxy.example/v1/messages"),
    ],
)
def test_model_url_is_a_base_or_the_full_endpoint(model_url: str | None, expected: str) -> None:
    assert messages_url(model_url) == expected


async def test_full_endpoint_model_url_reaches_the_fake(
    fake: AnthropicFake, runtime: ProviderRuntime
) -> None:
    await adapter(fake, runtime, model_url=f"{fake.url}/v1/messages").complete(REQUEST)

    assert fake.requests[0].path == "/v1/messages"


async def test_stream_yields_text_usage_and_finish(fake: AnthropicFake, runtime: ProviderRuntime) -> None:
    events = await collect(adapter(fake, runtime).stream(REQUEST))

    assert text_of(events) == fake.reply
    assert len([e for e in events if isinstance(e, TextDelta)]) == 3
    assert last_usage(events) == Usage(input_tokens=21, output_tokens=9)
    assert events[-1] == Finished(FinishReason.STOP)
    assert fake.requests[0].body["stream"] is True
    assert fake.requests[0].body["system"] == "You are terse.\n\nAnswer in English."


@pytest.mark.parametrize("write_size", [1, 7, 37])
async def test_stream_survives_odd_chunk_boundaries(
    fake: AnthropicFake, runtime: ProviderRuntime, write_size: int
) -> None:
    fake.reply = "Grüße aus Köln — naïve café ☕"
    fake.write_size = write_size

    events = await collect(adapter(fake, runtime).stream(REQUEST))

    assert text_of(events) == fake.reply
    assert events[-1] == Finished(FinishReason.STOP)


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", FinishReason.STOP),
        ("stop_sequence", FinishReason.STOP),
        ("max_tokens", FinishReason.LENGTH),
        ("tool_use", FinishReason.TOOL_CALLS),
        ("refusal", FinishReason.CONTENT_FILTER),
    ],
)
async def test_stop_reasons(
    fake: AnthropicFake, runtime: ProviderRuntime, stop_reason: str, finish: FinishReason
) -> None:
    fake.stop_reason = stop_reason

    completion = await adapter(fake, runtime).complete(REQUEST)
    events = await collect(adapter(fake, runtime).stream(REQUEST))

    assert completion.finish_reason == finish
    assert events[-1] == Finished(finish)


async def test_refusal_is_a_content_filter_finish(fake: AnthropicFake, runtime: ProviderRuntime) -> None:
    fake.refusal()

    events = await collect(adapter(fake, runtime).stream(REQUEST))

    assert text_of(events) == "I can't help with that."
    assert events[-1] == Finished(FinishReason.CONTENT_FILTER)


def _rate_limited(fake: AnthropicFake) -> None:
    fake.rate_limited(retry_after="7")


def _rate_limited_with_a_garbled_retry_after(fake: AnthropicFake) -> None:
    fake.rate_limited(retry_after="soon-ish")  # neither seconds nor an HTTP date: the 429 still counts


def _wrong_key(fake: AnthropicFake) -> None:
    fake.api_key = "sk-ant-test-OTHER"


def _context_too_long(fake: AnthropicFake) -> None:
    fake.error = (400, "invalid_request_error", "prompt is too long: 205000 tokens > 200000 maximum")


def _bad_request(fake: AnthropicFake) -> None:
    fake.error = (400, "invalid_request_error", "temperature: Input should be less than or equal to 1")


def _forbidden(fake: AnthropicFake) -> None:
    fake.error = (403, "permission_error", "Your API key does not have permission to use this model.")


ERROR_CASES = [
    pytest.param(_rate_limited, ProviderErrorCode.RATE_LIMITED, True, 429, 7.0, id="429"),
    pytest.param(
        _rate_limited_with_a_garbled_retry_after,
        ProviderErrorCode.RATE_LIMITED,
        True,
        429,
        None,
        id="429-garbled",
    ),
    pytest.param(AnthropicFake.server_error, ProviderErrorCode.UPSTREAM_ERROR, True, 500, None, id="500"),
    pytest.param(AnthropicFake.overloaded, ProviderErrorCode.OVERLOADED, True, 529, None, id="529"),
    pytest.param(_wrong_key, ProviderErrorCode.AUTH_FAILED, False, 401, None, id="401"),
    pytest.param(_forbidden, ProviderErrorCode.AUTH_FAILED, False, 403, None, id="403"),
    pytest.param(_context_too_long, ProviderErrorCode.CONTEXT_TOO_LONG, False, 400, None, id="context"),
    pytest.param(_bad_request, ProviderErrorCode.BAD_REQUEST, False, 400, None, id="400"),
]


@pytest.mark.parametrize(("arrange", "code", "retryable", "status", "retry_after"), ERROR_CASES)
async def test_errors_map_to_codes(
    fake: AnthropicFake,
    runtime: ProviderRuntime,
    arrange: Callable[[AnthropicFake], None],
    code: ProviderErrorCode,
    retryable: bool,
    status: int,
    retry_after: float | None,
) -> None:
    arrange(fake)

    with pytest.raises(ProviderError) as raised:
        await adapter(fake, runtime).complete(REQUEST)
    streamed = failure(await collect(adapter(fake, runtime).stream(REQUEST)))

    for error in (raised.value, streamed):
        assert (error.code, error.retryable, error.status, error.retry_after) == (
            code,
            retryable,
            status,
            retry_after,
        )
    assert "provider returned HTTP" in raised.value.message


async def test_overloaded_mid_stream_is_classified_by_error_type(
    fake: AnthropicFake, runtime: ProviderRuntime
) -> None:
    fake.overloaded_mid_stream()

    events = await collect(adapter(fake, runtime).stream(REQUEST))

    assert isinstance(events[0], UsageUpdate)
    assert isinstance(events[1], TextDelta)
    error = failure(events)
    assert error.code == ProviderErrorCode.OVERLOADED
    assert error.retryable
    assert "Overloaded" in error.message


async def test_missing_message_stop_is_truncated(fake: AnthropicFake, runtime: ProviderRuntime) -> None:
    fake.omit_message_stop = True

    error = failure(await collect(adapter(fake, runtime).stream(REQUEST)))

    assert error.code == ProviderErrorCode.TRUNCATED


async def test_malformed_frame_is_malformed(fake: AnthropicFake, runtime: ProviderRuntime) -> None:
    fake.malformed_frame = True

    error = failure(await collect(adapter(fake, runtime).stream(REQUEST)))

    assert error.code == ProviderErrorCode.MALFORMED_RESPONSE


async def test_dropped_connection_mid_stream_fails_retryably(
    fake: AnthropicFake, runtime: ProviderRuntime
) -> None:
    fake.disconnect_after = 4

    events = await collect(adapter(fake, runtime).stream(REQUEST))

    assert text_of(events) == fake.reply[:9]
    error = failure(events)
    assert error.code == ProviderErrorCode.CONNECT_FAILED
    assert error.retryable


async def test_slow_headers_time_out(fake: AnthropicFake, quick_runtime: ProviderRuntime) -> None:
    fake.delay = 5.0
    started = time.monotonic()
    with pytest.raises(ProviderError) as raised:
        await adapter(fake, quick_runtime).complete(REQUEST)
    streamed = failure(await collect(adapter(fake, quick_runtime).stream(REQUEST)))
    elapsed = time.monotonic() - started

    assert raised.value.code == ProviderErrorCode.TIMEOUT
    assert streamed.code == ProviderErrorCode.TIMEOUT
    assert streamed.retryable
    assert elapsed < 3.0


async def test_slow_first_byte_times_out(fake: AnthropicFake, quick_runtime: ProviderRuntime) -> None:
    fake.first_byte_delay = 5.0
    started = time.monotonic()
    events = await collect(adapter(fake, quick_runtime).stream(REQUEST))
    elapsed = time.monotonic() - started

    assert failure(events).code == ProviderErrorCode.TIMEOUT
    assert elapsed < 1.5


async def test_stalled_stream_times_out(fake: AnthropicFake, quick_runtime: ProviderRuntime) -> None:
    fake.stall_after = 4
    started = time.monotonic()
    events = await collect(adapter(fake, quick_runtime).stream(REQUEST))
    elapsed = time.monotonic() - started

    assert isinstance(events[1], TextDelta)
    assert failure(events).code == ProviderErrorCode.TIMEOUT
    assert elapsed < 1.5


async def test_cancelling_the_consumer_closes_the_upstream_connection(
    fake: AnthropicFake, runtime: ProviderRuntime
) -> None:
    fake.stall_after = 4

    async with consumer_cancelled_on_exit(adapter(fake, runtime).stream(REQUEST), first_text_within=2):
        assert fake.open_streams == 1

    await asyncio.wait_for(fake.all_closed.wait(), 2)


async def test_closing_the_stream_early_closes_the_upstream_connection(
    fake: AnthropicFake, runtime: ProviderRuntime
) -> None:
    fake.stall_after = 4
    stream = adapter(fake, runtime).stream(REQUEST)
    async for event in stream:
        if isinstance(event, TextDelta):
            break
    assert fake.open_streams == 1

    await stream.aclose()  # type: ignore[attr-defined]

    await asyncio.wait_for(fake.all_closed.wait(), 2)


async def test_no_credential_in_errors(fake: AnthropicFake, runtime: ProviderRuntime) -> None:
    fake.error = (401, "authentication_error", f"invalid x-api-key {API_KEY} (key: {API_KEY[:12]}…)")

    with pytest.raises(ProviderError) as raised:
        await adapter(fake, runtime).complete(REQUEST)
    streamed = failure(await collect(adapter(fake, runtime).stream(REQUEST)))

    for error in (raised.value, streamed):
        assert error.code == ProviderErrorCode.AUTH_FAILED
        for text in (error.message, repr(error), str(error)):
            assert "SECRET123456789" not in text
            assert API_KEY not in text


async def test_embeddings_are_not_offered(fake: AnthropicFake, runtime: ProviderRuntime) -> None:
    with pytest.raises(ProviderError) as raised:
        await adapter(fake, runtime).embed(EmbedRequest(texts=("hi",)))

    assert raised.value.code == ProviderErrorCode.BAD_REQUEST
    assert fake.requests == []
