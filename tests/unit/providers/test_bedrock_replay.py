"""Real recorded Bedrock Converse tool-use traffic (tests/recordings/bedrock, see its README and
index.json) served by the fake bedrock-runtime, the event stream also cut at odd chunk boundaries,
through botocore and the Bedrock adapter."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.domain.calls import (
    ChatMessage,
    Finished,
    ToolCall,
    ToolCallDelta,
    ToolCallDone,
    ToolDefinition,
    Usage,
)
from app.domain.credentials import Credentials
from app.domain.enums import ChatRole, FinishReason, Provider
from app.providers.base import ChatRequest, ProviderAdapter, ProviderTarget
from app.providers.bedrock import bedrock_adapter
from app.providers.runtime import ProviderRuntime
from tests.fakes.bedrock_server import BedrockFake, bedrock_fake, use_fake_aws
from tests.fakes.common import RawReply
from tests.support.streams import collect, last_usage, text_of

RECORDINGS = Path(__file__).resolve().parents[2] / "recordings" / "bedrock"


def city_tool(name: str, parameter: str) -> ToolDefinition:
    schema = {"type": "object", "properties": {parameter: {"type": "string"}}, "required": [parameter]}
    return ToolDefinition(name, None, schema)


REQUEST = ChatRequest(
    messages=(ChatMessage(ChatRole.USER, "What is the temperature of the capital of France?"),),
    system_prompt="You are a helpful assistant.",
    tools=(city_tool("get_capital", "country"), city_tool("get_temperature", "city")),
)


def recording_index() -> dict[str, dict[str, Any]]:
    entries = json.loads((RECORDINGS / "index.json").read_text())
    return {entry["file"]: entry for entry in entries}


def serve(fake: BedrockFake, name: str) -> dict[str, Any]:
    entry = recording_index()[name]
    body = (RECORDINGS / name).read_bytes()
    assert len(body) == entry["bytes"]
    fake.raw = RawReply(200, {"content-type": entry["response"]["content_type"]}, body)
    return entry


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[BedrockFake]:
    async with bedrock_fake() as fake:
        use_fake_aws(monkeypatch, fake.url, tmp_path)
        yield fake


@pytest.fixture
def adapter(fake: BedrockFake, runtime: ProviderRuntime) -> ProviderAdapter:
    target = ProviderTarget(
        provider=Provider.AWS_BEDROCK,
        provider_model_id="amazon.nova-micro-v1:0",
        credentials=Credentials(token="iam", platform_identity=True),
    )
    return bedrock_adapter(target, runtime)


def test_every_recording_is_covered() -> None:
    assert set(recording_index()) == {"converse-stream-tool-use.eventstream", "converse-tool-use.json"}


@pytest.mark.parametrize("write_size", [None, 1, 7, 37])
async def test_recorded_stream_with_a_tool_call(
    fake: BedrockFake, adapter: ProviderAdapter, write_size: int | None
) -> None:
    expected = serve(fake, "converse-stream-tool-use.eventstream")["expected"]
    fake.write_size = write_size

    events = await collect(adapter.stream(REQUEST))

    assert text_of(events) == expected["text"]
    [recorded] = expected["tool_calls"]
    # The tool use is content block 1, after the text; it is the answer's first call.
    assert next(e for e in events if isinstance(e, ToolCallDelta)) == ToolCallDelta(
        0, id=recorded["toolUseId"], name=recorded["name"]
    )
    [done] = [e for e in events if isinstance(e, ToolCallDone)]
    assert (done.index, done.call.id, done.call.name) == (0, "tooluse_QjQX34XORLu0wJVplWWHGQ", "get_capital")
    assert json.loads(done.call.arguments) == recorded["input"] == {"country": "France"}
    assert last_usage(events) == Usage(489, 59)
    assert events[-1] == Finished(FinishReason.TOOL_CALLS)
    assert fake.requests[0].body["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_capital"


async def test_recorded_answer_with_reasoning_and_a_tool_call(
    fake: BedrockFake, adapter: ProviderAdapter
) -> None:
    expected = serve(fake, "converse-tool-use.json")["expected"]

    completion = await adapter.complete(REQUEST)

    assert completion.text == ""  # the reasoning is not part of the answer
    assert completion.tool_calls == (
        ToolCall("functions.get_temperature:0", "get_temperature", '{"city":"London"}'),
    )
    assert json.loads(completion.tool_calls[0].arguments) == expected["tool_calls"][0]["input"]
    assert completion.finish_reason is FinishReason.TOOL_CALLS
    assert completion.usage == Usage(92, 75)
