"""The OpenAI Responses API adapter against the fake: request shape (`instructions`, `input`,
`max_output_tokens`), named SSE events, terminal events and what they mean."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.domain.calls import Finished, ProviderError, ProviderErrorCode, TextDelta, Usage, UsageUpdate
from app.domain.enums import ApiType, FinishReason, Provider
from app.providers.base import ChatRequest
from app.providers.openai_family import openai_family_adapter
from app.providers.openai_responses import OpenAIResponsesAdapter
from app.providers.runtime import ProviderRuntime
from tests.fakes.openai_server import CHAT, TOKEN, OpenAIFake, make_target
from tests.support.streams import collect_result


def responses(fake: OpenAIFake, runtime: ProviderRuntime) -> OpenAIResponsesAdapter:
    target = make_target(Provider.OPENAI, f"{fake.url}/v1", model="gpt-4.1", api_type=ApiType.RESPONSES)
    adapter = openai_family_adapter(target, runtime)
    assert isinstance(adapter, OpenAIResponsesAdapter)
    return adapter


EXPECTED_BODY = {
    "model": "gpt-4.1",
    "input": [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Spain?"},
    ],
    "store": False,
    "instructions": "You are terse.",
    "temperature": 0.2,
    "max_output_tokens": 64,
}


async def test_complete(openai_fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    completion = await responses(openai_fake, runtime).complete(CHAT)

    assert completion.text == "Hello from the fake OpenAI server."
    assert completion.finish_reason is FinishReason.STOP
    assert completion.usage == Usage(12, 4)
    [request] = openai_fake.requests
    assert request.path == "/v1/responses"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.body == EXPECTED_BODY


async def test_stream(openai_fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    result = await collect_result(responses(openai_fake, runtime).stream(CHAT))

    assert result.events == [
        TextDelta("Hello fro"),
        TextDelta("m the fak"),
        TextDelta("e OpenAI "),
        TextDelta("server."),
        UsageUpdate(Usage(12, 4)),
        Finished(FinishReason.STOP),
    ]
    assert openai_fake.requests[0].body == {**EXPECTED_BODY, "stream": True}


@pytest.mark.parametrize(
    ("switches", "max_tokens", "finish", "text"),
    [
        ({}, 2, FinishReason.LENGTH, "Hello from the fak"),
        ({"content_filter": True}, None, FinishReason.CONTENT_FILTER, "Hello fro"),
    ],
)
async def test_incomplete_responses(
    openai_fake: OpenAIFake,
    runtime: ProviderRuntime,
    switches: dict[str, object],
    max_tokens: int | None,
    finish: FinishReason,
    text: str,
) -> None:
    for name, value in switches.items():
        setattr(openai_fake, name, value)
    request = ChatRequest(messages=CHAT.messages, max_tokens=max_tokens)
    adapter = responses(openai_fake, runtime)
    completion = await adapter.complete(request)
    streamed = await collect_result(adapter.stream(request))
    assert (completion.text, completion.finish_reason) == (text, finish)
    assert (streamed.text, streamed.finish) == (text, finish)
    assert streamed.usage == completion.usage


async def test_failed_response(openai_fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    openai_fake.response_failed = True
    adapter = responses(openai_fake, runtime)
    with pytest.raises(ProviderError) as caught:
        await adapter.complete(CHAT)
    streamed = await collect_result(adapter.stream(CHAT))
    for failure in (caught.value, streamed.error):
        assert failure is not None
        assert failure.code is ProviderErrorCode.UPSTREAM_ERROR
        assert failure.retryable is True
        assert "failed to generate" in failure.message


def frame(data: dict[str, Any]) -> bytes:
    return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()


async def test_recorded_event_sequence(openai_fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    """The real sequence from the reference (§1.2), with fields the adapter must ignore."""
    item = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    usage = {"input_tokens": 21, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 3}
    openai_fake.raw = b"".join(
        frame({"sequence_number": n, **event})
        for n, event in enumerate(
            [
                {
                    "type": "response.created",
                    "response": {"status": "in_progress", "usage": None, "output": []},
                },
                {"type": "response.in_progress", "response": {"status": "in_progress"}},
                {"type": "response.output_item.added", "item": {"id": "msg_1", "type": "message"}},
                {"type": "response.content_part.added", **item, "part": {"type": "output_text", "text": ""}},
                {
                    "type": "response.output_text.delta",
                    **item,
                    "delta": "stream",
                    "obfuscation": "fyy9Vfz7II",
                },
                {"type": "response.output_text.delta", **item, "delta": "ed", "logprobs": []},
                {"type": "response.output_text.done", **item, "text": "streamed"},
                {"type": "response.content_part.done", **item, "part": {"type": "output_text"}},
                {"type": "response.output_item.done", "item": {"id": "msg_1", "type": "message"}},
                {"type": "response.completed", "response": {"status": "completed", "usage": usage}},
            ]
        )
    )
    result = await collect_result(responses(openai_fake, runtime).stream(CHAT))
    assert (result.text, result.finish, result.usage) == ("streamed", FinishReason.STOP, Usage(21, 3))


async def test_error_event(openai_fake: OpenAIFake, runtime: ProviderRuntime) -> None:
    openai_fake.raw = frame(
        {
            "type": "error",
            "code": "context_length_exceeded",
            "message": "Your input exceeds the context window",
        }
    )
    result = await collect_result(responses(openai_fake, runtime).stream(CHAT))
    assert result.error is not None
    assert result.error.code is ProviderErrorCode.CONTEXT_TOO_LONG


@pytest.mark.parametrize(
    ("output", "text", "finish"),
    [
        (
            [
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {
                    "type": "message",
                    "content": [
                        {"type": "output_text", "text": "Two "},
                        {"type": "output_text", "text": "parts."},
                    ],
                },
            ],
            "Two parts.",
            FinishReason.STOP,
        ),
        (
            [{"type": "message", "content": [{"type": "refusal", "refusal": "I can't."}]}],
            "I can't.",
            FinishReason.STOP,
        ),
        (
            [{"type": "function_call", "name": "get_weather", "arguments": "{}", "call_id": "c1"}],
            "",
            FinishReason.TOOL_CALLS,
        ),
    ],
)
async def test_output_items(
    openai_fake: OpenAIFake,
    runtime: ProviderRuntime,
    output: list[Any],
    text: str,
    finish: FinishReason,
) -> None:
    openai_fake.raw = json.dumps(
        {"object": "response", "status": "completed", "error": None, "output": output, "usage": None}
    ).encode()
    completion = await responses(openai_fake, runtime).complete(CHAT)
    assert (completion.text, completion.finish_reason, completion.usage) == (text, finish, Usage())
