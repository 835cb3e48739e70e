"""The same tool loop, JSON answer and image through GraphQL on a fake of every provider that supports
them (issue 16's "done means"): `chat` returns a tool call with finish TOOL_CALLS, the client sends the
assistant's turn back with the tool's result and the model finishes with text; `chatStream` does the
same with argument deltas before the complete call; a JSON_SCHEMA response format answers JSON of that
schema; an image URL and an inline image reach the provider; each tool choice holds; parallel calls
keep their order, there and back. Each fake records what came, so every
case also checks the provider's own wire shapes: the tool definitions, the tool result turn, the
structured-output mechanism and the image parts (Gemini and Bedrock take bytes only: the URL's image
is downloaded from an https image host on loopback, through the outbound guard that the test
settings open to loopback).

One test per provider runs every case on one server and database, which keeps the matrix quick
(fixtures: conftest.py)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from app.domain.auth import Role
from tests.conftest import LiveServer
from tests.support.factories import Tenant
from tests.support.gateway import stream_events, ws_url
from tests.support.graphql import GraphQLClient
from tests.support.provider_upstreams import BEDROCK, GEMINI, Upstream
from tests.support.tool_requests import PNG
from tests.support.wire_shapes import (
    assert_tool_turn,
    declared_tools,
    output_schema,
    text_and_images,
    user_content,
)

pytestmark = pytest.mark.slow  # with the SDK side, about 30 s: `make test` runs it, test-quick does not

CHAT = """mutation($input: ChatInput!) { chat(input: $input) {
  message { role content toolCalls { id name arguments } } finishReason
  userErrors { code field message } } }"""
STREAM = """subscription($input: ChatInput!) { chatStream(input: $input) {
  __typename
  ... on ChatStreamDelta { text }
  ... on ChatStreamToolCallDelta { index id name argumentsDelta }
  ... on ChatStreamToolCall { index toolCall { id name arguments } }
  ... on ChatStreamEnd { finishReason }
  ... on ChatStreamError { code message }
} }"""
PARAMETERS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = {"name": "get_weather", "description": "Current weather of a city", "parameters": PARAMETERS}
TIME = {"name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}}
ASK = {"role": "USER", "content": "Weather in Paris?"}
RESULT = '{"temp": 21}'
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temperature": {"type": "integer"}},
    "required": ["city", "temperature"],
    "additionalProperties": False,
}
PNG_BASE64 = base64.b64encode(PNG).decode()


def turn_back(call: dict[str, Any]) -> list[dict[str, Any]]:
    """The conversation after the model's tool call: the call sent back, and the tool's result."""
    return [
        ASK,
        {"role": "ASSISTANT", "toolCalls": [call]},
        {"role": "TOOL", "toolCallId": call["id"], "content": RESULT},
    ]


async def test_graphql_tools_json_and_images_on_every_provider(
    upstream: Upstream, model: str, server: LiveServer, gql: GraphQLClient, tenant: Tenant, image_url: str
) -> None:
    key = tenant.keys[Role.DEVELOPER]
    dev = gql.with_key(key)
    await the_agent_loop_through_chat(upstream, dev, model)
    await the_agent_loop_through_chat_stream(upstream, ws_url(server.url), key, model)
    await a_json_schema_answer(upstream, dev, ws_url(server.url), key, model)
    await images_by_url_and_by_data(upstream, dev, model, image_url)
    await each_tool_choice(dev, model)
    await parallel_calls_in_order(upstream, dev, ws_url(server.url), key, model)


# ---- the cases -----------------------------------------------------------------------------------------


async def the_agent_loop_through_chat(upstream: Upstream, dev: GraphQLClient, model: str) -> None:
    first = await dev.mutate(CHAT, {"model": model, "messages": [ASK], "tools": [WEATHER]})
    assert first["userErrors"] == []
    assert first["finishReason"] == "TOOL_CALLS"
    (call,) = first["message"]["toolCalls"]
    assert call["name"] == "get_weather"
    assert orjson.loads(call["arguments"]) == {"city": "city"}  # the fake fills the schema
    assert declared_tools(upstream.wire, upstream.bodies()[-1]) == {"get_weather": PARAMETERS}

    second = await dev.mutate(CHAT, {"model": model, "messages": turn_back(call), "tools": [WEATHER]})
    assert second["userErrors"] == []
    assert second["finishReason"] == "STOP"
    assert second["message"]["toolCalls"] == []
    assert second["message"]["content"].startswith("Tool result ")
    assert_tool_turn(
        upstream.wire, upstream.bodies()[-1], call["id"], call["name"], call["arguments"], RESULT
    )


async def the_agent_loop_through_chat_stream(upstream: Upstream, url: str, key: str, model: str) -> None:
    events = await stream_events(
        url, key, {"input": {"model": model, "messages": [ASK], "tools": [WEATHER]}}, document=STREAM
    )
    kinds = [e["__typename"] for e in events]
    deltas = [e for e in events if e["__typename"] == "ChatStreamToolCallDelta"]
    (call,) = [e["toolCall"] for e in events if e["__typename"] == "ChatStreamToolCall"]
    assert deltas, events
    assert (deltas[0]["id"], deltas[0]["name"]) == (call["id"], "get_weather")
    assert "".join(d["argumentsDelta"] for d in deltas) == call["arguments"]
    assert orjson.loads(call["arguments"]) == {"city": "city"}
    assert kinds.index("ChatStreamToolCall") > kinds.index("ChatStreamToolCallDelta")
    assert events[-1] == {"__typename": "ChatStreamEnd", "finishReason": "TOOL_CALLS"}

    events = await stream_events(
        url,
        key,
        {"input": {"model": model, "messages": turn_back(call), "tools": [WEATHER]}},
        document=STREAM,
    )
    assert events[-1] == {"__typename": "ChatStreamEnd", "finishReason": "STOP"}
    assert "".join(e["text"] for e in events if e["__typename"] == "ChatStreamDelta").startswith(
        "Tool result "
    )
    assert_tool_turn(
        upstream.wire, upstream.bodies()[-1], call["id"], call["name"], call["arguments"], RESULT
    )


async def a_json_schema_answer(
    upstream: Upstream, dev: GraphQLClient, url: str, key: str, model: str
) -> None:
    """Through `chat` and `chatStream`: where the schema goes by a forced tool, its input comes back
    as the answer's text, also streamed."""
    response_format = {"type": "JSON_SCHEMA", "name": "weather", "schema": SCHEMA, "strict": True}
    shaped = {"model": model, "messages": [ASK], "responseFormat": response_format}
    payload = await dev.mutate(CHAT, shaped)
    assert payload["userErrors"] == []
    assert payload["finishReason"] == "STOP"
    assert_fits_the_schema(payload["message"]["content"])
    assert output_schema(upstream.wire, upstream.bodies()[-1]) == SCHEMA

    events = await stream_events(url, key, {"input": shaped}, document=STREAM)
    assert {e["__typename"] for e in events} == {"ChatStreamStart", "ChatStreamDelta", "ChatStreamEnd"}
    assert events[-1] == {"__typename": "ChatStreamEnd", "finishReason": "STOP"}
    assert_fits_the_schema("".join(e["text"] for e in events if e["__typename"] == "ChatStreamDelta"))
    assert output_schema(upstream.wire, upstream.bodies()[-1]) == SCHEMA


def assert_fits_the_schema(text: str) -> None:
    answer = orjson.loads(text)
    assert isinstance(answer.pop("city"), str)
    assert isinstance(answer.pop("temperature"), int)
    assert answer == {}, "only the schema's properties"


async def images_by_url_and_by_data(upstream: Upstream, dev: GraphQLClient, model: str, url: str) -> None:
    parts = [
        {"text": "What is this?"},
        {"image": {"url": url}},
        {"image": {"data": PNG_BASE64, "mediaType": "image/png"}},
    ]
    payload = await dev.mutate(CHAT, {"model": model, "messages": [{"role": "USER", "parts": parts}]})
    assert payload["userErrors"] == []
    inline = f"image/png ({len(PNG)} bytes)"
    by_url = inline if upstream.wire in (GEMINI, BEDROCK) else url  # downloaded, or fetched by the provider
    assert payload["message"]["content"] == f"I see 2 images: {by_url}; {inline}"
    expected = text_and_images(upstream.wire, "What is this?", url, PNG_BASE64)
    assert user_content(upstream.wire, upstream.bodies()[-1]) == expected


async def each_tool_choice(dev: GraphQLClient, model: str) -> None:
    """The fake reads the choice in its provider's shape and calls as it says: the named tool, none,
    or one even after a tool's result (REQUIRED)."""
    call = {"id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'}
    for choice, messages, called in [
        ({"mode": "TOOL", "name": "get_time"}, [ASK], ["get_time"]),
        ({"mode": "NONE"}, [ASK], []),
        ({"mode": "REQUIRED"}, turn_back(call), ["get_weather"]),
        ({"mode": "AUTO"}, turn_back(call), []),
    ]:
        asking = {"model": model, "messages": messages, "tools": [WEATHER, TIME], "toolChoice": choice}
        payload = await dev.mutate(CHAT, asking)
        assert payload["userErrors"] == [], choice
        assert [c["name"] for c in payload["message"]["toolCalls"]] == called, choice
        assert payload["finishReason"] == ("TOOL_CALLS" if called else "STOP"), choice


async def parallel_calls_in_order(
    upstream: Upstream, dev: GraphQLClient, url: str, key: str, model: str
) -> None:
    """Two calls in one answer (the fake calls each tool in turn), through `chat` and `chatStream`;
    their results go back in the same order, as the fake's answer quoting them shows."""
    upstream.fake.tool_calls_per_answer = 2  # type: ignore[attr-defined]  # every fake has the switch
    asking = {"model": model, "messages": [ASK], "tools": [WEATHER, TIME]}
    payload = await dev.mutate(CHAT, asking)
    assert payload["finishReason"] == "TOOL_CALLS"
    calls = payload["message"]["toolCalls"]
    assert [c["name"] for c in calls] == ["get_weather", "get_time"]
    assert len({c["id"] for c in calls}) == 2

    events = await stream_events(url, key, {"input": asking}, document=STREAM)
    done = [e for e in events if e["__typename"] == "ChatStreamToolCall"]
    assert [(e["index"], e["toolCall"]["name"]) for e in done] == [(0, "get_weather"), (1, "get_time")]
    assert events[-1] == {"__typename": "ChatStreamEnd", "finishReason": "TOOL_CALLS"}

    results = [{"role": "TOOL", "toolCallId": c["id"], "content": f"result {n}"} for n, c in enumerate(calls)]
    messages = [ASK, {"role": "ASSISTANT", "toolCalls": calls}, *results]
    answer = await dev.mutate(CHAT, {"model": model, "messages": messages, "tools": [WEATHER, TIME]})
    assert answer["userErrors"] == []
    if upstream.wire == GEMINI:  # results name their function (no call ids), text goes under "output"
        quoted = [f'Tool result {c["name"]}: {{"output":"result {n}"}}' for n, c in enumerate(calls)]
    else:
        quoted = [f"Tool result {c['id']}: result {n}" for n, c in enumerate(calls)]
    assert answer["message"]["content"] == " | ".join(quoted)
