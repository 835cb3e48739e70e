"""ECHO's demo of tools, images and structured output: it calls a tool (arguments from the tool's
schema, streamed in pieces), answers a tool's result by quoting it, answers JSON (schema-shaped),
and counts images, all deterministically and offline."""

from __future__ import annotations

import orjson

from app.domain.calls import (
    ChatMessage,
    Finished,
    ImagePart,
    ResponseFormat,
    ResponseFormatType,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolCallDone,
    ToolChoice,
    ToolChoiceMode,
    ToolDefinition,
)
from app.domain.enums import ChatRole, FinishReason, ModelGroup
from app.providers.base import ChatRequest
from app.providers.echo_answers import value_for
from app.providers.runtime import ProviderRuntime
from tests.support.streams import collect
from tests.unit.providers.test_echo import echo

WEATHER = ToolDefinition(
    "get_weather",
    "Current weather of a city",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
)
CLOCK = ToolDefinition("get_time", None, {"type": "object", "properties": {"zone": {"enum": ["UTC", "CET"]}}})
ASK = ChatMessage(ChatRole.USER, "weather in  Paris")


def with_tools(*messages: ChatMessage, **fields: object) -> ChatRequest:
    return ChatRequest(messages=messages or (ASK,), tools=(WEATHER, CLOCK), **fields)  # type: ignore[arg-type]


async def test_with_tools_it_calls_the_first_tool_with_arguments_from_its_schema(
    runtime: ProviderRuntime,
) -> None:
    completion = await echo(runtime).complete(with_tools())
    assert completion.finish_reason is FinishReason.TOOL_CALLS
    assert completion.text == ""
    (call,) = completion.tool_calls
    assert (call.id, call.name) == ("call_1", "get_weather")
    assert orjson.loads(call.arguments) == {"city": "weather in Paris", "days": 3}


async def test_a_named_tool_choice_calls_that_tool(runtime: ProviderRuntime) -> None:
    request = with_tools(tool_choice=ToolChoice(ToolChoiceMode.TOOL, "get_time"))
    (call,) = (await echo(runtime).complete(request)).tool_calls
    assert call.name == "get_time"
    assert orjson.loads(call.arguments) == {"zone": "UTC"}


async def test_tool_choice_none_answers_with_text(runtime: ProviderRuntime) -> None:
    completion = await echo(runtime).complete(with_tools(tool_choice=ToolChoice(ToolChoiceMode.NONE)))
    assert (completion.text, completion.tool_calls) == ("Echo: weather in Paris", ())
    assert completion.finish_reason is FinishReason.STOP


async def test_a_streamed_tool_call_arrives_as_argument_deltas_then_whole(runtime: ProviderRuntime) -> None:
    events = await collect(echo(runtime).stream(with_tools()))
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert len(deltas) > 1
    assert (deltas[0].id, deltas[0].name) == ("call_1", "get_weather")
    assert all(d.id is None and d.name is None and d.index == 0 for d in deltas[1:])
    arguments = "".join(d.arguments for d in deltas)
    done = [e for e in events if isinstance(e, ToolCallDone)]
    assert done == [ToolCallDone(0, ToolCall("call_1", "get_weather", arguments))]
    assert not any(isinstance(e, TextDelta) for e in events)
    assert events[-1] == Finished(FinishReason.TOOL_CALLS)


async def test_after_a_tool_result_it_answers_quoting_the_result(runtime: ProviderRuntime) -> None:
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    request = with_tools(
        ASK,
        ChatMessage(ChatRole.ASSISTANT, tool_calls=(call,)),
        ChatMessage(ChatRole.TOOL, '{"temp": 21}', tool_call_id="call_1"),
    )
    completion = await echo(runtime).complete(request)
    assert completion.text == 'Echo: get_weather answered {"temp": 21}'
    assert completion.finish_reason is FinishReason.STOP
    streamed = await collect(echo(runtime).stream(request))
    assert "".join(e.text for e in streamed if isinstance(e, TextDelta)) == completion.text


async def test_a_second_call_in_the_conversation_gets_a_new_id(runtime: ProviderRuntime) -> None:
    request = with_tools(
        ASK,
        ChatMessage(ChatRole.ASSISTANT, tool_calls=(ToolCall("call_1", "get_weather", "{}"),)),
        ChatMessage(ChatRole.TOOL, "sunny", tool_call_id="call_1"),
        ChatMessage(ChatRole.USER, "and tomorrow?"),
    )
    (call,) = (await echo(runtime).complete(request)).tool_calls
    assert call.id == "call_2"


async def test_json_object_answers_are_json(runtime: ProviderRuntime) -> None:
    request = ChatRequest(messages=(ASK,), response_format=ResponseFormat(ResponseFormatType.JSON_OBJECT))
    completion = await echo(runtime).complete(request)
    assert orjson.loads(completion.text) == {"echo": "weather in Paris"}


async def test_json_schema_answers_follow_the_schema_also_streamed(runtime: ProviderRuntime) -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "sunny": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "where": {"type": "object", "properties": {"lat": {"type": "number"}}},
            "note": {"type": ["string", "null"]},
        },
    }
    format = ResponseFormat(ResponseFormatType.JSON_SCHEMA, "weather", schema, strict=True)
    request = ChatRequest(messages=(ASK,), response_format=format)
    expected = {
        "city": "weather in Paris",
        "sunny": True,
        "tags": ["weather in Paris"],
        "where": {"lat": 3},
        "note": "weather in Paris",
    }
    assert orjson.loads((await echo(runtime).complete(request)).text) == expected
    streamed = await collect(echo(runtime).stream(request))
    assert orjson.loads("".join(e.text for e in streamed if isinstance(e, TextDelta))) == expected


async def test_it_counts_the_images_it_is_shown(runtime: ProviderRuntime) -> None:
    parts = (
        TextPart("What are these?"),
        ImagePart(url="https://example.com/a.png"),
        ImagePart(data=b"\x89PNG", media_type="image/png"),
    )
    completion = await echo(runtime).complete(
        ChatRequest(messages=(ChatMessage(ChatRole.USER, parts=parts),))
    )
    assert completion.text == "Echo: I see 2 images. What are these?"


async def test_completion_models_never_call_tools(runtime: ProviderRuntime) -> None:
    completion = await echo(runtime, ModelGroup.COMPLETION).complete(with_tools())
    assert completion.tool_calls == ()
    assert completion.text.startswith("Echo:")


def test_deep_schemas_stop_nesting() -> None:
    schema: dict[str, object] = {"type": "object", "properties": {}}
    inner = schema
    for _ in range(10):
        nested: dict[str, object] = {"type": "object", "properties": {}}
        inner["properties"] = {"next": nested}
        inner = nested
    value = value_for(schema, "x")
    depth = 0
    while value:
        value, depth = value["next"], depth + 1
    assert depth == 5
