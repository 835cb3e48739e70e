"""Every rule on rich chat input (message parts and images, tool calls and results, tools, tool
choice, response format) answers a user error on its field, through chat and chatStream, and a
refused call reaches no model and writes no usage row."""

from __future__ import annotations

from typing import Any

import pytest

from app.domain.auth import Role
from tests.conftest import LiveServer
from tests.support.catalog import create_system_model
from tests.support.factories import Tenant
from tests.support.gateway import CHAT, error_event, stream_events, usage_rows, ws_url
from tests.support.graphql import GraphQLClient

ASK = {"role": "USER", "content": "Weather in Paris?"}
TOOL = {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}
CALL = {"id": "call_1", "name": "get_weather", "arguments": "{}"}
ASSISTANT_CALLS = {"role": "ASSISTANT", "toolCalls": [CALL]}
PNG = "iVBORw0KGgo="


def user_parts(*parts: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "USER", "parts": list(parts)}]


def image(**fields: Any) -> dict[str, Any]:
    return {"image": fields}


# name: (ChatInput fields, code, field)
CASES: dict[str, tuple[dict[str, Any], str, list[str]]] = {
    "empty message": ({"messages": [{"role": "USER"}]}, "REQUIRED", ["input", "messages", "0", "content"]),
    "content and parts": (
        {"messages": [{"role": "USER", "content": "a", "parts": [{"text": "b"}]}]},
        "INVALID",
        ["input", "messages", "0", "parts"],
    ),
    "empty text part": (
        {"messages": user_parts({"text": " "})},
        "REQUIRED",
        ["input", "messages", "0", "parts", "0", "text"],
    ),
    "http image": (
        {"messages": user_parts({"text": "a"}, image(url="http://example.com/a.png"))},
        "INVALID",
        ["input", "messages", "0", "parts", "1", "image", "url"],
    ),
    "image with url and data": (
        {"messages": user_parts(image(url="https://example.com/a.png", data=PNG, mediaType="image/png"))},
        "INVALID",
        ["input", "messages", "0", "parts", "0", "image"],
    ),
    "bad base64": (
        {"messages": user_parts(image(data="not base64!", mediaType="image/png"))},
        "INVALID",
        ["input", "messages", "0", "parts", "0", "image", "data"],
    ),
    "data without media type": (
        {"messages": user_parts(image(data=PNG))},
        "REQUIRED",
        ["input", "messages", "0", "parts", "0", "image", "mediaType"],
    ),
    "unsupported media type": (
        {"messages": user_parts(image(data=PNG, mediaType="image/bmp"))},
        "INVALID",
        ["input", "messages", "0", "parts", "0", "image", "mediaType"],
    ),
    "image from the assistant": (
        {"messages": [ASK, {"role": "ASSISTANT", "parts": [image(url="https://example.com/a.png")]}]},
        "INVALID",
        ["input", "messages", "1", "parts", "0", "image"],
    ),
    "tool calls from the user": (
        {"messages": [{"role": "USER", "content": "hi", "toolCalls": [CALL]}]},
        "INVALID",
        ["input", "messages", "0", "toolCalls"],
    ),
    "tool call arguments not JSON": (
        {"messages": [ASK, {"role": "ASSISTANT", "toolCalls": [{**CALL, "arguments": "{city"}]}]},
        "INVALID",
        ["input", "messages", "1", "toolCalls", "0", "arguments"],
    ),
    "tool call with a bad name": (
        {"messages": [ASK, {"role": "ASSISTANT", "toolCalls": [{**CALL, "name": "get weather"}]}]},
        "INVALID",
        ["input", "messages", "1", "toolCalls", "0", "name"],
    ),
    "tool call id used twice": (
        {"messages": [ASK, {"role": "ASSISTANT", "toolCalls": [CALL, CALL]}]},
        "DUPLICATE",
        ["input", "messages", "1", "toolCalls", "1", "id"],
    ),
    "tool result without its call id": (
        {"messages": [ASK, ASSISTANT_CALLS, {"role": "TOOL", "content": "21"}]},
        "REQUIRED",
        ["input", "messages", "2", "toolCallId"],
    ),
    "tool result answering no call": (
        {"messages": [ASK, ASSISTANT_CALLS, {"role": "TOOL", "toolCallId": "call_9", "content": "21"}]},
        "INVALID",
        ["input", "messages", "2", "toolCallId"],
    ),
    "call id on a user message": (
        {"messages": [{**ASK, "toolCallId": "call_1"}]},
        "INVALID",
        ["input", "messages", "0", "toolCallId"],
    ),
    "tool name": ({"tools": [{**TOOL, "name": "get weather"}]}, "INVALID", ["input", "tools", "0", "name"]),
    "tool name too long": (
        {"tools": [{**TOOL, "name": "x" * 65}]},
        "INVALID",
        ["input", "tools", "0", "name"],
    ),
    "tool defined twice": ({"tools": [TOOL, TOOL]}, "DUPLICATE", ["input", "tools", "1", "name"]),
    "parameters not an object schema": (
        {"tools": [{**TOOL, "parameters": {"type": "string"}}]},
        "INVALID",
        ["input", "tools", "0", "parameters"],
    ),
    "parameters not a JSON object": (
        {"tools": [{**TOOL, "parameters": ["type", "object"]}]},
        "INVALID",
        ["input", "tools", "0", "parameters"],
    ),
    "named tool not defined": (
        {"tools": [TOOL], "toolChoice": {"mode": "TOOL", "name": "get_time"}},
        "INVALID",
        ["input", "toolChoice", "name"],
    ),
    "mode TOOL without a name": (
        {"tools": [TOOL], "toolChoice": {"mode": "TOOL"}},
        "REQUIRED",
        ["input", "toolChoice", "name"],
    ),
    "a name without mode TOOL": (
        {"tools": [TOOL], "toolChoice": {"mode": "AUTO", "name": "get_weather"}},
        "INVALID",
        ["input", "toolChoice", "name"],
    ),
    "REQUIRED without tools": ({"toolChoice": {"mode": "REQUIRED"}}, "REQUIRED", ["input", "tools"]),
    "schema without its name": (
        {"responseFormat": {"type": "JSON_SCHEMA", "schema": {"type": "object"}}},
        "REQUIRED",
        ["input", "responseFormat", "name"],
    ),
    "JSON_SCHEMA without a schema": (
        {"responseFormat": {"type": "JSON_SCHEMA", "name": "city"}},
        "REQUIRED",
        ["input", "responseFormat", "schema"],
    ),
    "schema not an object": (
        {"responseFormat": {"type": "JSON_SCHEMA", "name": "city", "schema": "object"}},
        "INVALID",
        ["input", "responseFormat", "schema"],
    ),
    "schema without JSON_SCHEMA": (
        {"responseFormat": {"type": "JSON_OBJECT", "schema": {"type": "object"}}},
        "INVALID",
        ["input", "responseFormat", "schema"],
    ),
}


@pytest.fixture
async def model(gql: GraphQLClient, admin_key: str) -> str:
    every = {"streaming": True, "tools": True, "vision": True, "structuredOutput": True}
    created = await create_system_model(
        gql.with_key(admin_key), "echo", provider="ECHO", modelUrl=None, capabilities=every
    )
    return str(created["id"])


async def test_each_rule_answers_a_user_error_on_its_field_and_writes_nothing(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant, model: str
) -> None:
    # One server for every case (a server per case would take a minute and a half).
    key = tenant.keys[Role.DEVELOPER]
    wrong: dict[str, Any] = {}
    for case, (fields, code, field) in CASES.items():
        input = {"model": model, "messages": [ASK], **fields}
        payload = await gql.with_key(key).mutate(CHAT, input)
        chat = [(e["code"], e["field"]) for e in payload["userErrors"]]
        error = error_event(await stream_events(ws_url(server.url), key, {"input": input}))
        if chat != [(code, field)] or payload["message"] is not None or error["code"] != code:
            wrong[case] = (chat, error)
    assert wrong == {}
    assert await usage_rows(server.services) == []


async def test_every_problem_is_reported_at_once(gql: GraphQLClient, tenant: Tenant, model: str) -> None:
    input = {
        "model": model,
        "messages": [ASK, {"role": "TOOL", "content": "21"}],
        "tools": [{**TOOL, "name": "bad name"}],
        "responseFormat": {"type": "JSON_SCHEMA", "name": "city"},
    }
    payload = await gql.with_key(tenant.keys[Role.DEVELOPER]).mutate(CHAT, input)
    assert [e["field"] for e in payload["userErrors"]] == [
        ["input", "messages", "1", "toolCallId"],
        ["input", "tools", "0", "name"],
        ["input", "responseFormat", "schema"],
    ]


async def test_a_part_with_both_text_and_image_is_refused_by_the_schema(
    gql: GraphQLClient, tenant: Tenant, model: str
) -> None:
    both = {"text": "a", "image": {"url": "https://example.com/a.png"}}
    input = {"model": model, "messages": user_parts(both)}
    body = await gql.with_key(tenant.keys[Role.DEVELOPER]).post(CHAT, {"input": input})
    assert body.get("data") is None
    assert "exactly one" in body["errors"][0]["message"].lower()
