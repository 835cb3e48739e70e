"""Tools, images and structured output through /v1/chat/completions with the official openai SDK,
unchanged: a function-calling loop (the model calls a tool, the client answers, the model finishes),
the same streamed (`client.chat.completions.stream`), `client.beta.chat.completions.parse` with a
response format and with tools, and image parts by URL and data URL — all served by the OpenAI
fake, which checks every request as the real API does and records it in OpenAI's shape."""

from __future__ import annotations

import base64
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI
from openai.lib._parsing._completions import type_to_response_format_param
from openai.types.chat import ChatCompletionMessageParam

from tests.fakes.openai_server import OpenAIFake
from tests.integration.rest.conftest import REPLY_A
from tests.support.catalog import create_system_model
from tests.support.graphql import GraphQLClient
from tests.support.sdk_models import Forecast, GetWeather

QUESTION: ChatCompletionMessageParam = {"role": "user", "content": "What is the weather in Paris?"}
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
)
CAT = "https://images.example.com/cat.jpg"


# What the fake's model writes for these schemas (tests/fakes/tool_rules.py: `value_for`).
WEATHER_ARGUMENTS = GetWeather(city="city", unit="unit")
FORECAST = Forecast(city="city", degrees=1.5)


def upstream(fake: OpenAIFake) -> dict[str, Any]:
    body = fake.requests[-1].body
    assert isinstance(body, dict)
    return body


async def test_a_function_calling_loop(client: AsyncOpenAI, capable: str, fake_a: OpenAIFake) -> None:
    tools = [openai.pydantic_function_tool(GetWeather)]
    messages: list[Any] = [QUESTION]
    first = await client.chat.completions.create(model=capable, messages=messages, tools=tools)
    (choice,) = first.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == "GetWeather"
    assert GetWeather.model_validate_json(call.function.arguments) == WEATHER_ARGUMENTS
    sent = upstream(fake_a)
    (function,) = [t["function"] for t in sent["tools"] if t["type"] == "function"]
    assert (function["name"], function["description"], function["strict"]) == (
        "GetWeather",
        "The weather in a city.",
        True,
    )
    assert function["parameters"] == tools[0]["function"]["parameters"]

    messages += [choice.message, {"role": "tool", "tool_call_id": call.id, "content": "18 degrees, sunny"}]
    final = await client.chat.completions.create(model=capable, messages=messages, tools=tools)
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.content == f"Tool result {call.id}: 18 degrees, sunny"
    assert final.choices[0].message.tool_calls is None
    sent = upstream(fake_a)
    (sent_call,) = sent["messages"][1]["tool_calls"]
    assert (sent_call["id"], sent_call["function"]) == (
        call.id,
        {"name": "GetWeather", "arguments": call.function.arguments},
    )
    tool_turn = sent["messages"][2]
    assert (tool_turn["role"], tool_turn["tool_call_id"], tool_turn["content"]) == (
        "tool",
        call.id,
        "18 degrees, sunny",
    )


async def test_the_loop_streamed_with_the_sdk_stream_helper(
    client: AsyncOpenAI, capable: str, fake_a: OpenAIFake
) -> None:
    fake_a.tool_calls_per_answer = 2  # two parallel calls, each streamed in argument pieces
    fake_a.interleave_tool_calls = (
        True  # the upstream alternates their pieces; OpenAI's clients need them in turn
    )
    tools = [openai.pydantic_function_tool(GetWeather)]
    messages: list[Any] = [QUESTION]
    async with client.chat.completions.stream(model=capable, messages=messages, tools=tools) as stream:
        done = [e async for e in stream if e.type == "tool_calls.function.arguments.done"]
        answer = await stream.get_final_completion()
    (choice,) = answer.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls or []
    assert [c.function.name for c in calls] == ["GetWeather", "GetWeather"]
    assert len({c.id for c in calls}) == 2
    assert [c.function.parsed_arguments for c in calls] == [WEATHER_ARGUMENTS, WEATHER_ARGUMENTS]
    assert [e.parsed_arguments for e in done] == [WEATHER_ARGUMENTS, WEATHER_ARGUMENTS]

    messages += [
        choice.message,
        *({"role": "tool", "tool_call_id": c.id, "content": f"{n} degrees"} for n, c in enumerate(calls)),
    ]
    stream_again = await client.chat.completions.create(
        model=capable, messages=messages, tools=tools, stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream_again if c.choices])
    assert text == f"Tool result {calls[0].id}: 0 degrees | Tool result {calls[1].id}: 1 degrees"


async def test_parse_fills_message_parsed(client: AsyncOpenAI, capable: str, fake_a: OpenAIFake) -> None:
    completion = await client.beta.chat.completions.parse(
        model=capable, messages=[QUESTION], response_format=Forecast
    )
    message = completion.choices[0].message
    assert message.parsed == FORECAST
    fmt = upstream(fake_a)["response_format"]
    assert (fmt["type"], fmt["json_schema"]["name"], fmt["json_schema"]["strict"]) == (
        "json_schema",
        "Forecast",
        True,
    )
    assert fmt["json_schema"]["schema"]["properties"].keys() == {"city", "degrees"}


async def test_parse_with_tools_fills_parsed_arguments(client: AsyncOpenAI, capable: str) -> None:
    completion = await client.beta.chat.completions.parse(
        model=capable, messages=[QUESTION], tools=[openai.pydantic_function_tool(GetWeather)]
    )
    (call,) = completion.choices[0].message.tool_calls or []
    assert call.function.parsed_arguments == WEATHER_ARGUMENTS


async def test_json_mode_answers_json_content(client: AsyncOpenAI, capable: str, fake_a: OpenAIFake) -> None:
    completion = await client.chat.completions.create(
        model=capable,
        messages=[{"role": "user", "content": "Answer in JSON: the capital of France?"}],
        response_format={"type": "json_object"},
    )
    assert completion.choices[0].message.content == f'{{"answer":"{REPLY_A}"}}'
    assert upstream(fake_a)["response_format"] == {"type": "json_object"}


async def test_images_by_url_and_by_data_url_reach_the_provider(
    client: AsyncOpenAI, capable: str, fake_a: OpenAIFake
) -> None:
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    content: list[Any] = [
        {"type": "text", "text": "What do these show?"},
        {"type": "image_url", "image_url": {"url": CAT, "detail": "low"}},
        {"type": "image_url", "image_url": {"url": data_url}},
    ]
    completion = await client.chat.completions.create(
        model=capable, messages=[{"role": "user", "content": content}]
    )
    assert completion.choices[0].message.content == f"I see 2 images: {CAT}; image/png ({len(PNG)} bytes)"
    (sent,) = upstream(fake_a)["messages"]
    by_url, by_data = (part["image_url"] for part in sent["content"] if part["type"] == "image_url")
    assert (by_url["url"], by_url["detail"]) == (CAT, "low")  # the provider fetches it, never Modelgate
    assert by_data["url"] == data_url


async def test_a_model_without_the_capability_is_refused_naming_it(
    client: AsyncOpenAI, admin: GraphQLClient, fake_a: OpenAIFake
) -> None:
    plain = await create_system_model(
        admin, "gpt-plain", modelUrl=f"{fake_a.url}/v1", capabilities={"streaming": True}
    )
    cases: list[tuple[dict[str, Any], str]] = [
        ({"tools": [openai.pydantic_function_tool(GetWeather)]}, "tools"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": CAT}}]}]},
            "messages[0].content",
        ),
        (
            {"response_format": type_to_response_format_param(Forecast)},
            "response_format",
        ),
    ]
    for fields, param in cases:
        with pytest.raises(openai.BadRequestError) as refused:
            await client.chat.completions.create(**{"model": plain["id"], "messages": [QUESTION], **fields})
        error = refused.value.body
        assert isinstance(error, dict)
        assert (error["param"], error["code"], error["type"]) == (
            param,
            "capability_not_supported",
            "invalid_request_error",
        ), error
    assert fake_a.requests == []


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [{"type": "function", "function": {"name": "no spaces"}}]}, "tools[0].function.name"),
        ({"tools": [{"type": "function"}]}, "tools[0].function"),
        ({"tool_choice": {"type": "function", "function": {"name": "GetWeather"}}}, "tool_choice"),
        ({"functions": [{"name": "f"}]}, "functions"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
        ),
        ({"messages": [QUESTION, {"role": "assistant", "content": None}]}, "messages[1].content"),
        (
            {"messages": [QUESTION, {"role": "tool", "tool_call_id": "c1", "content": "x"}]},
            "messages[1].role",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}},
            "response_format.json_schema.name",
        ),
    ],
)
async def test_malformed_tool_fields_are_400_before_any_upstream_call(
    fields: dict[str, Any], param: str, client: AsyncOpenAI, capable: str, fake_a: OpenAIFake
) -> None:
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as refused:
            await client.chat.completions.create(
                **{"model": capable, "messages": [QUESTION], "stream": stream, **fields}
            )
        error = refused.value.body
        assert isinstance(error, dict)
        assert (error["param"], error["type"]) == (param, "invalid_request_error"), error
    assert fake_a.requests == []
