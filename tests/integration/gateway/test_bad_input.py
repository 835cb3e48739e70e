"""Bad input to generate, chat, embed and chatStream: a user error with the field's path (or a
ChatStreamError), no provider call and no usage row. Values just inside the limits are served."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from gql.transport.exceptions import TransportQueryError

from app.domain.auth import Role
from tests.conftest import LiveServer
from tests.fakes.openai_server import OpenAIFake
from tests.support.catalog import create_system_model
from tests.support.factories import Tenant
from tests.support.gateway import (
    CHAT,
    EMBED,
    GENERATE,
    TRANSPORTS,
    kinds,
    stream_over,
    usage_rows,
    user_says,
)
from tests.support.graphql import GraphQLClient, error_codes

DOCUMENTS = {"generate": GENERATE, "chat": CHAT, "embed": EMBED}
HI = user_says("Hi")


@pytest.fixture
async def models(admin: GraphQLClient, fake_a: OpenAIFake) -> dict[str, str]:
    url = f"{fake_a.url}/v1"
    chat = await create_system_model(admin, "gpt-chat", modelUrl=url)
    embedder = await create_system_model(
        admin, "text-embedder", modelUrl=url, modelGroup="EMBEDDING", contextWindow=8000, maxOutputTokens=None
    )
    return {"chat": chat["id"], "embed": embedder["id"]}


def with_model(operation: str, models: dict[str, str], values: dict[str, Any]) -> dict[str, Any]:
    return {"model": models["embed" if operation == "embed" else "chat"], **values}


BAD = [
    ("chat", {"messages": []}, [("REQUIRED", ["input", "messages"])]),
    ("chat", {"messages": user_says("")}, [("REQUIRED", ["input", "messages", "0", "content"])]),
    (
        "chat",
        {"messages": [*HI, {"role": "ASSISTANT", "content": "  \n "}]},
        [("REQUIRED", ["input", "messages", "1", "content"])],
    ),
    ("generate", {"prompt": ""}, [("REQUIRED", ["input", "prompt"])]),
    ("generate", {"prompt": " \t "}, [("REQUIRED", ["input", "prompt"])]),
    ("chat", {"messages": HI, "temperature": -0.1}, [("OUT_OF_RANGE", ["input", "temperature"])]),
    ("chat", {"messages": HI, "temperature": 2.1}, [("OUT_OF_RANGE", ["input", "temperature"])]),
    ("generate", {"prompt": "Hi", "temperature": 2.1}, [("OUT_OF_RANGE", ["input", "temperature"])]),
    ("chat", {"messages": HI, "maxTokens": 0}, [("OUT_OF_RANGE", ["input", "maxTokens"])]),
    ("generate", {"prompt": "Hi", "maxTokens": -5}, [("OUT_OF_RANGE", ["input", "maxTokens"])]),
    ("chat", {"messages": HI, "systemPrompt": "x" * 50_001}, [("TOO_LONG", ["input", "systemPrompt"])]),
    ("generate", {"prompt": "Hi", "systemPrompt": "x" * 50_001}, [("TOO_LONG", ["input", "systemPrompt"])]),
    ("embed", {"texts": [f"text {i}" for i in range(101)]}, [("TOO_LONG", ["input", "texts"])]),
    ("embed", {"texts": []}, [("REQUIRED", ["input", "texts"])]),
    ("embed", {"texts": ["fine", ""]}, [("REQUIRED", ["input", "texts", "1"])]),
    (
        "chat",
        {"messages": HI, "temperature": -1, "maxTokens": 0},
        [("OUT_OF_RANGE", ["input", "temperature"]), ("OUT_OF_RANGE", ["input", "maxTokens"])],
    ),
]
BAD_IDS = [
    "chat-no-messages",
    "chat-empty-content",
    "chat-blank-second-content",
    "generate-empty-prompt",
    "generate-blank-prompt",
    "temperature-below-0",
    "temperature-above-2",
    "generate-temperature-above-2",
    "max-tokens-0",
    "generate-max-tokens-negative",
    "system-prompt-too-long",
    "generate-system-prompt-too-long",
    "101-texts",
    "no-texts",
    "empty-text",
    "two-problems",
]


@pytest.mark.parametrize(("operation", "values", "expected"), BAD, ids=BAD_IDS)
async def test_bad_input_is_a_user_error_without_a_provider_call_or_usage(
    operation: str, values: dict[str, Any], expected: list[tuple[str, list[str]]],
    server: LiveServer, dev: GraphQLClient, models: dict[str, str], fake_a: OpenAIFake,
) -> None:  # fmt: skip
    payload = await dev.mutate(DOCUMENTS[operation], with_model(operation, models, values))
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == expected
    assert all(e["message"] for e in payload["userErrors"])
    assert payload["servedBy"] is None
    assert payload["usage"] is None
    assert fake_a.requests == []
    assert await usage_rows(server.services) == []


STREAM_BAD = [(values, expected[0][0]) for operation, values, expected in BAD if operation == "chat"]
STREAM_IDS = [i for i, (operation, _, _) in zip(BAD_IDS, BAD, strict=True) if operation == "chat"]


@pytest.mark.parametrize(("values", "code"), STREAM_BAD, ids=STREAM_IDS)
async def test_bad_input_to_chat_stream_is_an_error_event(
    values: dict[str, Any], code: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant,
    models: dict[str, str], fake_a: OpenAIFake,
) -> None:  # fmt: skip
    events = await stream_over(
        TRANSPORTS[0],
        http,
        server.url,
        tenant.keys[Role.DEVELOPER],
        {"input": {"model": models["chat"], **values}},
    )
    assert kinds(events) == ["ChatStreamError"]
    assert events[0]["code"] == code
    assert events[0]["retryable"] is False
    assert fake_a.requests == []
    assert await usage_rows(server.services) == []


@pytest.mark.parametrize("role", ["ROBOT", "user", ""])
async def test_an_unknown_role_is_refused_by_the_schema(
    role: str, server: LiveServer, dev: GraphQLClient, models: dict[str, str], fake_a: OpenAIFake
) -> None:
    body = await dev.post(
        CHAT, {"input": {"model": models["chat"], "messages": [{"role": role, "content": "Hi"}]}}
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "ChatRole" in body["errors"][0]["message"]
    assert fake_a.requests == []
    assert await usage_rows(server.services) == []


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_unknown_role_is_refused_on_chat_stream(
    transport: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant, models: dict[str, str],
    fake_a: OpenAIFake,
) -> None:  # fmt: skip
    variables = {"input": {"model": models["chat"], "messages": [{"role": "ROBOT", "content": "Hi"}]}}
    with pytest.raises(TransportQueryError) as raised:
        await stream_over(transport, http, server.url, tenant.keys[Role.DEVELOPER], variables)
    assert "ChatRole" in str(raised.value)
    assert fake_a.requests == []


@pytest.mark.parametrize("operation", ["generate", "chat", "embed"])
async def test_a_model_id_of_another_type_is_a_user_error_on_the_model_field(
    operation: str, server: LiveServer, dev: GraphQLClient, tenant: Tenant, fake_a: OpenAIFake
) -> None:
    inputs: dict[str, dict[str, Any]] = {
        "generate": {"prompt": "Hi"},
        "chat": {"messages": HI},
        "embed": {"texts": ["Hi"]},
    }
    values = inputs[operation]
    for bad_id in (tenant.project_gid, "not-an-id"):
        payload = await dev.mutate(DOCUMENTS[operation], {**values, "model": bad_id})
        assert [e["field"] for e in payload["userErrors"]] == [["input", "model"]], payload
    assert fake_a.requests == []
    assert await usage_rows(server.services) == []


async def test_values_at_the_limits_are_served(
    server: LiveServer, dev: GraphQLClient, models: dict[str, str], fake_a: OpenAIFake
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("chat", {"messages": HI, "temperature": 0, "maxTokens": 1}),
        ("chat", {"messages": HI, "temperature": 2, "systemPrompt": "x" * 50_000}),
        ("generate", {"prompt": "Hi", "temperature": 2.0, "maxTokens": 16000}),
        ("embed", {"texts": [f"text {i}" for i in range(100)]}),
    ]
    for operation, values in calls:
        payload = await dev.mutate(DOCUMENTS[operation], with_model(operation, models, values))
        assert payload["userErrors"] == [], (operation, payload["userErrors"])
    assert len(fake_a.requests) == len(calls)
    assert fake_a.requests[0].body["temperature"] == 0
    assert len(await usage_rows(server.services, len(calls))) == len(calls)
