"""OpenAI-compatible servers and custom-header (clientKey/secretKey) models through the OpenAI family
against the fake: auth placement, custom base URLs and model names, and the variations such servers
show (reference §8): missing `[DONE]`, usage chunks with `choices: null` or no `choices`, vLLM errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.domain.calls import ProviderError, ProviderErrorCode, Usage
from app.domain.credentials import Credentials
from app.domain.enums import FinishReason, Provider
from app.providers.openai_family import openai_family_adapter
from app.providers.runtime import ProviderRuntime
from tests.fakes.openai_server import CHAT, TOKEN, FakeError, OpenAIFake, make_target
from tests.support.streams import collect_result

REPLY = "Hello from the fake OpenAI server."


def compatible(fake: OpenAIFake, runtime: ProviderRuntime, credentials: Credentials | None = None) -> Any:
    return openai_family_adapter(
        make_target(Provider.OPENAI_COMPATIBLE, f"{fake.url}/v1", credentials=credentials), runtime
    )


async def test_custom_auth_header_base_url_and_model(
    openai_fake: OpenAIFake, runtime: ProviderRuntime
) -> None:
    openai_fake.expected_headers = {"Ocp-Apim-Subscription-Key": TOKEN}
    target = make_target(
        Provider.OPENAI_COMPATIBLE,
        "https://not-used.example/v1",
        model="catalog-name",
        settings={
            "baseCustomUrl": f"{openai_fake.url}/llm/v1/chat/completions",
            "customModel": "llama-3.1-8b-instruct",
            "customAuthHeader": "Ocp-Apim-Subscription-Key",
        },
    )
    adapter = openai_family_adapter(target, runtime)
    completion = await adapter.complete(CHAT)
    streamed = await collect_result(adapter.stream(CHAT))

    assert (completion.text, completion.usage) == (REPLY, Usage(12, 4))
    assert (streamed.text, streamed.finish, streamed.usage) == (REPLY, FinishReason.STOP, Usage(12, 4))
    for request in openai_fake.requests:
        assert request.path == "/llm/v1/chat/completions"
        assert request.headers["ocp-apim-subscription-key"] == TOKEN
        assert "authorization" not in request.headers
        assert request.body["model"] == "llama-3.1-8b-instruct"
        assert request.body["max_tokens"] == 64
        assert "max_completion_tokens" not in request.body
    assert openai_fake.requests[1].body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("provider", "settings", "headers"),
    [
        (Provider.OPENAI, {}, {"X-Client-Key": "client-123", "X-Secret-Key": "secret-456"}),
        (
            Provider.OPENAI_COMPATIBLE,
            {"clientKeyHeader": "X-Gateway-Client", "secretKeyHeader": "X-Gateway-Secret"},
            {"X-Gateway-Client": "client-123", "X-Gateway-Secret": "secret-456"},
        ),
    ],
)
async def test_client_and_secret_key_headers(
    openai_fake: OpenAIFake,
    runtime: ProviderRuntime,
    provider: Provider,
    settings: dict[str, str],
    headers: dict[str, str],
) -> None:
    openai_fake.expected_headers = headers
    credentials = Credentials(client_key="client-123", secret_key="secret-456")
    target = make_target(provider, f"{openai_fake.url}/v1", settings=settings, credentials=credentials)
    adapter = openai_family_adapter(target, runtime)

    assert (await adapter.complete(CHAT)).text == REPLY
    assert (await collect_result(adapter.stream(CHAT))).text == REPLY
    for request in openai_fake.requests:
        assert request.path == "/v1/chat/completions"
        assert {k.lower(): v for k, v in headers.items()}.items() <= request.headers.items()
        assert "authorization" not in request.headers


async def test_wrong_client_key_is_auth_failed_without_leaking_keys(
    openai_fake: OpenAIFake, runtime: ProviderRuntime
) -> None:
    openai_fake.expected_headers = {"X-Client-Key": "someone-else"}
    credentials = Credentials(client_key="client-abcdef123", secret_key="secret-abcdef456")
    with pytest.raises(ProviderError) as caught:
        await compatible(openai_fake, runtime, credentials).complete(CHAT)
    assert caught.value.code is ProviderErrorCode.AUTH_FAILED
    assert "client-abcdef123" not in str(caught.value)
    assert "client-abcdef123" not in repr(caught.value)


async def test_no_credentials_no_auth_header(openai_fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    await compatible(openai_fake, runtime, Credentials()).complete(CHAT)
    assert "authorization" not in openai_fake.requests[0].headers


async def test_eof_after_finish_reason_ends_the_stream(
    openai_fake: OpenAIFake, runtime: ProviderRuntime
) -> None:
    openai_fake.omit_terminal = True
    result = await collect_result(compatible(openai_fake, runtime).stream(CHAT))
    assert (result.text, result.finish, result.usage) == (REPLY, FinishReason.STOP, Usage(12, 4))


async def test_eof_before_finish_reason_is_truncated(
    openai_fake: OpenAIFake, runtime: ProviderRuntime
) -> None:
    openai_fake.raw = b'data: {"choices":[{"index":0,"delta":{"content":"Hal"},"finish_reason":null}]}\n\n'
    result = await collect_result(compatible(openai_fake, runtime).stream(CHAT))
    assert result.text == "Hal"
    assert result.error is not None
    assert result.error.code is ProviderErrorCode.TRUNCATED


def data(value: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(value)}\n\n".encode()


@pytest.mark.parametrize("usage_chunk", [{"choices": None}, {}], ids=["choices-null", "no-choices"])
async def test_usage_chunk_variants(
    openai_fake: OpenAIFake, runtime: ProviderRuntime, usage_chunk: dict[str, Any]
) -> None:
    openai_fake.raw = b"".join(
        [
            data({"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}),
            data({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}),
            data({**usage_chunk, "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}),
            b"data: [DONE]\n\n",
        ]
    )
    result = await collect_result(compatible(openai_fake, runtime).stream(CHAT))
    assert (result.text, result.finish, result.usage) == ("Hi", FinishReason.LENGTH, Usage(3, 1))


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            FakeError(
                400,
                "",
                raw=b'{"object":"error","message":"max_tokens must be at least 1, got 0.",'
                b'"type":"BadRequestError","param":null,"code":400}',
            ),
            ProviderErrorCode.BAD_REQUEST,
        ),
        (
            FakeError(
                400,
                "",
                raw=b'{"object":"error","message":"This model\'s maximum context length is 4096 tokens. '
                b'However, you requested 5000 tokens.","type":"BadRequestError","param":null,"code":400}',
            ),
            ProviderErrorCode.CONTEXT_TOO_LONG,
        ),
    ],
)
async def test_vllm_errors(
    openai_fake: OpenAIFake, runtime: ProviderRuntime, error: FakeError, code: ProviderErrorCode
) -> None:
    openai_fake.error = error
    with pytest.raises(ProviderError) as caught:
        await compatible(openai_fake, runtime).complete(CHAT)
    assert caught.value.code is code


async def test_error_body_with_status_200(openai_fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    openai_fake.raw = b'{"error":{"message":"upstream model crashed","type":"server_error","code":null}}'
    openai_fake.raw_content_type = "application/json"
    with pytest.raises(ProviderError) as caught:
        await compatible(openai_fake, runtime).complete(CHAT)
    assert caught.value.code is ProviderErrorCode.UPSTREAM_ERROR
    assert "upstream model crashed" in caught.value.message
