"""Real recorded Gemini function-calling traffic (tests/recordings/gemini, see its README and index.json)
served byte for byte by the fake, also cut at odd chunk boundaries, through the Gemini adapter: a
streamed function call with a thought signature, and the answer after its function response."""

from __future__ import annotations

import base64
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
from app.providers.gemini import google_adapter
from app.providers.gemini_messages import SIGNATURE_SEPARATOR
from app.providers.runtime import ProviderRuntime
from tests.fakes.common import RawReply
from tests.fakes.google_server import API_KEY, GoogleFake, google_fake
from tests.support.streams import collect, last_usage, text_of

RECORDINGS = Path(__file__).resolve().parents[2] / "recordings" / "gemini"
GET_COUNTRY = ToolDefinition(
    name="get_country",
    description="",
    parameters={"additionalProperties": False, "properties": {}, "type": "object"},
)
QUESTION = ChatMessage(ChatRole.USER, "What is the capital of the user country? Call the tool")


def recording_index() -> dict[str, dict[str, Any]]:
    return {entry["file"]: entry for entry in json.loads((RECORDINGS / "index.json").read_text())}


def replay(fake: GoogleFake, name: str, write_size: int | None) -> dict[str, Any]:
    entry = recording_index()[name]
    body = (RECORDINGS / name).read_bytes()
    assert len(body) == entry["bytes"]
    fake.raw = RawReply(200, {"content-type": entry["response"]["content_type"]}, body)
    fake.write_size = write_size
    return entry


@pytest.fixture
async def fake() -> AsyncIterator[GoogleFake]:
    async with google_fake() as fake:
        yield fake


@pytest.fixture
def adapter(fake: GoogleFake, runtime: ProviderRuntime) -> ProviderAdapter:
    target = ProviderTarget(
        provider=Provider.GOOGLE_GENAI,
        provider_model_id="gemini-3-pro-preview",
        model_url=fake.url,
        credentials=Credentials(token=API_KEY),
    )
    return google_adapter(target, runtime)


def test_every_recording_is_covered() -> None:
    assert set(recording_index()) == {"function-call-stream.sse", "function-response-stream.sse"}


@pytest.mark.parametrize("write_size", [None, 1, 7, 37])
async def test_recorded_function_call_stream(
    fake: GoogleFake, adapter: ProviderAdapter, write_size: int | None
) -> None:
    entry = replay(fake, "function-call-stream.sse", write_size)

    events = await collect(adapter.stream(ChatRequest(messages=(QUESTION,), tools=(GET_COUNTRY,))))

    [delta] = [e for e in events if isinstance(e, ToolCallDelta)]
    [done] = [e for e in events if isinstance(e, ToolCallDone)]
    [expected] = entry["expected"]["function_calls"]
    assert (delta.index, delta.name, json.loads(delta.arguments)) == (0, expected["name"], expected["args"])
    assert done == ToolCallDone(0, ToolCall(delta.id or "", "get_country", "{}"))
    # No id from Gemini: a generated one, with the call's thought signature after it.
    call_id, _, signature = done.call.id.partition(SIGNATURE_SEPARATOR)
    assert call_id.startswith("call_")
    assert base64.b64decode(signature, validate=True)
    assert text_of(events) == ""
    usage = entry["expected"]["usage"]
    assert last_usage(events) == Usage(
        usage["promptTokenCount"], usage["candidatesTokenCount"] + usage["thoughtsTokenCount"]
    )
    assert events[-1] == Finished(FinishReason.TOOL_CALLS)
    # What was sent is what the recorded request sent (the declaration in lowerCamel).
    recorded = entry["request"]["body"]
    [declared] = recorded["tools"][0]["functionDeclarations"]
    [sent] = fake.requests
    assert sent.body["contents"] == recorded["contents"]
    assert sent.body["tools"] == [
        {
            "functionDeclarations": [
                {"name": declared["name"], "parametersJsonSchema": declared["parameters_json_schema"]}
            ]
        }
    ]


@pytest.mark.parametrize("write_size", [None, 1, 7, 37])
async def test_recorded_answer_after_the_function_response(
    fake: GoogleFake, adapter: ProviderAdapter, write_size: int | None
) -> None:
    # The recorded call, as the previous replay reads it, answered as the recorded request was.
    call = ToolCall("call_recorded_0" + SIGNATURE_SEPARATOR + "c2lnbmF0dXJl", "get_country", "{}")
    request = ChatRequest(
        messages=(
            QUESTION,
            ChatMessage(ChatRole.ASSISTANT, tool_calls=(call,)),
            ChatMessage(ChatRole.TOOL, '{"return_value": "Mexico"}', tool_call_id=call.id),
        ),
        tools=(GET_COUNTRY,),
    )
    entry = replay(fake, "function-response-stream.sse", write_size)

    events = await collect(adapter.stream(request))

    assert text_of(events) == entry["expected"]["text"] == "The capital of Mexico is Mexico City."
    assert [e for e in events if isinstance(e, ToolCallDelta | ToolCallDone)] == []
    assert last_usage(events) == Usage(165, 8)
    assert events[-1] == Finished(FinishReason.STOP)
    [sent] = fake.requests
    assert sent.body["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "get_country", "args": {}},
                    "thoughtSignature": "c2lnbmF0dXJl",
                }
            ],
        },
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "get_country", "response": {"return_value": "Mexico"}}}],
        },
    ]
