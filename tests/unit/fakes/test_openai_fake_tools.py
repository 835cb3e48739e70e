"""The OpenAI fake's tools, images and structured output, driven by the official openai SDK (so the
shapes it writes are the ones the SDK's own tool helpers read) and by raw HTTP for the strict 400s."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from tests.fakes.openai_server import TOKEN, OpenAIFake, openai_fake_server

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "units": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "units"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
STOCK = {
    "type": "function",
    "function": {
        "name": "get_stock",
        "parameters": {"type": "object", "properties": {"days": {"type": "integer"}}},
    },
}
ASK = [{"role": "user", "content": "Weather in Paris?"}]
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="


@pytest.fixture
async def fake() -> AsyncIterator[OpenAIFake]:
    async with openai_fake_server() as fake:
        yield fake


def client(fake: OpenAIFake) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=TOKEN, base_url=f"{fake.url}/v1", max_retries=0)


async def test_a_tools_request_is_answered_with_a_call_made_from_the_schema(fake: OpenAIFake) -> None:
    completion = await client(fake).chat.completions.create(model="gpt-4o", messages=ASK, tools=[WEATHER])

    [call] = completion.choices[0].message.tool_calls or []
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.choices[0].message.content is None
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "city", "units": "c"}
    assert fake.requests[0].body["tools"] == [WEATHER]


async def test_streamed_parallel_calls_arrive_in_fragments_that_the_sdk_assembles(fake: OpenAIFake) -> None:
    fake.tool_calls_per_answer, fake.argument_chunks = 2, 4
    async with client(fake).chat.completions.stream(
        model="gpt-4o", messages=ASK, tools=[WEATHER, STOCK], stream_options={"include_usage": True}
    ) as stream:
        fragments = [
            e
            for e in [event async for event in stream]
            if e.type == "tool_calls.function.arguments.delta" and e.arguments_delta
        ]
        final = await stream.get_final_completion()

    calls = final.choices[0].message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "city", "units": "c"}),
        ("get_stock", {"days": 1}),
    ]
    assert len(fragments) == 8
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None


async def test_interleaved_calls_and_a_named_choice(fake: OpenAIFake) -> None:
    fake.tool_calls_per_answer, fake.interleave_tool_calls = 2, True
    choice: Any = {"type": "function", "function": {"name": "get_stock"}}
    stream = await client(fake).chat.completions.create(
        model="gpt-4o", messages=ASK, tools=[WEATHER, STOCK], tool_choice=choice, stream=True
    )
    indexes = [
        c.choices[0].delta.tool_calls[0].index
        async for c in stream
        if c.choices and c.choices[0].delta.tool_calls
    ]

    assert indexes[:4] == [0, 1, 0, 1]


async def test_a_tool_result_is_quoted(fake: OpenAIFake) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    messages: Any = [
        *ASK,
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18°C"},
    ]
    for stream in (False, True):
        answer = await client(fake).chat.completions.create(
            model="gpt-4o", messages=messages, tools=[WEATHER], stream=stream
        )
        text = (
            "".join([c.choices[0].delta.content or "" async for c in answer])
            if stream
            else answer.choices[0].message.content
        )  # type: ignore[union-attr]
        assert text == "Tool result call_1: 18°C"


async def test_images_are_described(fake: OpenAIFake) -> None:
    content: Any = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    completion = await client(fake).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": content}]
    )

    assert (
        completion.choices[0].message.content
        == "I see 2 images: image/png (70 bytes); https://example.com/cat.jpg"
    )


async def test_a_json_schema_is_answered_with_json_the_sdk_parses(fake: OpenAIFake) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "temperature": {"type": "number"}},
        "required": ["city", "temperature"],
        "additionalProperties": False,
    }
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "Weather", "schema": schema, "strict": True}}
    async with client(fake).chat.completions.stream(
        model="gpt-4o", messages=ASK, response_format=fmt
    ) as stream:
        final = await stream.get_final_completion()

    assert json.loads(final.choices[0].message.content or "") == {"city": "city", "temperature": 1.5}


async def test_the_responses_api_calls_functions_and_reads_their_output(fake: OpenAIFake) -> None:
    tool: Any = {
        "type": "function",
        "name": "get_weather",
        "parameters": WEATHER["function"]["parameters"],
        "strict": True,
    }  # type: ignore[index]
    api = client(fake).responses
    response = await api.create(model="gpt-4.1", input="Weather?", tools=[tool])
    [item] = response.output
    assert (item.type, item.name, json.loads(item.arguments)) == (
        "function_call",
        "get_weather",
        {"city": "city", "units": "c"},
    )  # type: ignore[union-attr]

    events = [e async for e in await api.create(model="gpt-4.1", input="Weather?", tools=[tool], stream=True)]
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert json.loads(deltas) == {"city": "city", "units": "c"}
    assert events[-1].type == "response.completed"

    follow_up: Any = [
        {
            "type": "function_call",
            "call_id": item.call_id,
            "name": "get_weather",
            "arguments": item.arguments,
        },  # type: ignore[union-attr]
        {"type": "function_call_output", "call_id": item.call_id, "output": "18°C"},  # type: ignore[union-attr]
    ]
    answer = await api.create(model="gpt-4.1", input=follow_up, tools=[tool])
    assert answer.output_text == f"Tool result {item.call_id}: 18°C"  # type: ignore[union-attr]


async def test_mistral_sends_whole_calls_with_nine_character_ids(fake: OpenAIFake) -> None:
    fake.flavor = "mistral"
    chunks = [
        c
        async for c in await client(fake).chat.completions.create(
            model="mistral-large-latest", messages=ASK, tools=[WEATHER], tool_choice="any", stream=True
        )
    ]  # type: ignore[arg-type]

    [whole] = [c for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    [call] = whole.choices[0].delta.tool_calls or []
    assert len(call.id or "") == 9
    assert call.type is None
    assert whole.choices[0].finish_reason == "tool_calls"
    assert whole.usage is not None


async def post(fake: OpenAIFake, body: dict[str, Any], path: str = "/v1/chat/completions") -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.post(f"{fake.url}{path}", json=body) as response:
        return response.status, await response.json()


@pytest.mark.parametrize(
    ("change", "param", "message"),
    [
        (
            {"tools": [{"type": "function", "function": {"description": "no name"}}]},
            "tools[0].function.name",
            "Missing required parameter",
        ),
        (
            {"tools": [{"type": "function", "name": "flat"}]},
            "tools[0].function",
            "Missing required parameter",
        ),
        ({"tool_choice": "auto"}, "tool_choice", "only allowed when 'tools' are specified"),
        (
            {"tools": [WEATHER], "tool_choice": "any"},
            "tool_choice",
            "Supported values are: 'auto', 'none', 'required'",
        ),
        (
            {"messages": [{"role": "tool", "tool_call_id": "x", "content": "1"}]},
            "messages.[0].role",
            "preceeding message",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "https://x"}]}]},
            "messages[0].content[0].image_url",
            "expected an object",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:text/plain;base64,aGk="}}
                        ],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
            "unsupported MIME type",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "X",
                        "strict": True,
                        "schema": {"type": "object", "properties": {}},
                    },
                }
            },
            "response_format",
            "'additionalProperties' is required",
        ),
        ({"response_format": {"type": "json_object"}}, "messages", "must contain the word 'json'"),
    ],
)
async def test_malformed_shapes_get_the_real_400(
    fake: OpenAIFake, change: dict[str, Any], param: str, message: str
) -> None:
    status, body = await post(fake, {"model": "gpt-4o", "messages": ASK, **change})

    assert status == 400
    assert body["error"]["param"] == param
    assert message in body["error"]["message"]
