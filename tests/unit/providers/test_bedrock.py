"""Bedrock Converse / ConverseStream / Titan embeddings against the fake bedrock-runtime: the request
botocore puts on the wire, and the results and stream events the adapter makes of the answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.domain.calls import ChatMessage, Finished, TextDelta, Usage, UsageUpdate
from app.domain.credentials import Credentials
from app.domain.enums import ChatRole, FinishReason, ModelGroup, Provider
from app.providers.base import ChatRequest, EmbedRequest, ProviderTarget
from app.providers.bedrock import bedrock_adapter
from app.providers.bedrock_clients import bedrock_clients
from app.providers.runtime import ProviderRuntime
from tests.fakes.bedrock_server import BedrockFake, bedrock_fake, titan_vector, use_fake_aws
from tests.support.streams import collect

MODEL = "us.amazon.nova-micro-v1:0"
REQUEST = ChatRequest(
    messages=(
        ChatMessage(ChatRole.USER, "What is the capital of France?"),
        ChatMessage(ChatRole.ASSISTANT, "Paris."),
        ChatMessage(ChatRole.USER, "And of Spain?"),
        ChatMessage(ChatRole.USER, "One word."),
    ),
    system_prompt="You are a helpful chatbot.",
    temperature=0.2,
    max_tokens=64,
)


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[BedrockFake]:
    async with bedrock_fake() as fake:
        use_fake_aws(monkeypatch, fake.url, tmp_path)
        yield fake


def target(**changes: object) -> ProviderTarget:
    values: dict[str, object] = {
        "provider": Provider.AWS_BEDROCK,
        "provider_model_id": "unused",
        "model_url": f"bedrock://{MODEL}",
        "credentials": Credentials(token="iam", platform_identity=True),
    }
    values.update(changes)
    return ProviderTarget(**values)  # type: ignore[arg-type]


async def test_converse_request_and_result(fake: BedrockFake, runtime: ProviderRuntime) -> None:
    completion = await bedrock_adapter(target(), runtime).complete(REQUEST)

    assert completion.text == fake.reply
    assert completion.finish_reason is FinishReason.STOP
    assert completion.usage == Usage(11, 7)
    [sent] = fake.requests
    assert sent.operation == "converse"
    assert sent.model_id == MODEL
    assert sent.body == {
        "messages": [
            {"role": "user", "content": [{"text": "What is the capital of France?"}]},
            {"role": "assistant", "content": [{"text": "Paris."}]},
            {"role": "user", "content": [{"text": "And of Spain?"}, {"text": "One word."}]},
        ],
        "system": [{"text": "You are a helpful chatbot."}],
        "inferenceConfig": {"maxTokens": 64, "temperature": 0.2},
    }
    assert sent.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert "/us-east-1/bedrock/aws4_request" in sent.headers["authorization"]
    assert sent.headers["amz-sdk-request"].startswith("attempt=1")
    assert "iam" not in str(sent.headers).replace("aws4_request", "")  # the token is not a key


async def test_system_messages_join_the_system_blocks(fake: BedrockFake, runtime: ProviderRuntime) -> None:
    request = ChatRequest(
        messages=(ChatMessage(ChatRole.SYSTEM, "Be brief."), ChatMessage(ChatRole.USER, "Hi")),
    )
    await bedrock_adapter(target(), runtime).complete(request)
    assert fake.requests[0].body == {
        "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
        "system": [{"text": "Be brief."}],
    }


async def test_region_setting_wins_over_the_runtime_default(
    fake: BedrockFake, runtime: ProviderRuntime
) -> None:
    await bedrock_adapter(target(settings={"region": "eu-central-1"}), runtime).complete(REQUEST)
    assert "/eu-central-1/bedrock/aws4_request" in fake.requests[0].headers["authorization"]


async def test_model_id_from_provider_model_id_is_percent_encoded_on_the_wire(
    fake: BedrockFake, runtime: ProviderRuntime
) -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-v1:0"
    await bedrock_adapter(target(model_url=None, provider_model_id=arn), runtime).complete(REQUEST)
    assert fake.requests[0].model_id == arn


async def test_clients_are_shared_per_region_and_closed_with_the_runtime(
    fake: BedrockFake, runtime: ProviderRuntime
) -> None:
    clients = bedrock_clients(runtime)
    await bedrock_adapter(target(), runtime).complete(REQUEST)
    await bedrock_adapter(target(), runtime).complete(REQUEST)
    assert await clients.client("us-east-1") is await clients.client("us-east-1")
    assert await clients.client("eu-west-1") is not await clients.client("us-east-1")
    await runtime.close()
    assert bedrock_clients(runtime) is not clients


@pytest.mark.parametrize("write_size", [None, 1, 7, 37])
async def test_converse_stream(fake: BedrockFake, runtime: ProviderRuntime, write_size: int | None) -> None:
    fake.write_size = write_size
    events = await collect(bedrock_adapter(target(), runtime).stream(REQUEST))

    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == 3
    assert "".join(deltas) == fake.reply
    assert events[-2:] == [UsageUpdate(Usage(11, 7)), Finished(FinishReason.STOP)]
    assert fake.requests[0].operation == "converse-stream"
    assert fake.requests[0].body["inferenceConfig"] == {"maxTokens": 64, "temperature": 0.2}


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", FinishReason.STOP),
        ("stop_sequence", FinishReason.STOP),
        ("max_tokens", FinishReason.LENGTH),
        ("content_filtered", FinishReason.CONTENT_FILTER),
        ("guardrail_intervened", FinishReason.CONTENT_FILTER),
        ("tool_use", FinishReason.TOOL_CALLS),
    ],
)
async def test_stop_reasons(
    fake: BedrockFake, runtime: ProviderRuntime, stop_reason: str, finish: FinishReason
) -> None:
    fake.stop_reason = stop_reason
    adapter = bedrock_adapter(target(), runtime)
    assert (await adapter.complete(REQUEST)).finish_reason is finish
    assert (await collect(adapter.stream(REQUEST)))[-1] == Finished(finish)


async def test_content_filter_switch(fake: BedrockFake, runtime: ProviderRuntime) -> None:
    fake.content_filter()
    events = await collect(bedrock_adapter(target(), runtime).stream(REQUEST))
    assert events[-1] == Finished(FinishReason.CONTENT_FILTER)


async def test_titan_embeddings(fake: BedrockFake, runtime: ProviderRuntime) -> None:
    embedder = target(model_url="bedrock://amazon.titan-embed-text-v2:0", model_group=ModelGroup.EMBEDDING)
    result = await bedrock_adapter(embedder, runtime).embed(EmbedRequest(("hello world", "bye")))

    assert result.vectors == [titan_vector("hello world"), titan_vector("bye")]
    assert result.usage == Usage(input_tokens=3)
    assert sorted(r.body["inputText"] for r in fake.requests) == ["bye", "hello world"]
    assert {(r.operation, r.model_id) for r in fake.requests} == {("invoke", "amazon.titan-embed-text-v2:0")}
