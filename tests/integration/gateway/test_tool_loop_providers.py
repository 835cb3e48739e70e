"""The same tool loop, JSON answer and image through GraphQL on a fake of every provider that supports
them (issue 16's "done means"): `chat` returns a tool call with finish TOOL_CALLS, the client sends the
assistant's turn back with the tool's result and the model finishes with text; `chatStream` does the
same with argument deltas before the complete call; a JSON_SCHEMA response format answers JSON of that
schema; an image URL and an inline image reach the provider. Each fake records what came, so every
case also checks the provider's own wire shapes: the tool definitions, the tool result turn, the
structured-output mechanism and the image parts (Gemini and Bedrock take bytes only: the URL's image
is downloaded from an https image host on loopback, through the outbound guard that the test
settings open to loopback).

One test per provider runs every case on one server and database, which keeps the matrix quick."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from app.config import Settings
from app.domain.auth import Role
from tests.conftest import LiveServer, make_settings
from tests.fakes.tool_rules import value_for
from tests.support.catalog import create_system_model
from tests.support.factories import Tenant
from tests.support.gateway import stream_events, ws_url
from tests.support.graphql import GraphQLClient
from tests.support.image_server import https_image_server
from tests.support.provider_upstreams import (
    ANTHROPIC,
    BEDROCK,
    CHAT_COMPLETIONS,
    GEMINI,
    PROVIDERS,
    RESPONSES,
    Upstream,
    upstream_for,
)
from tests.support.tool_requests import PNG

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
ASK = {"role": "USER", "content": "Weather in Paris?"}
RESULT = '{"temp": 21}'
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temperature": {"type": "integer"}},
    "required": ["city", "temperature"],
    "additionalProperties": False,
}
PNG_BASE64 = base64.b64encode(PNG).decode()
ALL = {"streaming": True, "tools": True, "vision": True, "structuredOutput": True}


@pytest.fixture(params=PROVIDERS)
async def upstream(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[Upstream]:
    async with upstream_for(request.param, monkeypatch, tmp_path) as upstream:
        yield upstream


@pytest.fixture
def settings(database_url: str, upstream: Upstream) -> Settings:
    return make_settings(database_url, **upstream.settings)


@pytest.fixture
async def image_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[str]:
    async with https_image_server({"/cat.png": (PNG, "image/png")}, monkeypatch, tmp_path) as url:
        yield url


def turn_back(call: dict[str, Any]) -> list[dict[str, Any]]:
    """The conversation after the model's tool call: the call sent back, and the tool's result."""
    return [
        ASK,
        {"role": "ASSISTANT", "toolCalls": [call]},
        {"role": "TOOL", "toolCallId": call["id"], "content": RESULT},
    ]


async def test_tools_json_and_images_on_every_provider(
    upstream: Upstream,
    server: LiveServer,
    gql: GraphQLClient,
    admin_key: str,
    tenant: Tenant,
    image_server: str,
) -> None:
    created = await create_system_model(
        gql.with_key(admin_key), f"{upstream.provider}-model", capabilities=ALL, **upstream.model
    )
    model, key = str(created["id"]), tenant.keys[Role.DEVELOPER]
    dev = gql.with_key(key)
    await the_agent_loop_through_chat(upstream, dev, model)
    await the_agent_loop_through_chat_stream(upstream, ws_url(server.url), key, model)
    await a_json_schema_answer(upstream, dev, ws_url(server.url), key, model)
    await images_by_url_and_by_data(upstream, dev, model, f"{image_server}/cat.png")


# ---- the cases -----------------------------------------------------------------------------------


async def the_agent_loop_through_chat(upstream: Upstream, dev: GraphQLClient, model: str) -> None:
    first = await dev.mutate(CHAT, {"model": model, "messages": [ASK], "tools": [WEATHER]})
    assert first["userErrors"] == []
    assert first["finishReason"] == "TOOL_CALLS"
    (call,) = first["message"]["toolCalls"]
    assert call["name"] == "get_weather"
    assert orjson.loads(call["arguments"]) == {"city": "city"}  # the fake fills the schema
    assert tool_names(upstream, upstream.bodies()[-1]) == ["get_weather"]

    second = await dev.mutate(CHAT, {"model": model, "messages": turn_back(call), "tools": [WEATHER]})
    assert second["userErrors"] == []
    assert second["finishReason"] == "STOP"
    assert second["message"]["toolCalls"] == []
    assert second["message"]["content"].startswith("Tool result ")
    assert_tool_turn(upstream, upstream.bodies()[-1], call)


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
    assert_tool_turn(upstream, upstream.bodies()[-1], call)


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
    assert_structured_output(upstream, upstream.bodies()[-1])

    events = await stream_events(url, key, {"input": shaped}, document=STREAM)
    assert {e["__typename"] for e in events} == {"ChatStreamStart", "ChatStreamDelta", "ChatStreamEnd"}
    assert events[-1] == {"__typename": "ChatStreamEnd", "finishReason": "STOP"}
    assert_fits_the_schema("".join(e["text"] for e in events if e["__typename"] == "ChatStreamDelta"))
    assert_structured_output(upstream, upstream.bodies()[-1])


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
    assert_images(upstream, upstream.bodies()[-1], url)


# ---- what reached the provider, in its wire format --------------------------------------------------


def tool_names(upstream: Upstream, body: dict[str, Any]) -> list[str]:
    """The names of the tools declared, checking each declaration's shape."""
    if upstream.wire == CHAT_COMPLETIONS:
        for tool in body["tools"]:
            assert tool["type"] == "function"
            assert tool["function"]["parameters"] == PARAMETERS
        return [tool["function"]["name"] for tool in body["tools"]]
    if upstream.wire == RESPONSES:
        assert all(t["type"] == "function" and t["parameters"] == PARAMETERS for t in body["tools"])
        return [tool["name"] for tool in body["tools"]]
    if upstream.wire == ANTHROPIC:
        assert all(t["input_schema"] == PARAMETERS for t in body["tools"])
        return [tool["name"] for tool in body["tools"]]
    if upstream.wire == GEMINI:
        (group,) = body["tools"]
        return [d["name"] for d in group["functionDeclarations"]]
    specs = [tool["toolSpec"] for tool in body["toolConfig"]["tools"]]
    assert all(spec["inputSchema"] == {"json": PARAMETERS} for spec in specs)
    return [spec["name"] for spec in specs]


def assert_tool_turn(upstream: Upstream, body: dict[str, Any], call: dict[str, Any]) -> None:
    """The model's call and the tool's result went back as the provider's last two turns."""
    arguments = orjson.loads(call["arguments"])
    if upstream.wire == CHAT_COMPLETIONS:
        *_, assistant, result = body["messages"]
        (sent,) = assistant["tool_calls"]
        assert (sent["id"], sent["function"]["name"]) == (call["id"], "get_weather")
        assert orjson.loads(sent["function"]["arguments"]) == arguments
        assert result == {"role": "tool", "tool_call_id": call["id"], "content": RESULT}
    elif upstream.wire == RESPONSES:
        *_, sent, result = body["input"]
        assert (sent["type"], sent["call_id"], sent["name"]) == ("function_call", call["id"], "get_weather")
        assert result == {"type": "function_call_output", "call_id": call["id"], "output": RESULT}
    elif upstream.wire == ANTHROPIC:
        *_, assistant, result = body["messages"]
        assert assistant["role"] == "assistant"
        assert assistant["content"][-1] == {
            "type": "tool_use",
            "id": call["id"],
            "name": "get_weather",
            "input": arguments,
        }
        assert result == {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": RESULT}],
        }
    elif upstream.wire == GEMINI:
        *_, model_turn, result = body["contents"]
        assert model_turn["role"] == "model"
        assert model_turn["parts"][-1]["functionCall"] == {"name": "get_weather", "args": arguments}
        assert result == {
            "role": "user",
            "parts": [{"functionResponse": {"name": "get_weather", "response": orjson.loads(RESULT)}}],
        }
    else:
        *_, assistant, result = body["messages"]
        assert assistant["content"][-1] == {
            "toolUse": {"toolUseId": call["id"], "name": "get_weather", "input": arguments}
        }
        assert result == {
            "role": "user",
            "content": [{"toolResult": {"toolUseId": call["id"], "content": [{"text": RESULT}]}}],
        }


def assert_structured_output(upstream: Upstream, body: dict[str, Any]) -> None:
    """The schema went by the provider's own mechanism: a response format, a response schema, or a
    forced tool whose input is the answer (Anthropic, Bedrock)."""
    if upstream.wire == CHAT_COMPLETIONS:
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["schema"] == SCHEMA
    elif upstream.wire == RESPONSES:
        assert body["text"]["format"]["type"] == "json_schema"
        assert body["text"]["format"]["schema"] == SCHEMA
    elif upstream.wire == ANTHROPIC:
        choice = body["tool_choice"]
        assert (choice["type"], choice["name"]) == ("tool", "json_answer")
        assert [(t["name"], t["input_schema"]) for t in body["tools"]] == [("json_answer", SCHEMA)]
    elif upstream.wire == GEMINI:
        config = body["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        assert config["responseJsonSchema"] == SCHEMA
    else:
        tool_config = body["toolConfig"]
        assert tool_config["toolChoice"] == {"tool": {"name": "json_answer"}}
        (tool,) = tool_config["tools"]
        assert (tool["toolSpec"]["name"], tool["toolSpec"]["inputSchema"]) == (
            "json_answer",
            {"json": SCHEMA},
        )
    assert value_for(SCHEMA) == {"city": "city", "temperature": 1}  # what the fake answers to it


def assert_images(upstream: Upstream, body: dict[str, Any], url: str) -> None:
    """The image by URL and the inline one, in the provider's shape, after the text."""
    data_url = f"data:image/png;base64,{PNG_BASE64}"
    if upstream.wire == CHAT_COMPLETIONS:
        (message,) = body["messages"]
        assert message["content"] == [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": url}},
            {"type": "image_url", "image_url": {"url": data_url}},
        ]
    elif upstream.wire == RESPONSES:
        (item,) = body["input"]
        assert item["content"] == [
            {"type": "input_text", "text": "What is this?"},
            {"type": "input_image", "image_url": url, "detail": "auto"},
            {"type": "input_image", "image_url": data_url, "detail": "auto"},
        ]
    elif upstream.wire == ANTHROPIC:
        (message,) = body["messages"]
        assert message["content"] == [
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "url", "url": url}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_BASE64}},
        ]
    elif upstream.wire == GEMINI:
        (content,) = body["contents"]
        inline = {"inlineData": {"mimeType": "image/png", "data": PNG_BASE64}}
        assert content["parts"] == [{"text": "What is this?"}, inline, inline]
    else:
        (message,) = body["messages"]
        image = {"image": {"format": "png", "source": {"bytes": PNG_BASE64}}}
        assert message["content"] == [{"text": "What is this?"}, image, image]
