"""The streamed Responses API answer, read by the official SDK's own accumulator (the one behind
`client.responses.stream`): text, then parallel tool calls whose pieces interleave, a call that
arrives whole, and the final response object."""

from __future__ import annotations

from typing import Any

import openai
import orjson
from openai._models import construct_type
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent

from app.domain.calls import ToolCall, ToolCallDelta, ToolCallDone, Usage
from app.domain.enums import FinishReason
from app.rest.responses_output import ResponseEvents
from tests.support.sdk_models import GetWeather

BASE = {"id": "resp_1", "object": "response", "created_at": 1, "model": "m", "error": None, "tools": []}
PARIS = ToolCall("c1", "GetWeather", '{"city":"Paris","unit":"c"}')
ROME = ToolCall("c2", "GetWeather", '{"city":"Rome","unit":"c"}')


def events_of(data: bytes) -> list[dict[str, Any]]:
    found = []
    for block in filter(None, data.split(b"\n\n")):
        name, body = block.split(b"\n")
        event = orjson.loads(body.removeprefix(b"data: "))
        assert name == b"event: " + event["type"].encode()
        found.append(event)
    return found


def test_text_then_interleaved_parallel_calls() -> None:
    events = events_of(_answer_bytes())
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    assert events[-1]["type"] == "response.completed"
    final = events[-1]["response"]
    assert final["usage"]["total_tokens"] == 12
    message, paris, rome = final["output"]
    assert message["content"][0]["text"] == "Let me look."
    assert [(c["call_id"], c["arguments"], c["status"]) for c in (paris, rome)] == [
        ("c1", PARIS.arguments, "completed"),
        ("c2", ROME.arguments, "completed"),
    ]


def test_the_sdk_accumulates_the_same_answer() -> None:
    events = events_of(_answer_bytes())
    state: ResponseStreamState[Any] = ResponseStreamState(
        input_tools=[openai.pydantic_responses_function_tool(GetWeather)], text_format=openai.omit
    )
    for event in events:
        state.handle_event(construct_type(type_=ResponseStreamEvent, value=event))  # type: ignore[arg-type]
    snapshot = state._completed_response  # what the stream's get_final_response() returns
    assert snapshot is not None
    message, paris, rome = snapshot.output
    assert message.type == "message"
    assert paris.type == "function_call"
    assert rome.type == "function_call"
    assert (paris.arguments, rome.arguments) == (PARIS.arguments, ROME.arguments)
    assert paris.parsed_arguments == GetWeather(city="Paris", unit="c")
    assert snapshot.output_text == "Let me look."


def _answer_bytes() -> bytes:
    frames = ResponseEvents(BASE, "r1")
    return (
        frames.start()
        + frames.text("Let me ")
        + frames.text("look.")
        + frames.tool_call(ToolCallDelta(0, PARIS.arguments[:10], PARIS.id, PARIS.name))
        + frames.tool_call(ToolCallDelta(1, ROME.arguments[:10], ROME.id, ROME.name))
        + frames.tool_call(ToolCallDelta(0, PARIS.arguments[10:]))
        + frames.tool_call(ToolCallDelta(1, ROME.arguments[10:]))
        + frames.tool_call(ToolCallDone(0, PARIS))
        + frames.tool_call(ToolCallDone(1, ROME))
        + frames.end(FinishReason.TOOL_CALLS, Usage(5, 7))
    )


def test_a_call_that_arrives_whole_and_an_empty_answer() -> None:
    frames = ResponseEvents(BASE, "r1")
    events = events_of(
        frames.start() + frames.tool_call(ToolCallDone(0, PARIS)) + frames.end(FinishReason.STOP, Usage())
    )
    (call,) = events[-1]["response"]["output"]
    assert (call["call_id"], call["arguments"]) == ("c1", PARIS.arguments)
    empty = ResponseEvents(BASE, "r2")
    events = events_of(empty.start() + empty.end(FinishReason.LENGTH, Usage()))
    assert events[-1]["type"] == "response.incomplete"
    (message,) = events[-1]["response"]["output"]
    assert (message["type"], message["status"], message["content"][0]["text"]) == (
        "message",
        "incomplete",
        "",
    )
