"""OpenAI Chat Completions, legacy completions and embeddings against the fake: what goes on the wire
(URL, auth, body) and what the adapters make of the answers, complete and streamed."""

from __future__ import annotations

import base64
import struct

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
from app.domain.enums import ApiType, ChatRole, FinishReason, ModelGroup, Provider
from app.providers.base import ChatRequest, EmbedRequest
from app.providers.openai_chat import OpenAIChatAdapter, OpenAICompletionsAdapter
from app.providers.openai_embeddings import OpenAIEmbeddingsAdapter
from app.providers.openai_family import openai_family_adapter
from app.providers.openai_responses import OpenAIResponsesAdapter
from app.providers.runtime import ProviderRuntime
from tests.fakes.openai_server import CHAT, TOKEN, OpenAIFake, embedding_for, make_target
from tests.support.streams import collect_result

REPLY = "Hello from the fake OpenAI server."
EXPECTED_MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Spain?"},
]


def chat(
    fake: OpenAIFake, runtime: ProviderRuntime, settings: dict[str, str] | None = None
) -> OpenAIChatAdapter:
    adapter = openai_family_adapter(
        make_target(Provider.OPENAI, f"{fake.url}/v1", settings=settings), runtime
    )
    assert isinstance(adapter, OpenAIChatAdapter)
    return adapter


async def test_complete(openai_fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    completion = await chat(openai_fake, runtime).complete(CHAT)

    assert completion.text == REPLY
    assert completion.finish_reason is FinishReason.STOP
    assert completion.usage == Usage(input_tokens=12, output_tokens=4)
    [request] = openai_fake.requests
    assert (request.method, request.path, request.query) == ("POST", "/v1/chat/completions", {})
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert request.body == {
        "model": "gpt-4o-mini",
        "messages": EXPECTED_MESSAGES,
        "temperature": 0.2,
        "max_completion_tokens": 64,
    }


async def test_stream(openai_fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    result = await collect_result(chat(openai_fake, runtime).stream(CHAT))

    assert result.events == [
        TextDelta("Hello fro"),
        TextDelta("m the fak"),
        TextDelta("e OpenAI "),
        TextDelta("server."),
        UsageUpdate(Usage(12, 4)),
        Finished(FinishReason.STOP),
    ]
    [request] = openai_fake.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["accept-encoding"] == "identity"  # UpstreamHttp hands over raw bytes
    assert request.body == {
        "model": "gpt-4o-mini",
        "messages": EXPECTED_MESSAGES,
        "temperature": 0.2,
        "max_completion_tokens": 64,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_minimal_request_sends_only_what_is_set(
    openai_fake: OpenAIFake, runtime: ProviderRuntime
) -> None:
    request = ChatRequest(messages=(ChatMessage(ChatRole.USER, "Hi"),))
    await chat(openai_fake, runtime, settings={"customModel": "ft:gpt-4o:acme::x1"}).complete(request)
    assert openai_fake.requests[0].body == {
        "model": "ft:gpt-4o:acme::x1",
        "messages": [{"role": "user", "content": "Hi"}],
    }


@pytest.mark.parametrize(
    ("switches", "finish", "text"),
    [
        ({"chunks": 4}, FinishReason.STOP, REPLY),
        ({"finish_reason": "tool_calls"}, FinishReason.TOOL_CALLS, REPLY),
        ({"content_filter": True}, FinishReason.CONTENT_FILTER, "Hello fro"),
    ],
)
async def test_finish_reasons(
    openai_fake: OpenAIFake,
    runtime: ProviderRuntime,
    switches: dict[str, object],
    finish: FinishReason,
    text: str,
) -> None:
    for name, value in switches.items():
        setattr(openai_fake, name, value)
    adapter = chat(openai_fake, runtime)
    completion = await adapter.complete(CHAT)
    streamed = await collect_result(adapter.stream(CHAT))
    assert (completion.text, completion.finish_reason) == (text, finish)
    assert (streamed.text, streamed.finish) == (text, finish)


async def test_max_tokens_cut_gives_length(openai_fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    request = ChatRequest(messages=CHAT.messages, max_tokens=2)
    adapter = chat(openai_fake, runtime)
    completion = await adapter.complete(request)
    streamed = await collect_result(adapter.stream(request))
    assert (completion.text, completion.finish_reason) == ("Hello from the fak", FinishReason.LENGTH)
    assert (streamed.text, streamed.finish, streamed.usage) == (
        "Hello from the fak",
        FinishReason.LENGTH,
        Usage(12, 2),
    )
    assert openai_fake.requests[0].body["max_completion_tokens"] == 2


async def test_completion_group_uses_legacy_completions(
    openai_fake: OpenAIFake, runtime: ProviderRuntime
) -> None:
    target = make_target(
        Provider.OPENAI, f"{openai_fake.url}/v1", model="gpt-3.5-turbo-instruct", group=ModelGroup.COMPLETION
    )
    adapter = openai_family_adapter(target, runtime)
    assert isinstance(adapter, OpenAICompletionsAdapter)

    completion = await adapter.complete(CHAT)
    streamed = await collect_result(adapter.stream(CHAT))

    assert (completion.text, completion.finish_reason, completion.usage) == (
        REPLY,
        FinishReason.STOP,
        Usage(12, 4),
    )
    assert (streamed.text, streamed.finish, streamed.usage) == (REPLY, FinishReason.STOP, Usage(12, 4))
    plain, stream = openai_fake.requests
    assert plain.path == stream.path == "/v1/completions"
    assert plain.body == {
        "model": "gpt-3.5-turbo-instruct",
        "prompt": CHAT.prompt_text(),
        "temperature": 0.2,
        "max_tokens": 64,
    }
    assert stream.body == {**plain.body, "stream": True, "stream_options": {"include_usage": True}}


def embedder(fake: OpenAIFake, runtime: ProviderRuntime) -> OpenAIEmbeddingsAdapter:
    target = make_target(
        Provider.OPENAI, f"{fake.url}/v1", model="text-embedding-3-small", group=ModelGroup.EMBEDDING
    )
    adapter = openai_family_adapter(target, runtime)
    assert isinstance(adapter, OpenAIEmbeddingsAdapter)
    return adapter


@pytest.mark.parametrize("reversed_order", [False, True])
async def test_embeddings_in_input_order(
    openai_fake: OpenAIFake, runtime: ProviderRuntime, reversed_order: bool
) -> None:
    openai_fake.embeddings_reversed = reversed_order
    texts = ("first text", "the second one", "3")
    result = await embedder(openai_fake, runtime).embed(EmbedRequest(texts))

    assert result.vectors == [embedding_for(t) for t in texts]
    assert result.usage == Usage(input_tokens=6, output_tokens=0)
    [request] = openai_fake.requests
    assert request.path == "/v1/embeddings"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.body == {"model": "text-embedding-3-small", "input": list(texts)}


async def test_base64_embeddings_are_decoded(openai_fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    packed = base64.b64encode(struct.pack("<3f", 0.5, -1.0, 2.25)).decode()
    openai_fake.raw = (
        b'{"object":"list","data":[{"object":"embedding","index":0,"embedding":"' + packed.encode() + b'"}],'
        b'"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}'
    )
    result = await embedder(openai_fake, runtime).embed(EmbedRequest(("x",)))
    assert result.vectors == [[0.5, -1.0, 2.25]]


async def test_embeddings_count_mismatch_is_malformed(
    openai_fake: OpenAIFake, runtime: ProviderRuntime
) -> None:
    openai_fake.raw = b'{"object":"list","data":[],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}'
    with pytest.raises(ProviderError) as caught:
        await embedder(openai_fake, runtime).embed(EmbedRequest(("x",)))
    assert caught.value.code is ProviderErrorCode.MALFORMED_RESPONSE


async def test_embedding_models_do_not_chat(openai_fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    adapter = embedder(openai_fake, runtime)
    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CHAT)
    streamed = await collect_result(adapter.stream(CHAT))
    assert caught.value.code is ProviderErrorCode.BAD_REQUEST
    assert streamed.error is not None
    assert streamed.error.code is ProviderErrorCode.BAD_REQUEST
    assert openai_fake.requests == []


async def test_chat_models_do_not_embed(openai_fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    with pytest.raises(ProviderError) as caught:
        await chat(openai_fake, runtime).embed(EmbedRequest(("x",)))
    assert caught.value.code is ProviderErrorCode.BAD_REQUEST


@pytest.mark.parametrize(
    ("group", "api_type", "adapter_type"),
    [
        (ModelGroup.CHAT, ApiType.CHAT_COMPLETION, OpenAIChatAdapter),
        (ModelGroup.CHAT, ApiType.RESPONSES, OpenAIResponsesAdapter),
        (ModelGroup.COMPLETION, ApiType.CHAT_COMPLETION, OpenAICompletionsAdapter),
        (ModelGroup.EMBEDDING, ApiType.CHAT_COMPLETION, OpenAIEmbeddingsAdapter),
    ],
)
async def test_factory_picks_the_wire_format(
    runtime: ProviderRuntime, group: ModelGroup, api_type: ApiType, adapter_type: type
) -> None:
    for provider in (Provider.OPENAI, Provider.AZURE_OPENAI, Provider.MISTRAL, Provider.OPENAI_COMPATIBLE):
        target = make_target(provider, "https://h.example/v1", group=group, api_type=api_type)
        assert type(openai_family_adapter(target, runtime)) is adapter_type
