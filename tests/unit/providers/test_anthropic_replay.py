"""Real recorded Anthropic traffic (tests/recordings/anthropic, see its README and index.json) served
byte for byte by the fake, also cut at odd chunk boundaries, through the Anthropic adapter."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.domain.calls import (
    ChatMessage,
    Finished,
    ProviderError,
    ProviderErrorCode,
    StreamFailed,
    ToolCall,
    ToolCallDone,
    ToolDefinition,
    Usage,
)
from app.domain.credentials import Credentials
from app.domain.enums import ChatRole, FinishReason, Provider
from app.providers.anthropic import anthropic_adapter
from app.providers.base import ChatRequest, ProviderAdapter, ProviderTarget
from app.providers.runtime import ProviderRuntime
from tests.fakes.anthropic_server import API_KEY, AnthropicFake, anthropic_fake
from tests.fakes.common import RawReply
from tests.support.streams import collect, last_usage, text_of

RECORDINGS = Path(__file__).resolve().parents[2] / "recordings" / "anthropic"
REQUEST = ChatRequest(
    messages=(ChatMessage(ChatRole.USER, "Extract order IDs from the following text:\n\nOrder 12345"),),
    max_tokens=1024,
)
TOOL_REQUEST = ChatRequest(
    messages=(ChatMessage(ChatRole.USER, "What's the weather in SF?"),),
    tools=(
        ToolDefinition(
            "get_weather",
            "Lookup the weather for a given city in either celsius or fahrenheit",
            {
                "type": "object",
                "properties": {
                    "location": {"type": "string"},
                    "units": {"type": "string", "enum": ["c", "f"]},
                },
                "required": ["location", "units"],
            },
        ),
    ),
)


def recording_index() -> dict[str, dict[str, Any]]:
    entries = json.loads((RECORDINGS / "index.json").read_text())
    return {entry["file"]: entry for entry in entries}


def recorded_errors(name: str) -> list[RawReply]:
    data = json.loads((RECORDINGS / name).read_text())
    return [
        RawReply(item["status"], item["headers"], item["body_raw"].encode())
        for item in (data if isinstance(data, list) else [data])
    ]


@pytest.fixture
async def fake() -> AsyncIterator[AnthropicFake]:
    async with anthropic_fake() as fake:
        yield fake


@pytest.fixture
def adapter(fake: AnthropicFake, runtime: ProviderRuntime) -> ProviderAdapter:
    target = ProviderTarget(
        provider=Provider.ANTHROPIC,
        provider_model_id="claude-sonnet-4-5",
        model_url=fake.url,
        credentials=Credentials(token=API_KEY),
    )
    return anthropic_adapter(target, runtime)


def test_every_recording_is_covered() -> None:
    assert set(recording_index()) == {
        "stream.sse",
        "message.json",
        "rate-limit-429.json",
        "invalid-request-400.json",
        "tool-use-stream.sse",
        "tool-result-stream.sse",
    }


@pytest.mark.parametrize("write_size", [None, 1, 7, 37])
async def test_recorded_stream(fake: AnthropicFake, adapter: ProviderAdapter, write_size: int | None) -> None:
    entry = recording_index()["stream.sse"]
    body = (RECORDINGS / "stream.sse").read_bytes()
    assert len(body) == entry["bytes"]
    fake.raw = RawReply(200, entry["response"]["headers"], body)
    fake.write_size = write_size

    events = await collect(adapter.stream(REQUEST))

    assert text_of(events) == entry["expected"]["text"]
    assert entry["expected"]["text"] == "[12345,67890]"
    assert last_usage(events) == Usage(135, 10)
    assert events[-1] == Finished(FinishReason.STOP)


def serve_stream(fake: AnthropicFake, name: str, write_size: int | None) -> dict[str, Any]:
    """Serves the recorded stream `name` (its type is the API's: the recording kept bodies only)."""
    entry = recording_index()[name]
    body = (RECORDINGS / name).read_bytes()
    assert len(body) == entry["bytes"]
    fake.raw = RawReply(200, {"content-type": "text/event-stream; charset=utf-8"}, body)
    fake.write_size = write_size
    return entry


@pytest.mark.parametrize("write_size", [None, 1, 7, 37])
async def test_recorded_parallel_tool_calls(
    fake: AnthropicFake, adapter: ProviderAdapter, write_size: int | None
) -> None:
    expected = serve_stream(fake, "tool-use-stream.sse", write_size)["expected"]

    events = await collect(adapter.stream(TOOL_REQUEST))

    assert text_of(events) == expected["text"]
    done = [e for e in events if isinstance(e, ToolCallDone)]
    assert [(d.index, d.call.id, d.call.name) for d in done] == [
        (0, "toolu_01QYZ2sgjBq1oG8iryEt8QjR", "get_weather"),
        (1, "toolu_01Lu9hbRKgrZqvHFutZxCNnZ", "get_weather"),
    ]
    assert [json.loads(d.call.arguments) for d in done] == [call["input"] for call in expected["tool_calls"]]
    assert last_usage(events) == Usage(473, 176)
    assert events[-1] == Finished(FinishReason.TOOL_CALLS)


@pytest.mark.parametrize("write_size", [None, 7])
async def test_recorded_answer_to_tool_results(
    fake: AnthropicFake, adapter: ProviderAdapter, write_size: int | None
) -> None:
    expected = serve_stream(fake, "tool-result-stream.sse", write_size)["expected"]
    calls = (
        ToolCall(
            "toolu_01QYZ2sgjBq1oG8iryEt8QjR", "get_weather", '{"location":"San Francisco, CA","units":"c"}'
        ),
        ToolCall(
            "toolu_01Lu9hbRKgrZqvHFutZxCNnZ", "get_weather", '{"location":"San Francisco, CA","units":"f"}'
        ),
    )
    sunny = "The weather in San Francisco, CA is currently sunny with a temperature of {}."
    request = ChatRequest(
        messages=(
            *TOOL_REQUEST.messages,
            ChatMessage(ChatRole.ASSISTANT, "I'll check.", tool_calls=calls),
            ChatMessage(ChatRole.TOOL, sunny.format("20°C"), tool_call_id=calls[0].id),
            ChatMessage(ChatRole.TOOL, sunny.format("68°F"), tool_call_id=calls[1].id),
        ),
        tools=TOOL_REQUEST.tools,
    )

    events = await collect(adapter.stream(request))

    assert text_of(events) == expected["text"]
    assert not [e for e in events if isinstance(e, ToolCallDone)]
    assert last_usage(events) == Usage(767, 27)
    assert events[-1] == Finished(FinishReason.STOP)
    [sent] = fake.requests
    assert [block["type"] for block in sent.body["messages"][-1]["content"]] == ["tool_result", "tool_result"]


async def test_recorded_message(fake: AnthropicFake, adapter: ProviderAdapter) -> None:
    entry = recording_index()["message.json"]
    fake.raw = RawReply(200, entry["response"]["headers"], (RECORDINGS / "message.json").read_bytes())

    completion = await adapter.complete(REQUEST)

    assert completion.text == entry["expected"]["text"]
    assert completion.text == '{"product_name": "Green Tea", "price": 5.50, "quantity": 2}'
    assert completion.finish_reason == FinishReason.STOP
    assert completion.usage == Usage(249, 26)


@pytest.mark.parametrize(
    ("name", "code", "retryable", "status"),
    [
        ("rate-limit-429.json", ProviderErrorCode.RATE_LIMITED, True, 429),
        ("invalid-request-400.json", ProviderErrorCode.BAD_REQUEST, False, 400),
    ],
)
async def test_recorded_errors(
    fake: AnthropicFake,
    adapter: ProviderAdapter,
    name: str,
    code: ProviderErrorCode,
    retryable: bool,
    status: int,
) -> None:
    for reply in recorded_errors(name):
        assert len(reply.body) == int(reply.headers["content-length"])
        fake.raw = reply

        with pytest.raises(ProviderError) as raised:
            await adapter.complete(REQUEST)
        [streamed] = await collect(adapter.stream(REQUEST))

        assert isinstance(streamed, StreamFailed)
        for error in (raised.value, streamed.error):
            assert (error.code, error.retryable, error.status) == (code, retryable, status)
            assert error.retry_after is None  # the recorder kept no retry-after header
            assert "req_" not in error.message
