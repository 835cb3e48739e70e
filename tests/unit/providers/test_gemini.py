"""The Gemini API (Provider GOOGLE_GENAI) against the fake Google server: the request on the wire
(URL, `x-goog-api-key`, body), results and stream events made of the answers (CRLF SSE ending at EOF),
embeddings, and every failure mapped to its error code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from app.domain.calls import ChatMessage, Finished, ProviderError, ProviderErrorCode, TextDelta, Usage
from app.domain.credentials import Credentials
from app.domain.enums import ChatRole, FinishReason, ModelGroup, Provider
from app.providers.base import ChatRequest, EmbedRequest, ProviderAdapter, ProviderTarget
from app.providers.gemini import google_adapter
from app.providers.google_auth import GeminiApiConnection
from app.providers.runtime import ProviderRuntime
from tests.fakes.google_server import API_KEY, GoogleFake, fake_vector, google_fake
from tests.support.streams import collect, consumer_cancelled_on_exit, failure, text_of, usages

MODEL = "gemini-2.0-flash"
EMBEDDING_MODEL = "text-embedding-004"
REQUEST = ChatRequest(
    messages=(
        ChatMessage(ChatRole.SYSTEM, "Answer in English."),
        ChatMessage(ChatRole.USER, "What is the capital of France?"),
        ChatMessage(ChatRole.ASSISTANT, "Paris."),
        ChatMessage(ChatRole.USER, "And of Spain?"),
        ChatMessage(ChatRole.USER, "One word."),
    ),
    system_prompt="You are a helpful chatbot.",
    temperature=0.0,
    max_tokens=256,
)
EXPECTED_BODY = {
    "contents": [
        {"role": "user", "parts": [{"text": "What is the capital of France?"}]},
        {"role": "model", "parts": [{"text": "Paris."}]},
        {"role": "user", "parts": [{"text": "And of Spain?"}, {"text": "One word."}]},
    ],
    "systemInstruction": {"parts": [{"text": "You are a helpful chatbot.\n\nAnswer in English."}]},
    "generationConfig": {"temperature": 0.0, "maxOutputTokens": 256},
}


@pytest.fixture
async def fake() -> AsyncIterator[GoogleFake]:
    async with google_fake() as fake:
        yield fake


def gemini_target(fake: GoogleFake, **changes: Any) -> ProviderTarget:
    fields: dict[str, Any] = {
        "provider": Provider.GOOGLE_GENAI,
        "provider_model_id": MODEL,
        "model_url": fake.url,
        "credentials": Credentials(token=API_KEY),
        **changes,
    }
    return ProviderTarget(**fields)


def adapter(fake: GoogleFake, runtime: ProviderRuntime, **changes: Any) -> ProviderAdapter:
    return google_adapter(gemini_target(fake, **changes), runtime)


async def test_complete_sends_generate_content(fake: GoogleFake, runtime: ProviderRuntime) -> None:
    completion = await adapter(fake, runtime).complete(REQUEST)

    assert completion.text == fake.reply
    assert completion.finish_reason == FinishReason.STOP
    assert completion.usage == Usage(input_tokens=13, output_tokens=8)
    [sent] = fake.requests
    assert (sent.method, sent.path, sent.query) == ("POST", f"/v1beta/models/{MODEL}:generateContent", {})
    assert sent.headers["x-goog-api-key"] == API_KEY
    assert "authorization" not in sent.headers
    assert sent.headers["content-type"] == "application/json"
    assert sent.body == EXPECTED_BODY


async def test_minimal_request_has_no_config(fake: GoogleFake, runtime: ProviderRuntime) -> None:
    await adapter(fake, runtime).complete(ChatRequest(messages=(ChatMessage(ChatRole.USER, "Hi"),)))

    assert fake.requests[0].body == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


async def test_thinking_counts_as_output(fake: GoogleFake, runtime: ProviderRuntime) -> None:
    fake.thoughts_tokens = 30

    completion = await adapter(fake, runtime).complete(REQUEST)

    assert completion.usage == Usage(input_tokens=13, output_tokens=38)


@pytest.mark.parametrize(
    ("model_url", "model", "expected"),
    [
        (None, MODEL, f"https://generativelanguage.googleapis.com/v1beta/models/{MODEL}"),
        ("https://proxy.example/", f"models/{MODEL}", f"https://proxy.example/v1beta/models/{MODEL}"),
        ("https://proxy.example/v1", MODEL, f"https://proxy.example/v1/models/{MODEL}"),
        (
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:generateContent?key=x",
            MODEL,
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro",
        ),
    ],
)
async def test_model_url_is_a_base_or_names_the_model(
    model_url: str | None, model: str, expected: str
) -> None:
    target = ProviderTarget(provider=Provider.GOOGLE_GENAI, provider_model_id=model, model_url=model_url)

    endpoint = await GeminiApiConnection(target).endpoint()

    assert endpoint.model_url == expected
    assert endpoint.url("streamGenerateContent", sse=True) == f"{expected}:streamGenerateContent?alt=sse"


async def test_stream_yields_text_usage_and_finish(fake: GoogleFake, runtime: ProviderRuntime) -> None:
    events = await collect(adapter(fake, runtime).stream(REQUEST))

    assert text_of(events) == fake.reply
    assert len([e for e in events if isinstance(e, TextDelta)]) == 3
    # Early chunks carry only the prompt count; the last one is complete.
    assert usages(events) == [Usage(13, 0), Usage(13, 8)]
    assert events[-1] == Finished(FinishReason.STOP)
    [sent] = fake.requests
    assert (sent.path, sent.query) == (f"/v1beta/models/{MODEL}:streamGenerateContent", {"alt": "sse"})
    assert sent.headers["x-goog-api-key"] == API_KEY
    assert sent.body == EXPECTED_BODY


@pytest.mark.parametrize("write_size", [1, 7, 37])
async def test_stream_survives_odd_chunk_boundaries(
    fake: GoogleFake, runtime: ProviderRuntime, write_size: int
) -> None:
    fake.reply = "Grüße aus Köln — naïve café ☕"
    fake.write_size = write_size

    events = await collect(adapter(fake, runtime).stream(REQUEST))

    assert text_of(events) == fake.reply
    assert events[-1] == Finished(FinishReason.STOP)


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("STOP", FinishReason.STOP),
        ("MAX_TOKENS", FinishReason.LENGTH),
        ("SAFETY", FinishReason.CONTENT_FILTER),
        ("RECITATION", FinishReason.CONTENT_FILTER),
        ("PROHIBITED_CONTENT", FinishReason.CONTENT_FILTER),
        ("OTHER", FinishReason.STOP),
    ],
)
async def test_finish_reasons(
    fake: GoogleFake, runtime: ProviderRuntime, reason: str, finish: FinishReason
) -> None:
    fake.finish_reason = reason

    completion = await adapter(fake, runtime).complete(REQUEST)
    events = await collect(adapter(fake, runtime).stream(REQUEST))

    assert completion.finish_reason == finish
    assert events[-1] == Finished(finish)


async def test_safety_stop_without_text(fake: GoogleFake, runtime: ProviderRuntime) -> None:
    fake.safety()

    completion = await adapter(fake, runtime).complete(REQUEST)
    events = await collect(adapter(fake, runtime).stream(REQUEST))

    assert (completion.text, completion.finish_reason) == ("", FinishReason.CONTENT_FILTER)
    assert text_of(events) == ""
    assert events[-1] == Finished(FinishReason.CONTENT_FILTER)


async def test_blocked_prompt_is_content_filtered(fake: GoogleFake, runtime: ProviderRuntime) -> None:
    fake.block_reason = "PROHIBITED_CONTENT"

    with pytest.raises(ProviderError) as raised:
        await adapter(fake, runtime).complete(REQUEST)
    streamed = failure(await collect(adapter(fake, runtime).stream(REQUEST)))

    for error in (raised.value, streamed):
        assert error.code == ProviderErrorCode.CONTENT_FILTERED
        assert not error.retryable
        assert "PROHIBITED_CONTENT" in error.message


def _wrong_key(fake: GoogleFake) -> None:
    fake.api_key = "AIza-test-OTHER"


def _forbidden(fake: GoogleFake) -> None:
    fake.error = (403, "PERMISSION_DENIED", "Permission denied: Consumer has been suspended.")


def _not_found(fake: GoogleFake) -> None:
    fake.error = (404, "NOT_FOUND", "models/x is not found for API version v1beta.")


def _retry_after_header(fake: GoogleFake) -> None:
    fake.rate_limited()
    fake.error_headers = {"retry-after": "3"}


ERROR_CASES = [
    pytest.param(GoogleFake.rate_limited, ProviderErrorCode.RATE_LIMITED, True, 429, 26.0, id="429"),
    pytest.param(_retry_after_header, ProviderErrorCode.RATE_LIMITED, True, 429, 3.0, id="429-header"),
    pytest.param(GoogleFake.server_error, ProviderErrorCode.UPSTREAM_ERROR, True, 500, None, id="500"),
    pytest.param(GoogleFake.overloaded, ProviderErrorCode.OVERLOADED, True, 503, None, id="503"),
    pytest.param(_wrong_key, ProviderErrorCode.AUTH_FAILED, False, 400, None, id="bad-key"),
    pytest.param(_forbidden, ProviderErrorCode.AUTH_FAILED, False, 403, None, id="403"),
    pytest.param(_not_found, ProviderErrorCode.BAD_REQUEST, False, 404, None, id="404"),
    pytest.param(GoogleFake.context_too_long, ProviderErrorCode.CONTEXT_TOO_LONG, False, 400, None, id="ctx"),
]


@pytest.mark.parametrize(("arrange", "code", "retryable", "status", "retry_after"), ERROR_CASES)
async def test_errors_map_to_codes(
    fake: GoogleFake,
    runtime: ProviderRuntime,
    arrange: Callable[[GoogleFake], None],
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


async def test_error_chunk_mid_stream(fake: GoogleFake, runtime: ProviderRuntime) -> None:
    fake.stream_error = (503, "UNAVAILABLE", "The model is overloaded. Please try again later.")

    events = await collect(adapter(fake, runtime).stream(REQUEST))

    assert isinstance(events[0], TextDelta)
    error = failure(events)
    assert (error.code, error.retryable) == (ProviderErrorCode.OVERLOADED, True)
    assert "overloaded" in error.message


async def test_eof_without_finish_reason_is_truncated(fake: GoogleFake, runtime: ProviderRuntime) -> None:
    fake.omit_finish_reason = True

    events = await collect(adapter(fake, runtime).stream(REQUEST))

    assert text_of(events) == fake.reply
    assert failure(events).code == ProviderErrorCode.TRUNCATED


async def test_malformed_frame_is_malformed(fake: GoogleFake, runtime: ProviderRuntime) -> None:
    fake.malformed_frame = True

    assert failure(await collect(adapter(fake, runtime).stream(REQUEST))).code == (
        ProviderErrorCode.MALFORMED_RESPONSE
    )


async def test_dropped_connection_mid_stream_fails_retryably(
    fake: GoogleFake, runtime: ProviderRuntime
) -> None:
    fake.disconnect_after = 1

    error = failure(await collect(adapter(fake, runtime).stream(REQUEST)))

    assert (error.code, error.retryable) == (ProviderErrorCode.CONNECT_FAILED, True)


async def test_slow_headers_time_out(fake: GoogleFake, quick_runtime: ProviderRuntime) -> None:
    fake.delay = 5.0
    started = time.monotonic()
    with pytest.raises(ProviderError) as raised:
        await adapter(fake, quick_runtime).complete(REQUEST)
    streamed = failure(await collect(adapter(fake, quick_runtime).stream(REQUEST)))
    elapsed = time.monotonic() - started

    assert raised.value.code == streamed.code == ProviderErrorCode.TIMEOUT
    assert elapsed < 3.0


@pytest.mark.parametrize("switch", ["first_byte_delay", "stall_after"])
async def test_slow_or_stalled_stream_times_out(
    fake: GoogleFake, quick_runtime: ProviderRuntime, switch: str
) -> None:
    if switch == "first_byte_delay":
        fake.first_byte_delay = 5.0
    else:
        fake.stall_after = 1
    started = time.monotonic()
    events = await collect(adapter(fake, quick_runtime).stream(REQUEST))
    elapsed = time.monotonic() - started

    assert (failure(events).code, failure(events).retryable) == (ProviderErrorCode.TIMEOUT, True)
    assert elapsed < 1.5


async def test_cancelling_the_consumer_closes_the_upstream_connection(
    fake: GoogleFake, runtime: ProviderRuntime
) -> None:
    fake.stall_after = 1

    async with consumer_cancelled_on_exit(adapter(fake, runtime).stream(REQUEST), first_text_within=2):
        assert fake.open_streams == 1

    await asyncio.wait_for(fake.all_closed.wait(), 2)


async def test_no_credential_in_errors(fake: GoogleFake, runtime: ProviderRuntime) -> None:
    fake.error = (400, "INVALID_ARGUMENT", f"API key not valid: {API_KEY}. Please pass a valid API key.")

    with pytest.raises(ProviderError) as raised:
        await adapter(fake, runtime).complete(REQUEST)
    streamed = failure(await collect(adapter(fake, runtime).stream(REQUEST)))

    for error in (raised.value, streamed):
        assert error.code == ProviderErrorCode.AUTH_FAILED
        for text in (error.message, repr(error), str(error)):
            assert "SECRET123456789" not in text


async def test_embeddings_use_batch_embed_contents(fake: GoogleFake, runtime: ProviderRuntime) -> None:
    embedder = adapter(
        fake, runtime, provider_model_id="text-embedding-004", model_group=ModelGroup.EMBEDDING
    )

    embeddings = await embedder.embed(EmbedRequest(texts=("hi", "there")))

    assert embeddings.vectors == [fake_vector("hi"), fake_vector("there")]
    assert embeddings.usage == Usage()
    [sent] = fake.requests
    assert sent.path == "/v1beta/models/text-embedding-004:batchEmbedContents"
    assert sent.headers["x-goog-api-key"] == API_KEY
    assert sent.body == {
        "requests": [
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "hi"}]}},
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "there"}]}},
        ]
    }


async def test_embedding_models_do_not_chat(fake: GoogleFake, runtime: ProviderRuntime) -> None:
    embedder = adapter(
        fake, runtime, provider_model_id="text-embedding-004", model_group=ModelGroup.EMBEDDING
    )

    with pytest.raises(ProviderError) as raised:
        await embedder.complete(REQUEST)
    streamed = failure(await collect(embedder.stream(REQUEST)))

    assert raised.value.code == streamed.code == ProviderErrorCode.BAD_REQUEST
    assert fake.requests == []
