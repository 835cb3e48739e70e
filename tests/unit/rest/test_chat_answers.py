"""Answers of /v1/chat/completions with tool calls, read by the official SDK's own code: the answer
message (content null when only tool calls), and the stream's chunks fed to the accumulator behind
`client.chat.completions.stream(...)` — the first chunk of each call with its id, type and name,
then argument pieces, in order, also when parallel calls interleave."""

from __future__ import annotations

from typing import Any

import openai
import orjson
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import BaseModel

from app.domain.calls import TextDelta, ToolCall, ToolCallDelta, ToolCallDone
from app.domain.enums import FinishReason
from app.rest.chat import assistant_message
from app.rest.streaming import ChatChunks
from tests.support.sdk_models import Forecast, GetWeather

WEATHER = ToolCall("call_1", "GetWeather", '{"city":"Paris","unit":"c"}')
TIME = ToolCall("call_2", "GetTime", '{"zone":"CET"}')


class GetTime(BaseModel):
    zone: str


def completion(message: dict[str, Any], finish: str) -> ChatCompletion:
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
    body = {"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": [choice]}
    return ChatCompletion.model_validate(body)


def test_an_answer_of_only_tool_calls_has_null_content() -> None:
    message = completion(assistant_message("", (WEATHER, TIME)), "tool_calls").choices[0].message
    assert message.content is None
    calls = [c for c in message.tool_calls or [] if c.type == "function"]
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("call_1", "GetWeather", WEATHER.arguments),
        ("call_2", "GetTime", TIME.arguments),
    ]
    assert len(calls) == 2


def test_text_answers_keep_their_content_and_have_no_tool_calls() -> None:
    assert assistant_message("", ()) == {"role": "assistant", "content": "", "refusal": None}
    with_calls = assistant_message("Let me look.", (WEATHER,))
    assert with_calls["content"] == "Let me look."
    assert len(with_calls["tool_calls"]) == 1


def frames_of(data: bytes) -> list[dict[str, Any]]:
    frames = [f for f in data.split(b"\n\n") if f]
    assert all(f.startswith(b"data: ") for f in frames)
    return [orjson.loads(f.removeprefix(b"data: ")) for f in frames]


def streamed(
    events: list[Any], finish: FinishReason, state: ChatCompletionStreamState[Any]
) -> list[dict[str, Any]]:
    chunks = ChatChunks("chatcmpl-1", 1, "m", include_usage=False)
    data = b""
    for event in events:
        data += chunks.text(event.text) if isinstance(event, TextDelta) else chunks.tool_call(event)
    data += chunks.finish(finish)
    frames = frames_of(data)
    for body in frames:
        list(state.handle_chunk(ChatCompletionChunk.model_validate(body)))
    return frames


def deltas(call: ToolCall, index: int, pieces: int = 3) -> list[ToolCallDelta]:
    size = -(-len(call.arguments) // pieces)
    parts = [call.arguments[i : i + size] for i in range(0, len(call.arguments), size)]
    return [
        ToolCallDelta(index, parts[0], call.id, call.name),
        *(ToolCallDelta(index, p) for p in parts[1:]),
    ]


def test_streamed_parallel_calls_accumulate_in_the_sdk() -> None:
    first, second = deltas(WEATHER, 0), deltas(TIME, 1)
    interleaved = [d for pair in zip(first, second, strict=True) for d in pair]
    events = [*interleaved, ToolCallDone(0, WEATHER), ToolCallDone(1, TIME)]
    tools = [openai.pydantic_function_tool(GetWeather), openai.pydantic_function_tool(GetTime)]
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState(input_tools=tools)
    frames = streamed(events, FinishReason.TOOL_CALLS, state)

    head = frames[0]["choices"][0]["delta"]
    assert head == {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [
            {
                "index": 0,
                "id": "call_1",
                "type": "function",
                "function": {"name": "GetWeather", "arguments": ""},
            }
        ],
    }
    pieces = [d for f in frames[1:] for d in f["choices"][0]["delta"].get("tool_calls", [])]
    # the calls came interleaved; they leave one after the other, as OpenAI sends them
    assert [p["index"] for p in pieces] == [0, 0, 0, 1, 1, 1, 1]
    assert all(
        set(p) == {"index", "function"} and set(p["function"]) == {"arguments"}
        for p in pieces
        if "id" not in p
    )
    assert frames[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "tool_calls",
    }

    final = state.get_final_completion().choices[0]
    assert final.finish_reason == "tool_calls"
    assert final.message.content is None
    calls = final.message.tool_calls or []
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("call_1", "GetWeather", WEATHER.arguments),
        ("call_2", "GetTime", TIME.arguments),
    ]
    # strict pydantic tools: the SDK parses the arguments into the model
    assert calls[0].function.parsed_arguments == GetWeather(city="Paris", unit="c")
    assert calls[1].function.parsed_arguments == GetTime(zone="CET")


def test_a_call_that_arrives_whole_is_sent_as_its_head_and_its_arguments() -> None:
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    frames = streamed([ToolCallDone(0, WEATHER)], FinishReason.TOOL_CALLS, state)
    assert len(frames) == 3  # head, arguments, finish
    (call,) = state.get_final_completion().choices[0].message.tool_calls or []
    assert (call.id, call.function.name, call.function.arguments) == (
        "call_1",
        "GetWeather",
        WEATHER.arguments,
    )


def test_a_text_stream_begins_with_the_role_and_empty_content() -> None:
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    frames = streamed([TextDelta("Hello"), TextDelta(" there")], FinishReason.STOP, state)
    assert frames[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    message = state.get_final_completion().choices[0].message
    assert (message.content, message.tool_calls) == ("Hello there", None)


def test_an_empty_answer_still_says_who_answers() -> None:
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    frames = streamed([], FinishReason.STOP, state)
    assert [f["choices"][0]["delta"] for f in frames] == [
        {"role": "assistant", "content": "", "refusal": None},
        {},
    ]


def test_streamed_json_is_parsed_into_the_response_format() -> None:
    state: ChatCompletionStreamState[Forecast] = ChatCompletionStreamState(response_format=Forecast)
    streamed([TextDelta('{"city":"Par'), TextDelta('is","degrees":18.5}')], FinishReason.STOP, state)
    assert state.get_final_completion().choices[0].message.parsed == Forecast(city="Paris", degrees=18.5)
