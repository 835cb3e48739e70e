"""Tool calls over GraphQL, end to end: the agent loop through `chat` and `chatStream` (the model
calls a tool, the client sends the assistant's turn back with the result, the model finishes) on the
offline ECHO model and on the fake OpenAI upstream; images and JSON answers on ECHO; the capability
refusals (nothing reaches the upstream) and a fallback that lacks a capability being skipped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from app.domain.auth import Role
from app.domain.calls import ChatMessage, ImagePart, TextPart, ToolDefinition
from app.domain.enums import ChatRole
from app.domain.tokens import IMAGE_TOKENS, estimate_prompt_tokens
from app.providers.base import ChatRequest
from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeError, OpenAIFake, openai_fake_server
from tests.support.catalog import create_system_model, create_user_model
from tests.support.factories import Tenant
from tests.support.gateway import stream_events, usage_rows, ws_url
from tests.support.graphql import GraphQLClient

CHAT = """mutation($input: ChatInput!) { chat(input: $input) {
  message { role content toolCalls { id name arguments } } finishReason
  servedBy { name } usage { inputTokens outputTokens } warnings { code }
  userErrors { code field message } } }"""
STREAM = """subscription($input: ChatInput!) { chatStream(input: $input) {
  __typename
  ... on ChatStreamDelta { text }
  ... on ChatStreamToolCallDelta { index id name argumentsDelta }
  ... on ChatStreamToolCall { index toolCall { id name arguments } }
  ... on ChatStreamEnd { finishReason }
  ... on ChatStreamError { code message }
} }"""
WEATHER: dict[str, Any] = {
    "name": "get_weather",
    "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
ASK = {"role": "USER", "content": "Weather in Paris?"}
RESULT = '{"temp": 21}'
CAT = "https://example.com/cat.png"
ALL = {"streaming": True, "tools": True, "vision": True, "structuredOutput": True}


@pytest.fixture
async def upstream() -> AsyncIterator[OpenAIFake]:
    async with openai_fake_server(reply="Hello.") as fake:
        yield fake


@pytest.fixture
def dev(gql: GraphQLClient, tenant: Tenant) -> GraphQLClient:
    return gql.with_key(tenant.keys[Role.DEVELOPER])


async def model_on(admin: GraphQLClient, where: str, upstream: OpenAIFake, **fields: Any) -> str:
    """A system model on ECHO or on the fake OpenAI upstream; its id."""
    if where == "echo":
        fields = {"provider": "ECHO", "modelUrl": None, "capabilities": ALL, **fields}
    else:
        fields = {"modelUrl": f"{upstream.url}/v1", "capabilities": ALL, **fields}
    model = await create_system_model(admin, f"{where}-model", **fields)
    return str(model["id"])


def turn_back(call: dict[str, Any]) -> list[dict[str, Any]]:
    """The conversation after the model's tool call: the call sent back, and the tool's result."""
    return [
        ASK,
        {"role": "ASSISTANT", "toolCalls": [call]},
        {"role": "TOOL", "toolCallId": call["id"], "content": RESULT},
    ]


@pytest.mark.parametrize("where", ["echo", "openai"])
async def test_the_agent_loop_through_chat(
    where: str, gql: GraphQLClient, admin_key: str, dev: GraphQLClient, upstream: OpenAIFake
) -> None:
    model = await model_on(gql.with_key(admin_key), where, upstream)
    first = await dev.mutate(CHAT, {"model": model, "messages": [ASK], "tools": [WEATHER]})
    assert first["userErrors"] == []
    assert first["finishReason"] == "TOOL_CALLS"
    (call,) = first["message"]["toolCalls"]
    assert call["name"] == "get_weather"
    assert isinstance(orjson.loads(call["arguments"])["city"], str)

    second = await dev.mutate(CHAT, {"model": model, "messages": turn_back(call), "tools": [WEATHER]})
    assert second["userErrors"] == []
    assert second["finishReason"] == "STOP"
    assert second["message"]["toolCalls"] == []
    assert RESULT in second["message"]["content"]
    if where == "openai":  # the upstream saw the tool, the call and its result in its own shapes
        body = upstream.requests[-1].body
        assert body["tools"][0]["function"]["name"] == "get_weather"
        assert body["messages"][-1] == {"role": "tool", "tool_call_id": call["id"], "content": RESULT}


@pytest.mark.parametrize("where", ["echo", "openai"])
async def test_the_agent_loop_through_chat_stream(
    where: str, server: LiveServer, gql: GraphQLClient, admin_key: str, tenant: Tenant, upstream: OpenAIFake
) -> None:
    model = await model_on(gql.with_key(admin_key), where, upstream)
    key = tenant.keys[Role.DEVELOPER]
    events = await stream_events(
        ws_url(server.url),
        key,
        {"input": {"model": model, "messages": [ASK], "tools": [WEATHER]}},
        document=STREAM,
    )
    kinds = [e["__typename"] for e in events]
    deltas = [e for e in events if e["__typename"] == "ChatStreamToolCallDelta"]
    (call,) = [e["toolCall"] for e in events if e["__typename"] == "ChatStreamToolCall"]
    assert len(deltas) > 1, "the arguments arrive in pieces"
    assert (deltas[0]["id"], deltas[0]["name"]) == (call["id"], "get_weather")
    assert "".join(d["argumentsDelta"] for d in deltas) == call["arguments"]
    assert kinds.index("ChatStreamToolCall") > kinds.index("ChatStreamToolCallDelta")
    assert events[-1] == {"__typename": "ChatStreamEnd", "finishReason": "TOOL_CALLS"}

    events = await stream_events(
        ws_url(server.url),
        key,
        {"input": {"model": model, "messages": turn_back(call), "tools": [WEATHER]}},
        document=STREAM,
    )
    assert events[-1] == {"__typename": "ChatStreamEnd", "finishReason": "STOP"}
    assert RESULT in "".join(e["text"] for e in events if e["__typename"] == "ChatStreamDelta")


async def test_echo_counts_images_and_answers_json(
    gql: GraphQLClient, admin_key: str, dev: GraphQLClient, upstream: OpenAIFake
) -> None:
    model = await model_on(gql.with_key(admin_key), "echo", upstream)
    parts = [
        {"text": "What is this?"},
        {"image": {"url": "https://example.com/cat.png", "detail": "LOW"}},
        {"image": {"data": "iVBORw0KGgo=", "mediaType": "image/png"}},
    ]
    seen = await dev.mutate(CHAT, {"model": model, "messages": [{"role": "USER", "parts": parts}]})
    assert seen["userErrors"] == []
    assert seen["message"]["content"] == "Echo: I see 2 images. What is this?"

    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    shaped = await dev.mutate(
        CHAT,
        {
            "model": model,
            "messages": [ASK],
            "responseFormat": {"type": "JSON_SCHEMA", "name": "city", "schema": schema, "strict": True},
        },
    )
    assert orjson.loads(shaped["message"]["content"]) == {"city": "Weather in Paris?"}


async def test_images_and_tool_definitions_count_toward_the_context_window(
    gql: GraphQLClient, admin_key: str, dev: GraphQLClient, upstream: OpenAIFake
) -> None:
    model = await model_on(gql.with_key(admin_key), "echo", upstream, contextWindow=1500, maxOutputTokens=100)
    image = {"image": {"url": "https://example.com/cat.png"}}
    one = await dev.mutate(CHAT, {"model": model, "messages": [{"role": "USER", "parts": [image]}]})
    assert one["userErrors"] == []
    two = await dev.mutate(CHAT, {"model": model, "messages": [{"role": "USER", "parts": [image, image]}]})
    assert [e["code"] for e in two["userErrors"]] == ["CONTEXT_TOO_LONG"]
    long_tool = {**WEATHER, "description": "word " * 1500}
    tools = await dev.mutate(CHAT, {"model": model, "messages": [ASK], "tools": [long_tool]})
    assert [e["code"] for e in tools["userErrors"]] == ["CONTEXT_TOO_LONG"]


# ---- capabilities ------------------------------------------------------------------------------

REFUSALS: dict[str, tuple[dict[str, Any], str, list[str]]] = {
    "tools": ({"tools": [WEATHER]}, "TOOLS", ["input", "tools"]),
    "tool-history": (
        {"messages": turn_back({"id": "call_1", "name": "get_weather", "arguments": "{}"})},
        "TOOLS",
        ["input", "messages", "1"],
    ),
    "images": (
        {"messages": [{"role": "USER", "parts": [{"image": {"url": "https://example.com/cat.png"}}]}]},
        "VISION",
        ["input", "messages", "0", "parts"],
    ),
    "json-schema": (
        {"responseFormat": {"type": "JSON_SCHEMA", "name": "x", "schema": {"type": "object"}}},
        "STRUCTURED_OUTPUT",
        ["input", "responseFormat"],
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_a_call_needing_a_capability_the_model_lacks_is_refused_before_the_upstream(
    case: str, server: LiveServer, gql: GraphQLClient, admin_key: str, tenant: Tenant, dev: GraphQLClient,
    upstream: OpenAIFake,
) -> None:  # fmt: skip
    fields, capability, field = REFUSALS[case]
    model = await model_on(gql.with_key(admin_key), "openai", upstream, capabilities={"streaming": True})
    payload = await dev.mutate(CHAT, {"model": model, "messages": [ASK], **fields})
    (error,) = payload["userErrors"]
    assert error["code"] == "CAPABILITY_NOT_SUPPORTED"
    assert error["field"] == field
    assert f"capability {capability}" in error["message"]
    assert "openai-model" in error["message"]

    events = await stream_events(
        ws_url(server.url),
        tenant.keys[Role.DEVELOPER],
        {"input": {"model": model, "messages": [ASK], **fields}},
    )
    assert [(e["__typename"], e.get("code")) for e in events] == [
        ("ChatStreamError", "CAPABILITY_NOT_SUPPORTED")
    ]
    assert upstream.requests == []


async def test_a_fallback_lacking_a_needed_capability_is_skipped(
    gql: GraphQLClient, admin_key: str, tenant: Tenant, dev: GraphQLClient
) -> None:
    admin = gql.with_key(admin_key)
    async with (
        openai_fake_server(reply="A", error=FakeError.server_error()) as a,
        openai_fake_server(reply="B") as b,
        openai_fake_server(reply="C") as c,
    ):
        tools_only = {"streaming": True, "tools": True}
        alpha = await create_system_model(admin, "alpha", modelUrl=f"{a.url}/v1", capabilities=tools_only)
        beta = await create_system_model(
            admin, "beta", modelUrl=f"{b.url}/v1", capabilities={"streaming": True}
        )
        gamma = await create_system_model(admin, "gamma", modelUrl=f"{c.url}/v1", capabilities=tools_only)
        await create_user_model(
            gql.with_key(tenant.keys[Role.ADMIN]),
            organizationId=tenant.organization_gid,
            scope="PROJECT",
            projectId=tenant.project_gid,
            name="primary",
            parentModelId=alpha["id"],
            isDefault=True,
            fallbacks=[{"modelId": beta["id"]}, {"modelId": gamma["id"]}],
        )
        with_tools = {"projectId": tenant.project_gid, "messages": [ASK], "tools": [WEATHER]}
        payload = await dev.mutate(CHAT, with_tools)
        assert payload["userErrors"] == []
        assert payload["servedBy"]["name"] == "gamma"
        assert [w["code"] for w in payload["warnings"]] == ["FALLBACK_USED"]
        assert b.requests == []
        # Without tools, the same route falls back to beta, which needs no capability for it.
        plain = await dev.mutate(CHAT, {"projectId": tenant.project_gid, "messages": [ASK]})
        assert plain["servedBy"]["name"] == "beta"


async def test_a_cut_stream_estimates_its_input_with_tools_and_images(
    server: LiveServer, gql: GraphQLClient, admin_key: str, tenant: Tenant
) -> None:
    """The provider reports no usage before the client goes away: the input is estimated, tool
    definitions and a fixed figure per image included."""
    async with openai_fake_server(
        reply="one two three four", chunks=4, stall_after=2, stall_seconds=30
    ) as fake:
        model = await model_on(gql.with_key(admin_key), "openai", fake)
        message = ChatMessage(ChatRole.USER, parts=(TextPart("What is this?"), ImagePart(url=CAT)))
        fields = {
            "model": model,
            "messages": [{"role": "USER", "parts": [{"text": "What is this?"}, {"image": {"url": CAT}}]}],
            "tools": [WEATHER],
        }
        await stream_events(ws_url(server.url), tenant.keys[Role.DEVELOPER], {"input": fields}, stop_after=2)
        (row,) = await usage_rows(server.services, 1)
    tool = ToolDefinition(WEATHER["name"], WEATHER["description"], WEATHER["parameters"])
    request = ChatRequest(messages=(message,), tools=(tool,))
    assert row["status"] == "CANCELLED"
    assert row["input_tokens"] == estimate_prompt_tokens(request.texts()) + IMAGE_TOKENS
