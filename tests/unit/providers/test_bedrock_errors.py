"""Bedrock failures: HTTP errors and in-stream exception frames to error codes, broken and stalled
streams, timeouts, connection failures, missing credentials, cancellation and redaction."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.domain.calls import ChatMessage, ProviderError, ProviderErrorCode, StreamEvent, TextDelta
from app.domain.credentials import Credentials
from app.domain.enums import ChatRole, ModelGroup, Provider
from app.providers.base import ChatRequest, EmbedRequest, ProviderTarget
from app.providers.bedrock import bedrock_adapter
from app.providers.http import Timeouts
from app.providers.runtime import ProviderRuntime
from tests.fakes.bedrock_server import BedrockFake, bedrock_fake, use_fake_aws
from tests.support.streams import collect, consumer_cancelled_on_exit, failure, text_of
from tests.unit.providers.conftest import MakeRuntime

REQUEST = ChatRequest(messages=(ChatMessage(ChatRole.USER, "Hi"),), max_tokens=16)
TOKEN = "bedrock-token-that-must-never-leak"
TARGET = ProviderTarget(
    provider=Provider.AWS_BEDROCK,
    provider_model_id="amazon.nova-micro-v1:0",
    credentials=Credentials(token=TOKEN, platform_identity=True),
)


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[BedrockFake]:
    async with bedrock_fake() as fake:
        use_fake_aws(monkeypatch, fake.url, tmp_path)
        yield fake


async def stream_failure(runtime: ProviderRuntime) -> tuple[list[StreamEvent], ProviderError]:
    events = await collect(bedrock_adapter(TARGET, runtime).stream(REQUEST))
    return events[:-1], failure(events)


@pytest.mark.parametrize(
    ("status", "error_type", "message", "code", "retryable"),
    [
        (429, "ThrottlingException", "Too many requests", ProviderErrorCode.RATE_LIMITED, True),
        (429, "ModelNotReadyException", "Model is not ready", ProviderErrorCode.OVERLOADED, True),
        (503, "ServiceUnavailableException", "Try later", ProviderErrorCode.OVERLOADED, True),
        (500, "InternalServerException", "Internal error", ProviderErrorCode.UPSTREAM_ERROR, True),
        (424, "ModelErrorException", "Model failed", ProviderErrorCode.UPSTREAM_ERROR, True),
        (408, "ModelTimeoutException", "Model timed out", ProviderErrorCode.TIMEOUT, True),
        (403, "AccessDeniedException", "No access", ProviderErrorCode.AUTH_FAILED, False),
        (403, "UnrecognizedClientException", "Bad token", ProviderErrorCode.AUTH_FAILED, False),
        (
            400,
            "ValidationException",
            "The provided model identifier is invalid.",
            ProviderErrorCode.BAD_REQUEST,
            False,
        ),
        (
            400,
            "ValidationException",
            "Input is too long for requested model.",
            ProviderErrorCode.CONTEXT_TOO_LONG,
            False,
        ),
    ],
)
async def test_http_errors(
    fake: BedrockFake,
    runtime: ProviderRuntime,
    status: int,
    error_type: str,
    message: str,
    code: ProviderErrorCode,
    retryable: bool,
) -> None:
    fake.error = (status, error_type, message)
    with pytest.raises(ProviderError) as raised:
        await bedrock_adapter(TARGET, runtime).complete(REQUEST)
    _, streamed = await stream_failure(runtime)

    for error in (raised.value, streamed):
        assert (error.code, error.retryable, error.status) == (code, retryable, status)
        assert message in error.message
    assert len(fake.requests) == 2  # one attempt each: botocore does not retry


@pytest.mark.parametrize(
    ("switch", "code", "status"),
    [
        (BedrockFake.throttle, ProviderErrorCode.RATE_LIMITED, 429),
        (BedrockFake.overloaded, ProviderErrorCode.OVERLOADED, 503),
        (BedrockFake.server_error, ProviderErrorCode.UPSTREAM_ERROR, 500),
    ],
)
async def test_error_switches(
    fake: BedrockFake, runtime: ProviderRuntime, switch: object, code: ProviderErrorCode, status: int
) -> None:
    switch(fake)  # type: ignore[operator]
    with pytest.raises(ProviderError) as raised:
        await bedrock_adapter(TARGET, runtime).complete(REQUEST)
    assert (raised.value.code, raised.value.status, raised.value.retryable) == (code, status, True)


async def test_status_decides_without_an_error_type_header(
    fake: BedrockFake, runtime: ProviderRuntime
) -> None:
    fake.throttle()
    fake.send_error_type_header = False  # botocore then reports the code "429"
    fake.error_headers = {"retry-after": "3"}
    with pytest.raises(ProviderError) as raised:
        await bedrock_adapter(TARGET, runtime).complete(REQUEST)
    assert (raised.value.code, raised.value.retry_after) == (ProviderErrorCode.RATE_LIMITED, 3.0)


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("throttlingException", ProviderErrorCode.RATE_LIMITED),
        ("modelStreamErrorException", ProviderErrorCode.UPSTREAM_ERROR),
        ("serviceUnavailableException", ProviderErrorCode.OVERLOADED),
        ("internalServerException", ProviderErrorCode.UPSTREAM_ERROR),
        ("validationException", ProviderErrorCode.BAD_REQUEST),
    ],
)
async def test_in_stream_exceptions(
    fake: BedrockFake, runtime: ProviderRuntime, kind: str, code: ProviderErrorCode
) -> None:
    fake.stream_exception = (kind, "something went wrong mid-stream")
    events, error = await stream_failure(runtime)
    assert events == [TextDelta("Hello from ")]
    assert error.code is code
    assert "something went wrong mid-stream" in error.message


async def test_bad_crc_is_a_malformed_response(fake: BedrockFake, runtime: ProviderRuntime) -> None:
    fake.corrupt_frame = 2
    events, error = await stream_failure(runtime)
    assert events == [TextDelta("Hello from ")]
    assert error.code is ProviderErrorCode.MALFORMED_RESPONSE


async def test_eof_without_message_stop_is_a_truncated_response(
    fake: BedrockFake, runtime: ProviderRuntime
) -> None:
    fake.omit_terminal = True
    events, error = await stream_failure(runtime)
    assert text_of(events) == fake.reply
    assert error.code is ProviderErrorCode.TRUNCATED


async def test_mid_stream_disconnect(fake: BedrockFake, runtime: ProviderRuntime) -> None:
    fake.disconnect_after = 2
    events, error = await stream_failure(runtime)
    assert events == [TextDelta("Hello from ")]
    assert error.code is ProviderErrorCode.CONNECT_FAILED
    assert error.retryable


async def test_slow_answer_times_out(fake: BedrockFake, quick_runtime: ProviderRuntime) -> None:
    fake.delay = 5
    started = time.monotonic()
    with pytest.raises(ProviderError) as raised:
        await bedrock_adapter(TARGET, quick_runtime).complete(REQUEST)
    assert raised.value.code is ProviderErrorCode.TIMEOUT
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    "slow", [{"delay": 5.0}, {"first_byte_delay": 5.0}, {"stall_after": 2, "stall_seconds": 5.0}]
)
async def test_slow_stream_times_out(
    fake: BedrockFake, quick_runtime: ProviderRuntime, slow: dict[str, float]
) -> None:
    for name, value in slow.items():
        setattr(fake, name, value)
    started = time.monotonic()
    _, error = await stream_failure(quick_runtime)
    assert (error.code, error.retryable) == (ProviderErrorCode.TIMEOUT, True)
    assert time.monotonic() - started < 2


async def test_unreachable_endpoint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, make_runtime: MakeRuntime
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    use_fake_aws(monkeypatch, f"http://127.0.0.1:{port}", tmp_path)
    runtime = make_runtime(Timeouts(connect=0.5, first_byte=1, idle=1))
    with pytest.raises(ProviderError) as raised:
        await bedrock_adapter(TARGET, runtime).complete(REQUEST)
    assert (raised.value.code, raised.value.retryable) == (ProviderErrorCode.CONNECT_FAILED, True)


async def test_missing_credentials(
    fake: BedrockFake, runtime: ProviderRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ProviderError) as raised:
        await bedrock_adapter(TARGET, runtime).complete(REQUEST)
    assert (raised.value.code, raised.value.retryable) == (ProviderErrorCode.AUTH_FAILED, False)
    assert fake.requests == []


async def test_a_model_url_that_is_not_bedrock_is_refused(runtime: ProviderRuntime) -> None:
    target = ProviderTarget(
        provider=Provider.AWS_BEDROCK, provider_model_id="m", model_url="https://169.254.169.254/"
    )
    with pytest.raises(ProviderError) as raised:
        await bedrock_adapter(target, runtime).complete(REQUEST)
    assert (raised.value.code, raised.value.retryable) == (ProviderErrorCode.BAD_REQUEST, False)


async def test_cancelling_the_consumer_closes_the_upstream_stream(
    fake: BedrockFake, runtime: ProviderRuntime
) -> None:
    fake.stall_after = 2
    stream = bedrock_adapter(TARGET, runtime).stream(REQUEST)
    async with consumer_cancelled_on_exit(stream, first_text_within=5):
        assert fake.open_streams == 1
        fake.all_closed.clear()
    await asyncio.wait_for(fake.all_closed.wait(), 1)
    assert fake.open_streams == 0


async def test_closing_the_stream_early_closes_the_upstream_stream(
    fake: BedrockFake, runtime: ProviderRuntime
) -> None:
    fake.stall_after = 2
    stream = bedrock_adapter(TARGET, runtime).stream(REQUEST)
    assert isinstance(await anext(stream), TextDelta)
    await stream.aclose()  # type: ignore[attr-defined]
    await asyncio.wait_for(fake.all_closed.wait(), 1)
    assert fake.open_streams == 0


async def test_credentials_never_appear_in_errors(fake: BedrockFake, runtime: ProviderRuntime) -> None:
    fake.error = (403, "AccessDeniedException", f"The security token {TOKEN} is invalid")
    with pytest.raises(ProviderError) as raised:
        await bedrock_adapter(TARGET, runtime).complete(REQUEST)
    fake.error = None
    fake.stream_exception = ("validationException", f"token {TOKEN} rejected")
    _, streamed = await stream_failure(runtime)

    for error in (raised.value, streamed):
        assert TOKEN not in error.message
        assert TOKEN not in repr(error)
        assert "[redacted]" in error.message
    assert all(TOKEN not in str(r.headers) and TOKEN not in str(r.body) for r in fake.requests)


async def test_embedding_errors(fake: BedrockFake, runtime: ProviderRuntime) -> None:
    fake.throttle()
    embedder = ProviderTarget(
        provider=Provider.AWS_BEDROCK,
        provider_model_id="amazon.titan-embed-text-v2:0",
        model_group=ModelGroup.EMBEDDING,
        credentials=Credentials(platform_identity=True),
    )
    with pytest.raises(ProviderError) as raised:
        await bedrock_adapter(embedder, runtime).embed(EmbedRequest(("a", "b", "c")))
    assert (raised.value.code, raised.value.status) == (ProviderErrorCode.RATE_LIMITED, 429)


async def test_a_model_without_the_platform_identity_is_refused_before_any_call(
    fake: BedrockFake, runtime: ProviderRuntime
) -> None:
    """The AWS credential chain is the platform's: a user's own model may not sign with it."""
    target = ProviderTarget(
        provider=Provider.AWS_BEDROCK, provider_model_id="m", credentials=Credentials("iam")
    )
    with pytest.raises(ProviderError) as raised:
        await bedrock_adapter(target, runtime).complete(REQUEST)
    assert (raised.value.code, raised.value.retryable) == (ProviderErrorCode.AUTH_FAILED, False)
    assert fake.requests == []


async def test_no_region_anywhere(fake: BedrockFake, make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(Timeouts(connect=1, first_byte=1, idle=1), bedrock_region=None)
    with pytest.raises(ProviderError) as raised:
        await bedrock_adapter(TARGET, runtime).complete(REQUEST)
    assert (raised.value.code, raised.value.retryable) == (ProviderErrorCode.BAD_REQUEST, False)
    assert fake.requests == []
