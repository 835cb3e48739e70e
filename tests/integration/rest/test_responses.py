"""POST /v1/responses with the official SDK (`client.responses.create` / `.parse`): text answers,
the function-calling loop that sends `response.output` back as input, `text_format` parsing, and
`client.responses.stream`, and OpenAI-style 400s for malformed or unsupported fields (stored
responses)."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai import AsyncOpenAI

from tests.fakes.openai_server import OpenAIFake
from tests.support.sdk_models import Forecast, GetWeather

QUESTION = "What is the weather in Paris?"


async def test_a_text_response(client: AsyncOpenAI, echo: dict[str, Any]) -> None:
    raw = await client.responses.with_raw_response.create(
        model=echo["id"], input="Hello there, model", instructions="Be brief."
    )
    response = raw.parse()
    assert response.id == f"resp_{raw.headers['x-request-id']}"
    assert (response.object, response.status, response.model) == ("response", "completed", echo["id"])
    assert response.output_text == "Echo: Hello there, model"
    assert response.usage is not None
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens > 0
    assert (response.model_extra or {})["modelgate"]["servedBy"]["id"] == echo["id"]


async def test_a_cut_answer_is_incomplete(client: AsyncOpenAI, echo: dict[str, Any]) -> None:
    response = await client.responses.create(
        model=echo["id"], input="one two three four five", max_output_tokens=2
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"


async def test_the_function_calling_loop(client: AsyncOpenAI, demo: str) -> None:
    tools = [openai.pydantic_responses_function_tool(GetWeather)]
    conversation: list[Any] = [{"role": "user", "content": QUESTION}]
    asked = await client.responses.parse(model=demo, input=conversation, tools=tools)
    (call,) = asked.output
    assert call.type == "function_call"
    assert (call.call_id, call.name) == ("call_1", "GetWeather")
    assert call.parsed_arguments == GetWeather(city=QUESTION, unit=QUESTION)

    conversation += [
        *asked.output,
        {"type": "function_call_output", "call_id": call.call_id, "output": "18 degrees"},
    ]
    final = await client.responses.create(model=demo, input=conversation, tools=tools)
    assert final.output_text == "Echo: GetWeather answered 18 degrees"
    assert [item.type for item in final.output] == ["message"]


async def test_parse_with_a_text_format(client: AsyncOpenAI, demo: str) -> None:
    response = await client.responses.parse(model=demo, input=QUESTION, text_format=Forecast)
    assert response.output_parsed == Forecast(city=QUESTION, degrees=6)


async def test_a_streamed_response(client: AsyncOpenAI, echo: dict[str, Any]) -> None:
    async with client.responses.stream(model=echo["id"], input="Hello there, model") as stream:
        kinds = [event.type async for event in stream]
        response = await stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds.count("response.output_text.delta") == 4  # ECHO writes word by word
    assert kinds[-1] == "response.completed"
    assert response.output_text == "Echo: Hello there, model"
    assert response.usage is not None
    assert response.usage.output_tokens == 4


async def test_the_streamed_function_calling_loop(client: AsyncOpenAI, demo: str) -> None:
    tools = [openai.pydantic_responses_function_tool(GetWeather)]
    conversation: list[Any] = [{"role": "user", "content": QUESTION}]
    async with client.responses.stream(model=demo, input=conversation, tools=tools) as stream:
        pieces = [e.delta async for e in stream if e.type == "response.function_call_arguments.delta"]
        asked = await stream.get_final_response()
    (call,) = asked.output
    assert call.type == "function_call"
    assert len(pieces) > 1
    assert call.arguments == "".join(pieces)
    assert call.parsed_arguments == GetWeather(city=QUESTION, unit=QUESTION)

    conversation += [*asked.output, {"type": "function_call_output", "call_id": call.call_id, "output": "18"}]
    async with client.responses.stream(model=demo, input=conversation, tools=tools) as stream:
        final = await stream.get_final_response()
    assert final.output_text == "Echo: GetWeather answered 18"


async def test_parallel_calls_streamed_from_an_openai_upstream(
    client: AsyncOpenAI, capable: str, fake_a: OpenAIFake
) -> None:
    fake_a.tool_calls_per_answer = 2
    fake_a.interleave_tool_calls = True
    tools = [openai.pydantic_responses_function_tool(GetWeather)]
    async with client.responses.stream(model=capable, input=QUESTION, tools=tools) as stream:
        final = await stream.get_final_response()
    calls = [item for item in final.output if item.type == "function_call"]
    assert len({c.call_id for c in calls}) == 2
    # what the fake's model writes for the schema (tests/fakes/tool_rules.py: `value_for`)
    assert [c.parsed_arguments for c in calls] == [GetWeather(city="city", unit="unit")] * 2


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"tools": [{"type": "function"}]}, "tools[0].name"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        (
            {"tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": "function", "name": "g"}},
            "tool_choice",
        ),
        ({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, "input[0].call_id"),
        ({"input": [{"type": "function_call_output", "call_id": "c1"}]}, "input[0].output"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "ftp://x"}]}]},
            "input[0].content[0].image_url",
        ),
        ({"input": [{"content": "hi"}]}, "input[0].role"),
        ({"text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name"),
        ({"text": {"format": {"type": "xml"}}}, "text.format.type"),
        ({"max_output_tokens": 0}, "max_output_tokens"),  # the gateway's rule, with this API's name
        ({"input": "   "}, "input"),  # the gateway's rule, with this API's name
    ],
)
async def test_malformed_fields_are_400(
    fields: dict[str, Any], param: str, client: AsyncOpenAI, echo: dict[str, Any]
) -> None:
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as refused:
            await client.responses.create(
                **{"model": echo["id"], "input": QUESTION, "stream": stream, **fields}
            )
        error = refused.value.body
        assert isinstance(error, dict)
        assert (error["param"], error["type"]) == (param, "invalid_request_error"), error
