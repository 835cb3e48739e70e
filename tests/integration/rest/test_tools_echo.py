"""The openai SDK's function-calling and `parse` examples, unchanged, against /v1 on the offline
ECHO demo model (app/providers/echo_answers.py: it calls the first tool with arguments made from
its schema and the user's words, quotes tool results, and answers JSON shaped by a schema)."""

from __future__ import annotations

from typing import Any

import openai
from openai import AsyncOpenAI

from tests.support.sdk_models import Forecast, GetWeather

QUESTION = "What is the weather in Paris?"


async def test_the_function_calling_loop(client: AsyncOpenAI, demo: str) -> None:
    tools = [openai.pydantic_function_tool(GetWeather)]
    messages: list[Any] = [{"role": "user", "content": QUESTION}]
    asked = await client.chat.completions.create(model=demo, messages=messages, tools=tools)
    (choice,) = asked.choices
    assert (choice.finish_reason, choice.message.content) == ("tool_calls", None)
    (call,) = choice.message.tool_calls or []
    assert call.type == "function"
    assert (call.id, call.function.name) == ("call_1", "GetWeather")
    assert GetWeather.model_validate_json(call.function.arguments) == GetWeather(city=QUESTION, unit=QUESTION)

    messages += [choice.message, {"role": "tool", "tool_call_id": call.id, "content": "18 degrees, sunny"}]
    final = await client.chat.completions.create(model=demo, messages=messages, tools=tools)
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.content == "Echo: GetWeather answered 18 degrees, sunny"


async def test_the_loop_streamed_with_the_stream_helper(client: AsyncOpenAI, demo: str) -> None:
    tools = [openai.pydantic_function_tool(GetWeather)]
    messages: list[Any] = [{"role": "user", "content": QUESTION}]
    async with client.chat.completions.stream(model=demo, messages=messages, tools=tools) as stream:
        pieces = [e.arguments_delta async for e in stream if e.type == "tool_calls.function.arguments.delta"]
        asked = await stream.get_final_completion()
    assert len(pieces) > 1  # the arguments came in pieces
    (choice,) = asked.choices
    assert (choice.finish_reason, choice.message.content) == ("tool_calls", None)
    (call,) = choice.message.tool_calls or []
    assert call.function.arguments == "".join(pieces)
    assert call.function.parsed_arguments == GetWeather(city=QUESTION, unit=QUESTION)

    messages += [choice.message, {"role": "tool", "tool_call_id": call.id, "content": "18 degrees"}]
    async with client.chat.completions.stream(model=demo, messages=messages, tools=tools) as stream:
        final = await stream.get_final_completion()
    assert final.choices[0].message.content == "Echo: GetWeather answered 18 degrees"
    assert final.choices[0].message.tool_calls is None


async def test_parse_with_a_response_format_and_with_tools(client: AsyncOpenAI, demo: str) -> None:
    question: list[Any] = [{"role": "user", "content": QUESTION}]
    parsed = await client.beta.chat.completions.parse(model=demo, messages=question, response_format=Forecast)
    assert parsed.choices[0].message.parsed == Forecast(city=QUESTION, degrees=6)
    with_tools = await client.beta.chat.completions.parse(
        model=demo, messages=question, tools=[openai.pydantic_function_tool(GetWeather)]
    )
    (call,) = with_tools.choices[0].message.tool_calls or []
    assert call.function.parsed_arguments == GetWeather(city=QUESTION, unit=QUESTION)
    async with client.beta.chat.completions.stream(
        model=demo, messages=question, response_format=Forecast
    ) as stream:
        streamed = await stream.get_final_completion()
    assert streamed.choices[0].message.parsed == Forecast(city=QUESTION, degrees=6)
