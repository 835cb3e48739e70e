"""Mistral through the OpenAI family against the fake in its Mistral flavour: `max_tokens` and no
`stream_options`, usage on the last content chunk, typed content parts, Mistral finish reasons and
its flat / 422 error envelopes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.domain.calls import Finished, ProviderError, ProviderErrorCode, TextDelta, Usage, UsageUpdate
from app.domain.enums import FinishReason, ModelGroup, Provider
from app.providers.base import EmbedRequest
from app.providers.openai_family import openai_family_adapter
from app.providers.runtime import ProviderRuntime
from tests.fakes.openai_server import CHAT, TOKEN, FakeError, OpenAIFake, make_target, openai_fake_server
from tests.support.streams import collect_result


@pytest.fixture
async def mistral_fake() -> AsyncIterator[OpenAIFake]:
    async with openai_fake_server(flavor="mistral") as fake:
        yield fake


def mistral(fake: OpenAIFake, runtime: ProviderRuntime, group: ModelGroup = ModelGroup.CHAT) -> Any:
    target = make_target(Provider.MISTRAL, f"{fake.url}/v1", model="mistral-small-latest", group=group)
    return openai_family_adapter(target, runtime)


async def test_complete_and_stream(mistral_fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    adapter = mistral(mistral_fake, runtime)
    completion = await adapter.complete(CHAT)
    streamed = await collect_result(adapter.stream(CHAT))

    assert (completion.text, completion.finish_reason, completion.usage) == (
        "Hello from the fake OpenAI server.",
        FinishReason.STOP,
        Usage(12, 4),
    )
    assert streamed.events[-3:] == [
        TextDelta("server."),
        UsageUpdate(Usage(12, 4)),
        Finished(FinishReason.STOP),
    ]
    plain, stream = mistral_fake.requests
    for request in (plain, stream):
        assert request.path == "/v1/chat/completions"
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert plain.body == {
        "model": "mistral-small-latest",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": "And of Spain?"},
        ],
        "temperature": 0.2,
        "max_tokens": 64,
    }
    assert stream.body == {**plain.body, "stream": True}


async def test_the_fake_rejects_openai_only_fields(
    mistral_fake: OpenAIFake, runtime: ProviderRuntime
) -> None:
    target = make_target(Provider.OPENAI, f"{mistral_fake.url}/v1")
    with pytest.raises(ProviderError) as caught:
        await openai_family_adapter(target, runtime).complete(CHAT)
    assert (caught.value.code, caught.value.status) == (ProviderErrorCode.BAD_REQUEST, 422)
    assert "Extra inputs are not permitted" in caught.value.message


def chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    body: dict[str, Any] = {
        "id": "9f9d",
        "object": "chat.completion.chunk",
        "created": 1764296393,
        "model": "magistral-medium-latest",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n".encode()


async def test_typed_content_parts_keep_only_text(mistral_fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    thinking = {"type": "thinking", "thinking": [{"type": "text", "text": "Let me think."}]}
    mistral_fake.raw = b"".join(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": [thinking]}),
            chunk({"content": [{"type": "text", "text": "Madrid"}]}),
            chunk({"content": "."}),
            chunk(
                {"content": ""}, "stop", {"prompt_tokens": 10, "total_tokens": 242, "completion_tokens": 232}
            ),
            b"data: [DONE]\n\n",
        ]
    )
    result = await collect_result(mistral(mistral_fake, runtime).stream(CHAT))
    assert (result.text, result.finish, result.usage) == ("Madrid.", FinishReason.STOP, Usage(10, 232))


@pytest.mark.parametrize(
    ("finish", "outcome"),
    [("model_length", FinishReason.LENGTH), ("error", ProviderErrorCode.UPSTREAM_ERROR)],
)
async def test_mistral_finish_reasons(
    mistral_fake: OpenAIFake, runtime: ProviderRuntime, finish: str, outcome: object
) -> None:
    mistral_fake.finish_reason = finish
    result = await collect_result(mistral(mistral_fake, runtime).stream(CHAT))
    assert (result.finish or (result.error and result.error.code)) == outcome


@pytest.mark.parametrize(
    ("error", "code", "detail"),
    [
        (
            FakeError(429, "Rate limit exceeded", type="rate_limited", code="1300"),
            ProviderErrorCode.RATE_LIMITED,
            "Rate limit exceeded",
        ),
        (
            FakeError(
                400,
                "Prompt contains 300000 tokens, too large for model with 131072 maximum context length",
                type="invalid_request_error",
            ),
            ProviderErrorCode.CONTEXT_TOO_LONG,
            "300000 tokens",
        ),
        (
            FakeError(401, "", raw=b'{"message":"Unauthorized","request_id":"5c5f0a3e"}'),
            ProviderErrorCode.AUTH_FAILED,
            "Unauthorized",
        ),
        (
            FakeError(
                422,
                "",
                raw=b'{"detail":[{"loc":["body","temperature"],'
                b'"msg":"Input should be less than or equal to 1.5","type":"less_than_equal","input":7}]}',
            ),
            ProviderErrorCode.BAD_REQUEST,
            "Input should be less than or equal to 1.5",
        ),
    ],
)
async def test_errors(
    mistral_fake: OpenAIFake,
    runtime: ProviderRuntime,
    error: FakeError,
    code: ProviderErrorCode,
    detail: str,
) -> None:
    mistral_fake.error = error
    with pytest.raises(ProviderError) as caught:
        await mistral(mistral_fake, runtime).complete(CHAT)
    assert (caught.value.code, caught.value.status) == (code, error.status)
    assert detail in caught.value.message


async def test_embeddings(mistral_fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    target = make_target(
        Provider.MISTRAL, f"{mistral_fake.url}/v1", model="mistral-embed", group=ModelGroup.EMBEDDING
    )
    result = await openai_family_adapter(target, runtime).embed(EmbedRequest(("bonjour le monde",)))
    assert len(result.vectors) == 1
    assert result.usage == Usage(3, 0)
    assert mistral_fake.requests[0].body == {"model": "mistral-embed", "input": ["bonjour le monde"]}
