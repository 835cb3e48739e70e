"""Aleph Alpha `/complete` (COMPLETION models) and OpenAI-compatible `/chat/completions` (CHAT models)
against the fake: request shape, results, streams, error envelopes, timeouts and cancellation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

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
from app.domain.credentials import Credentials
from app.domain.enums import ChatRole, FinishReason, ModelGroup, Provider
from app.providers.aleph_alpha import aleph_alpha_adapter
from app.providers.base import ChatRequest, EmbedRequest, ProviderTarget
from app.providers.runtime import ProviderRuntime
from tests.fakes.aleph_alpha_server import TOKEN, AlephAlphaFake, aleph_alpha_fake
from tests.support.streams import collect, consumer_cancelled_on_exit, text_of

REQUEST = ChatRequest(
    messages=(ChatMessage(ChatRole.USER, "Hello, World!"),),
    system_prompt="Answer in English.",
    temperature=0.0,
    max_tokens=7,
)


@pytest.fixture
async def fake() -> AsyncIterator[AlephAlphaFake]:
    async with aleph_alpha_fake() as fake:
        yield fake


def completion_model(fake: AlephAlphaFake, **changes: object) -> ProviderTarget:
    values: dict[str, object] = {
        "provider": Provider.ALEPH_ALPHA,
        "provider_model_id": "luminous-base",
        "model_group": ModelGroup.COMPLETION,
        "model_url": fake.url,
        "credentials": Credentials(token=TOKEN),
    }
    values.update(changes)
    return ProviderTarget(**values)  # type: ignore[arg-type]


def chat_model(fake: AlephAlphaFake, **changes: object) -> ProviderTarget:
    return completion_model(
        fake, model_group=ModelGroup.CHAT, provider_model_id="llama-3.1-8b-instruct", **changes
    )


async def test_complete_request_and_result(fake: AlephAlphaFake, runtime: ProviderRuntime) -> None:
    completion = await aleph_alpha_adapter(completion_model(fake), runtime).complete(REQUEST)

    assert completion.text == fake.reply
    assert completion.finish_reason is FinishReason.STOP
    assert completion.usage == Usage(5, 8)
    [sent] = fake.requests
    assert sent.path == "/complete"
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert sent.body == {
        "model": "luminous-base",
        "prompt": "Answer in English.\n\nHello, World!",
        "stream": False,
        "maximum_tokens": 7,
        "temperature": 0.0,
    }


@pytest.mark.parametrize(
    ("model_url", "path"),
    [
        ("{url}/v1", "/v1/complete"),
        ("{url}/v1/", "/v1/complete"),
        ("{url}/v1/complete", "/v1/complete"),
        ("{url}/v1/chat/completions", "/v1/complete"),
    ],
)
async def test_model_url_is_the_api_base_or_a_full_endpoint(
    fake: AlephAlphaFake, runtime: ProviderRuntime, model_url: str, path: str
) -> None:
    target = completion_model(fake, model_url=model_url.format(url=fake.url))
    await aleph_alpha_adapter(target, runtime).complete(REQUEST)
    assert fake.requests[0].path == path


async def test_custom_model_setting(fake: AlephAlphaFake, runtime: ProviderRuntime) -> None:
    target = completion_model(fake, settings={"customModel": "luminous-supreme"})
    await aleph_alpha_adapter(target, runtime).complete(REQUEST)
    assert fake.requests[0].body["model"] == "luminous-supreme"


@pytest.mark.parametrize(
    ("finish_reason", "finish"),
    [
        ("maximum_tokens", FinishReason.LENGTH),
        ("end_of_text", FinishReason.STOP),
        ("stop", FinishReason.STOP),
        ("stop_sequence_reached", FinishReason.STOP),
    ],
)
async def test_complete_finish_reasons(
    fake: AlephAlphaFake, runtime: ProviderRuntime, finish_reason: str, finish: FinishReason
) -> None:
    fake.finish_reason = finish_reason
    adapter = aleph_alpha_adapter(completion_model(fake), runtime)
    assert (await adapter.complete(REQUEST)).finish_reason is finish
    assert (await collect(adapter.stream(REQUEST)))[-1] == Finished(finish)


@pytest.mark.parametrize("write_size", [None, 1, 7, 37])
async def test_complete_stream(
    fake: AlephAlphaFake, runtime: ProviderRuntime, write_size: int | None
) -> None:
    fake.write_size = write_size
    events = await collect(aleph_alpha_adapter(completion_model(fake), runtime).stream(REQUEST))

    assert len([e for e in events if isinstance(e, TextDelta)]) == 3
    assert text_of(events) == fake.reply
    assert events[-2:] == [UsageUpdate(Usage(5, 8)), Finished(FinishReason.STOP)]
    assert fake.requests[0].body["stream"] is True
    assert fake.requests[0].headers["accept"] == "text/event-stream"


async def test_chat_request_and_result(fake: AlephAlphaFake, runtime: ProviderRuntime) -> None:
    completion = await aleph_alpha_adapter(chat_model(fake), runtime).complete(REQUEST)

    assert (completion.text, completion.finish_reason) == (fake.reply, FinishReason.STOP)
    assert completion.usage == Usage(5, 8)
    [sent] = fake.requests
    assert sent.path == "/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert sent.body == {
        "model": "llama-3.1-8b-instruct",
        "messages": [
            {"role": "system", "content": "Answer in English."},
            {"role": "user", "content": "Hello, World!"},
        ],
        "temperature": 0.0,
        "maximum_tokens": 7,
    }


@pytest.mark.parametrize("write_size", [None, 5])
async def test_chat_stream(fake: AlephAlphaFake, runtime: ProviderRuntime, write_size: int | None) -> None:
    fake.write_size = write_size
    events = await collect(aleph_alpha_adapter(chat_model(fake), runtime).stream(REQUEST))

    assert text_of(events) == fake.reply
    assert events[-2:] == [UsageUpdate(Usage(5, 8)), Finished(FinishReason.STOP)]
    assert fake.requests[0].body["stream"] is True
    assert fake.requests[0].body["stream_options"] == {"include_usage": True}


async def test_embeddings_are_not_offered(fake: AlephAlphaFake, runtime: ProviderRuntime) -> None:
    target = completion_model(fake, model_group=ModelGroup.EMBEDDING)
    with pytest.raises(ProviderError) as raised:
        await aleph_alpha_adapter(target, runtime).embed(EmbedRequest(("hi",)))
    assert raised.value.code is ProviderErrorCode.BAD_REQUEST
    assert fake.requests == []


@pytest.mark.parametrize("make_target", [completion_model, chat_model])
@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (400, ProviderErrorCode.BAD_REQUEST, False),
        (401, ProviderErrorCode.AUTH_FAILED, False),
        (429, ProviderErrorCode.RATE_LIMITED, True),
        (500, ProviderErrorCode.UPSTREAM_ERROR, True),
        (503, ProviderErrorCode.OVERLOADED, True),
    ],
)
async def test_flat_error_envelopes(
    fake: AlephAlphaFake,
    runtime: ProviderRuntime,
    make_target: object,
    status: int,
    code: ProviderErrorCode,
    retryable: bool,
) -> None:
    fake.error = (status, f"Upstream says no ({status})", "SOME_CODE")
    fake.error_headers = {"retry-after": "4"}
    adapter = aleph_alpha_adapter(make_target(fake), runtime)  # type: ignore[operator]
    with pytest.raises(ProviderError) as raised:
        await adapter.complete(REQUEST)
    events = await collect(adapter.stream(REQUEST))
    assert isinstance(events[-1], StreamFailed)

    for error in (raised.value, events[-1].error):
        assert (error.code, error.status, error.retryable, error.retry_after) == (
            code,
            status,
            retryable,
            4.0,
        )
        assert f"Upstream says no ({status})" in error.message


async def test_wrong_token_is_an_auth_failure(fake: AlephAlphaFake, runtime: ProviderRuntime) -> None:
    target = completion_model(fake, credentials=Credentials(token="aa-wrong-token-0123456789"))
    with pytest.raises(ProviderError) as raised:
        await aleph_alpha_adapter(target, runtime).complete(REQUEST)
    assert (raised.value.code, raised.value.retryable) == (ProviderErrorCode.AUTH_FAILED, False)
    assert "aa-wrong-token-0123456789" not in raised.value.message


async def test_credentials_never_appear_in_errors(fake: AlephAlphaFake, runtime: ProviderRuntime) -> None:
    fake.error = (400, f"Bad request from token {TOKEN}", "INVALID")
    for target in (completion_model(fake), chat_model(fake)):
        with pytest.raises(ProviderError) as raised:
            await aleph_alpha_adapter(target, runtime).complete(REQUEST)
        assert TOKEN not in raised.value.message
        assert "[redacted]" in raised.value.message


@pytest.mark.parametrize("make_target", [completion_model, chat_model])
async def test_eof_without_terminal_is_a_truncated_response(
    fake: AlephAlphaFake, runtime: ProviderRuntime, make_target: object
) -> None:
    fake.omit_terminal = True
    events = await collect(aleph_alpha_adapter(make_target(fake), runtime).stream(REQUEST))  # type: ignore[operator]
    assert text_of(events) == fake.reply
    assert isinstance(events[-1], StreamFailed)
    assert events[-1].error.code is ProviderErrorCode.TRUNCATED


async def test_mid_stream_disconnect(fake: AlephAlphaFake, runtime: ProviderRuntime) -> None:
    fake.disconnect_after = 1
    events = await collect(aleph_alpha_adapter(completion_model(fake), runtime).stream(REQUEST))
    assert isinstance(events[-1], StreamFailed)
    assert events[-1].error.code is ProviderErrorCode.CONNECT_FAILED
    assert events[-1].error.retryable


async def test_slow_answer_times_out(fake: AlephAlphaFake, quick_runtime: ProviderRuntime) -> None:
    fake.delay = 5
    started = time.monotonic()
    with pytest.raises(ProviderError) as raised:
        await aleph_alpha_adapter(completion_model(fake), quick_runtime).complete(REQUEST)
    assert raised.value.code is ProviderErrorCode.TIMEOUT
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("slow", [{"first_byte_delay": 5.0}, {"stall_after": 1, "stall_seconds": 5.0}])
async def test_slow_stream_times_out(
    fake: AlephAlphaFake, quick_runtime: ProviderRuntime, slow: dict[str, float]
) -> None:
    for name, value in slow.items():
        setattr(fake, name, value)
    started = time.monotonic()
    events = await collect(aleph_alpha_adapter(completion_model(fake), quick_runtime).stream(REQUEST))
    assert isinstance(events[-1], StreamFailed)
    assert (events[-1].error.code, events[-1].error.retryable) == (ProviderErrorCode.TIMEOUT, True)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("make_target", [completion_model, chat_model])
async def test_cancelling_the_consumer_closes_the_upstream_stream(
    fake: AlephAlphaFake, runtime: ProviderRuntime, make_target: object
) -> None:
    fake.stall_after = 2
    stream = aleph_alpha_adapter(make_target(fake), runtime).stream(REQUEST)  # type: ignore[operator]
    async with consumer_cancelled_on_exit(stream, first_text_within=5):
        assert fake.open_streams == 1
        fake.all_closed.clear()
    await asyncio.wait_for(fake.all_closed.wait(), 1)
    assert fake.open_streams == 0
