"""Azure OpenAI through the OpenAI family against the fake: deployment and v1 URL shapes, `api-key`
auth, the prompt-filter preamble, content filtering, and Azure's error envelope."""

from __future__ import annotations

import pytest

from app.domain.calls import ProviderError, ProviderErrorCode, Usage
from app.domain.enums import ApiType, FinishReason, ModelGroup, Provider
from app.providers.base import EmbedRequest
from app.providers.openai_family import openai_family_adapter
from app.providers.runtime import ProviderRuntime
from tests.fakes.common import RecordedRequest
from tests.fakes.openai_server import CHAT, TOKEN, FakeError, OpenAIFake, embedding_for, make_target
from tests.support.streams import collect_result

REPLY = "Hello from the fake OpenAI server."
DEPLOYMENT = {"deploymentName": "gpt4o-prod", "apiVersion": "2024-10-21"}


def assert_azure_auth(request: RecordedRequest) -> None:
    assert request.headers["api-key"] == TOKEN
    assert "authorization" not in request.headers


@pytest.mark.parametrize(
    ("settings", "model_url", "path", "query"),
    [
        (DEPLOYMENT, None, "/openai/deployments/gpt4o-prod/chat/completions", {"api-version": "2024-10-21"}),
        ({}, None, "/openai/v1/chat/completions", {}),
        (
            {},
            "/openai/deployments/dep-2/chat/completions?api-version=2025-01-01-preview",
            "/openai/deployments/dep-2/chat/completions",
            {"api-version": "2025-01-01-preview"},
        ),
    ],
    ids=["deployment", "v1", "full-model-url"],
)
async def test_chat(
    openai_fake: OpenAIFake,
    runtime: ProviderRuntime,
    settings: dict[str, str],
    model_url: str | None,
    path: str,
    query: dict[str, str],
) -> None:
    if model_url is None:
        settings = {**settings, "baseCustomUrl": openai_fake.url}
    else:
        model_url = openai_fake.url + model_url
    target = make_target(Provider.AZURE_OPENAI, model_url, model="gpt-4o", settings=settings)
    adapter = openai_family_adapter(target, runtime)

    completion = await adapter.complete(CHAT)
    streamed = await collect_result(adapter.stream(CHAT))

    assert (completion.text, completion.finish_reason, completion.usage) == (
        REPLY,
        FinishReason.STOP,
        Usage(12, 4),
    )
    assert (streamed.text, streamed.finish, streamed.usage) == (REPLY, FinishReason.STOP, Usage(12, 4))
    for request in openai_fake.requests:
        assert (request.path, request.query) == (path, query)
        assert_azure_auth(request)
        assert request.body["model"] == "gpt-4o"
        assert request.body["max_completion_tokens"] == 64
    assert openai_fake.requests[1].body["stream_options"] == {"include_usage": True}


async def test_preamble_and_usage_chunks_both_have_empty_choices(
    openai_fake: OpenAIFake, runtime: ProviderRuntime
) -> None:
    """Told apart by `usage`, not by the empty `choices` (reference §2)."""
    target = make_target(
        Provider.AZURE_OPENAI, None, settings={**DEPLOYMENT, "baseCustomUrl": openai_fake.url}
    )
    result = await collect_result(openai_family_adapter(target, runtime).stream(CHAT))
    assert [type(e).__name__ for e in result.events] == ["TextDelta"] * 4 + ["UsageUpdate", "Finished"]


async def test_completion_filter(openai_fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    openai_fake.content_filter = True
    target = make_target(Provider.AZURE_OPENAI, None, settings={"baseCustomUrl": openai_fake.url})
    adapter = openai_family_adapter(target, runtime)
    assert (await adapter.complete(CHAT)).finish_reason is FinishReason.CONTENT_FILTER
    assert (await collect_result(adapter.stream(CHAT))).finish is FinishReason.CONTENT_FILTER


@pytest.mark.parametrize(
    ("error", "code", "retry_after"),
    [
        (
            FakeError(
                429,
                "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
                "2024-08-01-preview have exceeded token rate limit of your current OpenAI S0 pricing tier. "
                "Please retry after 6 seconds.",
                code="429",
                headers={"retry-after": "6", "retry-after-ms": "6000"},
            ),
            ProviderErrorCode.RATE_LIMITED,
            6.0,
        ),
        (FakeError.content_filtered(), ProviderErrorCode.CONTENT_FILTERED, None),
        (FakeError.context_too_long(), ProviderErrorCode.CONTEXT_TOO_LONG, None),
        (
            FakeError(404, "The API deployment for this resource does not exist.", code="DeploymentNotFound"),
            ProviderErrorCode.BAD_REQUEST,
            None,
        ),
    ],
)
async def test_errors(
    openai_fake: OpenAIFake,
    runtime: ProviderRuntime,
    error: FakeError,
    code: ProviderErrorCode,
    retry_after: float | None,
) -> None:
    openai_fake.error = error
    target = make_target(
        Provider.AZURE_OPENAI, None, settings={**DEPLOYMENT, "baseCustomUrl": openai_fake.url}
    )
    adapter = openai_family_adapter(target, runtime)
    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CHAT)
    streamed = await collect_result(adapter.stream(CHAT))
    for failure in (caught.value, streamed.error):
        assert failure is not None
        assert (failure.code, failure.status, failure.retry_after) == (code, error.status, retry_after)
        assert error.message[:30] in failure.message


@pytest.mark.parametrize(
    ("settings", "path", "query"),
    [
        (
            {"deploymentName": "d", "apiVersion": "2025-03-01-preview"},
            "/openai/responses",
            "2025-03-01-preview",
        ),
        ({}, "/openai/v1/responses", None),
    ],
)
async def test_responses(
    openai_fake: OpenAIFake,
    runtime: ProviderRuntime,
    settings: dict[str, str],
    path: str,
    query: str | None,
) -> None:
    target = make_target(
        Provider.AZURE_OPENAI,
        None,
        model="gpt-4.1",
        api_type=ApiType.RESPONSES,
        settings={**settings, "baseCustomUrl": openai_fake.url},
    )
    streamed = await collect_result(openai_family_adapter(target, runtime).stream(CHAT))
    assert (streamed.text, streamed.finish) == (REPLY, FinishReason.STOP)
    [request] = openai_fake.requests
    assert (request.path, request.query.get("api-version")) == (path, query)
    assert request.body["model"] == "gpt-4.1"
    assert_azure_auth(request)


async def test_embeddings_on_a_deployment(openai_fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    target = make_target(
        Provider.AZURE_OPENAI,
        None,
        model="text-embedding-3-large",
        group=ModelGroup.EMBEDDING,
        settings={"baseCustomUrl": openai_fake.url, "deploymentName": "emb", "apiVersion": "2024-10-21"},
    )
    result = await openai_family_adapter(target, runtime).embed(EmbedRequest(("a b", "c")))
    assert result.vectors == [embedding_for("a b"), embedding_for("c")]
    [request] = openai_fake.requests
    assert (request.path, request.query) == (
        "/openai/deployments/emb/embeddings",
        {"api-version": "2024-10-21"},
    )
    assert_azure_auth(request)
