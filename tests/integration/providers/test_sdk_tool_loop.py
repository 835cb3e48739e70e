"""The openai SDK's function-calling and `parse` examples, unchanged, against /v1/chat/completions on
a fake of every provider that supports them (issue 16's "done means"): the loop (the model calls
`openai.pydantic_function_tool(GetWeather)`, the client answers with a tool message, the model
finishes), the same through the SDK's stream helper (`client.chat.completions.stream`), and
`client.beta.chat.completions.parse(response_format=Forecast)` filling `message.parsed`, also
streamed, and image parts by URL and data URL. Each fake
records what came, so every case also checks what reached the provider in its own wire shapes.

One test per provider runs every case on one server and database (fixtures: conftest.py)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from app.domain.auth import Role
from tests.conftest import LiveServer
from tests.integration.rest.conftest import sdk
from tests.support.factories import Tenant
from tests.support.provider_upstreams import BEDROCK, GEMINI, Upstream
from tests.support.sdk_models import Forecast, GetWeather
from tests.support.tool_requests import PNG
from tests.support.wire_shapes import (
    assert_tool_turn,
    declared_tools,
    output_schema,
    text_and_images,
    user_content,
)

pytestmark = pytest.mark.slow  # with the SDK side, about 30 s: `make test` runs it, test-quick does not

QUESTION: ChatCompletionMessageParam = {"role": "user", "content": "What is the weather in Paris?"}
RESULT = '{"degrees": 18}'
# What the fakes' models write for these schemas (tests/fakes/tool_rules.py: `value_for`).
WEATHER_ARGUMENTS = GetWeather(city="city", unit="unit")
FORECAST = Forecast(city="city", degrees=1.5)
TOOLS = [openai.pydantic_function_tool(GetWeather)]
RESPONSES_TOOLS = [openai.pydantic_responses_function_tool(GetWeather)]
PNG_BASE64 = base64.b64encode(PNG).decode()


@pytest.fixture
async def client(server: LiveServer, tenant: Tenant) -> AsyncIterator[AsyncOpenAI]:
    async with sdk(server, tenant.keys[Role.DEVELOPER]) as client:
        yield client


async def test_the_sdk_examples_on_every_provider(
    upstream: Upstream, model: str, client: AsyncOpenAI, image_url: str
) -> None:
    await the_function_calling_loop(upstream, client, model)
    await the_loop_through_the_stream_helper(upstream, client, model)
    await parse_fills_message_parsed(upstream, client, model)
    await a_streamed_parse(upstream, client, model)
    await image_parts(upstream, client, model, image_url)


async def test_the_sdk_responses_examples_on_every_provider(
    upstream: Upstream, model: str, client: AsyncOpenAI
) -> None:
    await the_responses_function_calling_loop(upstream, client, model, streamed=False)
    await the_responses_function_calling_loop(upstream, client, model, streamed=True)
    await responses_parse_fills_output_parsed(upstream, client, model)


# ---- the cases -----------------------------------------------------------------------------------


async def the_function_calling_loop(upstream: Upstream, client: AsyncOpenAI, model: str) -> None:
    messages: list[Any] = [QUESTION]
    first = await client.chat.completions.create(model=model, messages=messages, tools=TOOLS)
    (choice,) = first.choices
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == "GetWeather"
    assert GetWeather.model_validate_json(call.function.arguments) == WEATHER_ARGUMENTS
    parameters = TOOLS[0]["function"]["parameters"]
    assert declared_tools(upstream.wire, upstream.bodies()[-1]) == {"GetWeather": parameters}

    messages += [choice.message, {"role": "tool", "tool_call_id": call.id, "content": RESULT}]
    final = await client.chat.completions.create(model=model, messages=messages, tools=TOOLS)
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.tool_calls is None
    assert (final.choices[0].message.content or "").startswith("Tool result ")
    body = upstream.bodies()[-1]
    assert_tool_turn(upstream.wire, body, call.id, "GetWeather", call.function.arguments, RESULT)


async def the_loop_through_the_stream_helper(upstream: Upstream, client: AsyncOpenAI, model: str) -> None:
    messages: list[Any] = [QUESTION]
    async with client.chat.completions.stream(model=model, messages=messages, tools=TOOLS) as stream:
        pieces = [e.arguments_delta async for e in stream if e.type == "tool_calls.function.arguments.delta"]
        asked = await stream.get_final_completion()
    (choice,) = asked.choices
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert pieces, "the arguments streamed"
    assert call.function.arguments == "".join(pieces)
    assert call.function.parsed_arguments == WEATHER_ARGUMENTS

    messages += [choice.message, {"role": "tool", "tool_call_id": call.id, "content": RESULT}]
    async with client.chat.completions.stream(model=model, messages=messages, tools=TOOLS) as stream:
        final = await stream.get_final_completion()
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.tool_calls is None
    assert (final.choices[0].message.content or "").startswith("Tool result ")
    body = upstream.bodies()[-1]
    assert_tool_turn(upstream.wire, body, call.id, "GetWeather", call.function.arguments, RESULT)


async def parse_fills_message_parsed(upstream: Upstream, client: AsyncOpenAI, model: str) -> None:
    completion = await client.beta.chat.completions.parse(
        model=model, messages=[QUESTION], response_format=Forecast
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.parsed == FORECAST
    schema = output_schema(upstream.wire, upstream.bodies()[-1])
    assert (schema["properties"].keys(), schema["required"]) == ({"city", "degrees"}, ["city", "degrees"])


async def a_streamed_parse(upstream: Upstream, client: AsyncOpenAI, model: str) -> None:
    """Where the schema goes by a forced tool (Anthropic, Bedrock), its input streams as content."""
    async with client.chat.completions.stream(
        model=model, messages=[QUESTION], response_format=Forecast
    ) as stream:
        pieces = [e.delta async for e in stream if e.type == "content.delta"]
        completion = await stream.get_final_completion()
    assert pieces, "the answer streamed"
    assert completion.choices[0].message.parsed == FORECAST
    assert completion.choices[0].message.content == "".join(pieces)
    assert output_schema(upstream.wire, upstream.bodies()[-1])["properties"].keys() == {"city", "degrees"}


async def image_parts(upstream: Upstream, client: AsyncOpenAI, model: str, url: str) -> None:
    """`image_url` parts by https URL and by data URL."""
    content: list[Any] = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": url}},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_BASE64}"}},
    ]
    completion = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": content}]
    )
    inline = f"image/png ({len(PNG)} bytes)"
    by_url = inline if upstream.wire in (GEMINI, BEDROCK) else url  # downloaded, or fetched by the provider
    assert completion.choices[0].message.content == f"I see 2 images: {by_url}; {inline}"
    expected = text_and_images(upstream.wire, "What is this?", url, PNG_BASE64)
    assert user_content(upstream.wire, upstream.bodies()[-1]) == expected


# ---- /v1/responses -------------------------------------------------------------------------------


async def the_responses_function_calling_loop(
    upstream: Upstream, client: AsyncOpenAI, model: str, *, streamed: bool
) -> None:
    """`response.output` goes back as input with the tool's `function_call_output`."""
    conversation: list[Any] = [QUESTION]
    if streamed:
        async with client.responses.stream(model=model, input=conversation, tools=RESPONSES_TOOLS) as stream:
            pieces = [e.delta async for e in stream if e.type == "response.function_call_arguments.delta"]
            asked = await stream.get_final_response()
        assert pieces, "the arguments streamed"
    else:
        asked = await client.responses.parse(model=model, input=conversation, tools=RESPONSES_TOOLS)
    (call,) = asked.output
    assert call.type == "function_call"
    assert call.name == "GetWeather"
    assert call.parsed_arguments == WEATHER_ARGUMENTS

    conversation += [
        *asked.output,
        {"type": "function_call_output", "call_id": call.call_id, "output": RESULT},
    ]
    final = await client.responses.create(model=model, input=conversation, tools=RESPONSES_TOOLS)
    assert [item.type for item in final.output] == ["message"]
    assert final.output_text.startswith("Tool result ")
    body = upstream.bodies()[-1]
    assert_tool_turn(upstream.wire, body, call.call_id, "GetWeather", call.arguments, RESULT)


async def responses_parse_fills_output_parsed(upstream: Upstream, client: AsyncOpenAI, model: str) -> None:
    response = await client.responses.parse(model=model, input=[QUESTION], text_format=Forecast)
    assert response.output_parsed == FORECAST
    assert output_schema(upstream.wire, upstream.bodies()[-1])["properties"].keys() == {"city", "degrees"}
