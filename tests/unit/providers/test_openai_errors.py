"""Failure paths of the OpenAI family against the fake: HTTP errors and their envelopes, in-stream
errors, broken streams, timeouts, secrets kept out of error messages, the outbound-URL guard, and
the upstream connection's fate (closed on cancellation, kept for reuse after a finished stream)."""

from __future__ import annotations

import time

import pytest

from app.domain.calls import ProviderError, ProviderErrorCode, TextDelta
from app.domain.credentials import Credentials
from app.domain.enums import ApiType, Provider
from app.providers.openai_family import openai_family_adapter
from app.providers.runtime import ProviderRuntime
from tests.fakes.openai_server import CHAT, TOKEN, FakeError, OpenAIFake, assert_no_secret, make_target
from tests.support.streams import collect_result, consumer_cancelled_on_exit
from tests.unit.providers.conftest import QUICK_TIMEOUTS, MakeRuntime


async def call_both(
    fake: OpenAIFake, runtime: ProviderRuntime, api_type: ApiType = ApiType.CHAT_COMPLETION
) -> tuple[ProviderError, ProviderError]:
    """The error of `complete` and the one `stream` ends with, for the same switches."""
    adapter = openai_family_adapter(
        make_target(Provider.OPENAI, f"{fake.url}/v1", api_type=api_type), runtime
    )
    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CHAT)
    streamed = await collect_result(adapter.stream(CHAT))
    assert streamed.error is not None
    return caught.value, streamed.error


@pytest.mark.parametrize("api_type", [ApiType.CHAT_COMPLETION, ApiType.RESPONSES])
@pytest.mark.parametrize(
    ("error", "code", "retryable", "retry_after", "detail"),
    [
        (FakeError.rate_limited("7"), ProviderErrorCode.RATE_LIMITED, True, 7.0, "Rate limit reached"),
        (FakeError.rate_limited(None, "1500"), ProviderErrorCode.RATE_LIMITED, True, 1.5, "Rate limit"),
        (
            FakeError.insufficient_quota(),
            ProviderErrorCode.RATE_LIMITED,
            False,
            None,
            "exceeded your current",
        ),
        (FakeError.context_too_long(), ProviderErrorCode.CONTEXT_TOO_LONG, False, None, "maximum context"),
        (FakeError.server_error(), ProviderErrorCode.UPSTREAM_ERROR, True, None, "server had an error"),
        (FakeError.overloaded(), ProviderErrorCode.OVERLOADED, True, None, "currently overloaded"),
        (FakeError.content_filtered(), ProviderErrorCode.CONTENT_FILTERED, False, None, "filtered"),
        (
            FakeError(
                500, "Retrying will not help.", type="server_error", headers={"x-should-retry": "false"}
            ),
            ProviderErrorCode.UPSTREAM_ERROR,
            False,
            None,
            "Retrying will not help",
        ),
        (
            FakeError(
                429,
                "",
                raw=b'{"statusCode":429,"message":"Rate limit is exceeded. Try again in 30 seconds."}',
            ),
            ProviderErrorCode.RATE_LIMITED,
            True,
            None,
            "Rate limit is exceeded",
        ),
        (
            FakeError(502, "", raw=b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
            ProviderErrorCode.UPSTREAM_ERROR,
            True,
            None,
            "502 Bad Gateway",
        ),
        (
            FakeError(404, "The model `gpt-9` does not exist"),
            ProviderErrorCode.BAD_REQUEST,
            False,
            None,
            "gpt-9",
        ),
    ],
)
async def test_http_errors(
    openai_fake: OpenAIFake,
    runtime: ProviderRuntime,
    api_type: ApiType,
    error: FakeError,
    code: ProviderErrorCode,
    retryable: bool,
    retry_after: float | None,
    detail: str,
) -> None:
    openai_fake.error = error
    for failure in await call_both(openai_fake, runtime, api_type):
        assert failure.code is code
        assert failure.retryable is retryable
        assert failure.status == error.status
        assert failure.retry_after == retry_after
        assert detail in failure.message
        assert f"HTTP {error.status}" in failure.message


async def test_error_times_limits_the_error_to_the_first_requests(
    openai_fake: OpenAIFake, runtime: ProviderRuntime
) -> None:
    openai_fake.error, openai_fake.error_times = FakeError.overloaded(), 1
    adapter = openai_family_adapter(make_target(Provider.OPENAI, f"{openai_fake.url}/v1"), runtime)
    with pytest.raises(ProviderError):
        await adapter.complete(CHAT)
    assert (await adapter.complete(CHAT)).text == "Hello from the fake OpenAI server."


async def test_invalid_key_is_auth_failed_and_the_echoed_key_is_redacted(
    openai_fake: OpenAIFake, runtime: ProviderRuntime
) -> None:
    openai_fake.expected_headers = {"Authorization": "Bearer sk-the-right-one"}
    for failure in await call_both(openai_fake, runtime):
        assert failure.code is ProviderErrorCode.AUTH_FAILED
        assert failure.retryable is False
        assert failure.message.startswith("provider returned HTTP 401: Incorrect")
        assert_no_secret(failure)
    assert openai_fake.requests[0].headers["authorization"] == f"Bearer {TOKEN}"


async def test_in_stream_errors_keep_the_key_out(openai_fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    openai_fake.raw = (
        b'data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'
        b'data: {"error":{"message":"key '
        + TOKEN.encode()
        + b' was revoked","type":"invalid_request_error"}}\n\n'
    )
    adapter = openai_family_adapter(make_target(Provider.OPENAI, f"{openai_fake.url}/v1"), runtime)
    result = await collect_result(adapter.stream(CHAT))
    assert result.text == "Hi"
    assert result.error is not None
    assert result.error.code is ProviderErrorCode.UPSTREAM_ERROR
    assert "was revoked" in result.error.message
    assert_no_secret(result.error)


@pytest.mark.parametrize(
    ("switches", "code", "text"),
    [
        ({"omit_terminal": True}, ProviderErrorCode.TRUNCATED, "Hello from the fake OpenAI server."),
        ({"malformed_after": 3}, ProviderErrorCode.MALFORMED_RESPONSE, "Hello from the fak"),
        ({"stream_error_after": 3}, ProviderErrorCode.UPSTREAM_ERROR, "Hello from the fak"),
    ],
)
@pytest.mark.parametrize("api_type", [ApiType.CHAT_COMPLETION, ApiType.RESPONSES])
async def test_broken_streams(
    openai_fake: OpenAIFake,
    runtime: ProviderRuntime,
    api_type: ApiType,
    switches: dict[str, object],
    code: ProviderErrorCode,
    text: str,
) -> None:
    for name, value in switches.items():
        setattr(openai_fake, name, value)
    if api_type is ApiType.RESPONSES and "omit_terminal" not in switches:
        setattr(openai_fake, next(iter(switches)), 6)  # Responses has 4 frames before the first delta
    adapter = openai_family_adapter(
        make_target(Provider.OPENAI, f"{openai_fake.url}/v1", api_type=api_type), runtime
    )
    result = await collect_result(adapter.stream(CHAT))
    assert result.error is not None
    assert result.error.code is code
    assert result.text == text


async def test_mid_stream_disconnect_is_a_retryable_failure(
    openai_fake: OpenAIFake, runtime: ProviderRuntime
) -> None:
    openai_fake.disconnect_after = 3
    adapter = openai_family_adapter(make_target(Provider.OPENAI, f"{openai_fake.url}/v1"), runtime)
    result = await collect_result(adapter.stream(CHAT))
    assert result.text == "Hello from the fak"
    assert result.error is not None
    assert result.error.retryable is True
    assert result.error.code in (ProviderErrorCode.CONNECT_FAILED, ProviderErrorCode.UPSTREAM_ERROR)


@pytest.mark.parametrize(
    ("switches", "within"),
    [
        ({"delay": 5.0}, QUICK_TIMEOUTS.connect + QUICK_TIMEOUTS.first_byte),
        ({"first_byte_delay": 5.0}, QUICK_TIMEOUTS.first_byte),
        ({"stall_after": 3, "stall_seconds": 5.0}, QUICK_TIMEOUTS.idle),
    ],
    ids=["headers", "first-byte", "idle"],
)
async def test_timeouts(
    openai_fake: OpenAIFake, quick_runtime: ProviderRuntime, switches: dict[str, float], within: float
) -> None:
    for name, value in switches.items():
        setattr(openai_fake, name, value)
    adapter = openai_family_adapter(make_target(Provider.OPENAI, f"{openai_fake.url}/v1"), quick_runtime)
    started = time.monotonic()
    result = await collect_result(adapter.stream(CHAT))
    elapsed = time.monotonic() - started
    assert result.error is not None
    assert result.error.code is ProviderErrorCode.TIMEOUT
    assert result.error.retryable is True
    assert elapsed < within + 0.5
    if "stall_after" not in switches:  # complete() has the same limits before the answer
        started = time.monotonic()
        with pytest.raises(ProviderError) as caught:
            await adapter.complete(CHAT)
        assert caught.value.code is ProviderErrorCode.TIMEOUT
        assert time.monotonic() - started < within + 0.5


async def test_cancelling_the_consumer_closes_the_upstream_connection(
    openai_fake: OpenAIFake, runtime: ProviderRuntime
) -> None:
    openai_fake.stall_after, openai_fake.stall_seconds = 3, 30.0
    adapter = openai_family_adapter(make_target(Provider.OPENAI, f"{openai_fake.url}/v1"), runtime)
    async with consumer_cancelled_on_exit(adapter.stream(CHAT), first_text_within=2):
        assert openai_fake.open_connections == 1
    assert await openai_fake.wait_for_no_connections() == 0


async def test_closing_the_stream_early_closes_the_upstream_connection(
    openai_fake: OpenAIFake, runtime: ProviderRuntime
) -> None:
    openai_fake.stall_after, openai_fake.stall_seconds = 3, 30.0
    adapter = openai_family_adapter(make_target(Provider.OPENAI, f"{openai_fake.url}/v1"), runtime)
    stream = adapter.stream(CHAT)
    assert isinstance(await anext(stream), TextDelta)
    await stream.aclose()  # type: ignore[attr-defined]
    assert await openai_fake.wait_for_no_connections() == 0


async def test_finished_streams_leave_their_connection_for_reuse(
    openai_fake: OpenAIFake, runtime: ProviderRuntime
) -> None:
    adapter = openai_family_adapter(make_target(Provider.OPENAI, f"{openai_fake.url}/v1"), runtime)
    for _ in range(3):
        assert (await collect_result(adapter.stream(CHAT))).error is None
    assert len({request.client_port for request in openai_fake.requests}) == 1
    openai_fake.requests.clear()
    for _ in range(3):  # one-shot calls keep their own connections (app/providers/exchanges.py)
        await adapter.complete(CHAT)
    assert len({request.client_port for request in openai_fake.requests}) == 1


async def test_private_upstreams_are_refused_before_connecting(
    openai_fake: OpenAIFake, make_runtime: MakeRuntime
) -> None:
    runtime = make_runtime(allow_private=False)
    adapter = openai_family_adapter(make_target(Provider.OPENAI, f"{openai_fake.url}/v1"), runtime)
    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CHAT)
    streamed = await collect_result(adapter.stream(CHAT))
    for failure in (caught.value, streamed.error):
        assert failure is not None
        assert failure.code is ProviderErrorCode.BAD_REQUEST
        assert failure.retryable is False
    assert openai_fake.requests == []


async def test_unusable_target_fails_the_call_not_the_factory(runtime: ProviderRuntime) -> None:
    target = make_target(Provider.OPENAI_COMPATIBLE, None, credentials=Credentials(token=TOKEN))
    adapter = openai_family_adapter(target, runtime)
    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CHAT)
    streamed = await collect_result(adapter.stream(CHAT))
    assert caught.value.code is ProviderErrorCode.BAD_REQUEST
    assert streamed.error is not None
    assert streamed.error.code is ProviderErrorCode.BAD_REQUEST
