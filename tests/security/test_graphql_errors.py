"""Every GraphQL error carries a code from the closed set and the request id, whoever makes it: the
schema, or the transports themselves (HTTP refusals, WebSocket protocol errors, the subscription
limit). A document with two anonymous operations fails as the spec says, over every transport, and
runs nothing. Malformed requests get a clear 4xx, never a 500 or a dead socket.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from app.domain.auth import Role
from tests.conftest import LiveServer, make_settings, running_server
from tests.fakes.openai_server import OpenAIFake
from tests.support.catalog import create_system_model
from tests.support.factories import Tenant, make_platform_admin_key, make_tenant
from tests.support.gateway import (
    CHAT_STREAM,
    GRAPHQL_TRANSPORT_WS,
    LEGACY_GRAPHQL_WS,
    stream_input,
    user_says,
)
from tests.support.graphql import GraphQLClient
from tests.support.sockets import Socket, codes

CLOSED_SET = {
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "RATE_LIMITED",
    "QUERY_TOO_COMPLEX",
    "BAD_USER_INPUT",
    "SERVICE_UNAVAILABLE",
    "INTERNAL_SERVER_ERROR",
}


async def refusal(response: aiohttp.ClientResponse) -> dict[str, Any]:
    """The one error of a refused HTTP request, checked for its code and request id."""
    assert response.content_type == "application/json", await response.text()
    body = await response.json()
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "requestId": response.headers["X-Request-Id"]}
    result: dict[str, Any] = error
    return result


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('"{ viewer { kind } }"', "Expected a JSON object, got a string."),
        ("42", "Expected a JSON object, got a number."),
        ("1e400", "Unable to parse request body as JSON"),
        ("null", "Expected a JSON object, got null."),
        ("true", "Expected a JSON object, got a boolean."),
        ("[]", "Batching is not enabled"),
        ('[{"query": "{ viewer { kind } }"}]', "Batching is not enabled"),
        ("{", "Unable to parse request body as JSON"),
        ("{}", "No GraphQL query found in the request"),
        ('{"query": 5}', "The GraphQL operation's `query` must be a string or null, if provided."),
        (
            '{"query": "{ viewer { kind } }", "variables": "x"}',
            "The GraphQL operation's `variables` must be an object or null, if provided.",
        ),
    ],
)
async def test_a_body_that_is_not_a_graphql_request_is_a_400_with_a_code(
    server: LiveServer, http: aiohttp.ClientSession, body: str, message: str
) -> None:
    headers = {"Content-Type": "application/json"}
    async with http.post(f"{server.url}/graphql", data=body, headers=headers) as response:
        assert response.status == 400
        assert (await refusal(response))["message"] == message


async def test_other_refused_requests_are_graphql_errors_with_a_code(
    server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant
) -> None:
    url = f"{server.url}/graphql"
    key = {"X-API-Key": tenant.keys[Role.ADMIN]}
    async with http.post(url, data="{ viewer { kind } }", headers={"Content-Type": "text/plain"}) as response:
        assert response.status == 400
        assert (await refusal(response))["message"] == "Unsupported content type"
    async with http.post(url, json={"query": "{ viewer { kind } }", "operationName": "X"}) as response:
        assert response.status == 400
        assert (await refusal(response))["message"] == 'Unknown operation named "X".'
    mutation = 'mutation { projectCreate(input: {organizationId: "x", name: "y"}) { userErrors { code } } }'
    async with http.get(url, params={"query": mutation}, headers=key) as response:
        assert response.status == 405  # GraphQL over HTTP: a mutation is not a GET
        assert (await refusal(response))["message"] == "mutations are not allowed when using GET"
    async with http.patch(url, json={"query": "{ viewer { kind } }"}) as response:
        assert response.status == 405
        await refusal(response)


# ---- two anonymous operations ----------------------------------------------------------------------

LONE = "This anonymous operation must be the only defined operation."


def two_anonymous_key_creations(tenant: Tenant) -> str:
    create = (
        f'apiKeyCreate(input: {{organizationId: "{tenant.organization_gid}", name: "twice", role: ADMIN}})'
        " { secret }"
    )
    return f"mutation {{ {create} }} mutation {{ {create} }}"


async def key_count(server: LiveServer) -> int:
    count: int = await server.services.db.fetchval("SELECT count(*) FROM api_keys")
    return count


@pytest.mark.parametrize("transport", ["POST", "GET", "SSE", GRAPHQL_TRANSPORT_WS])
async def test_two_anonymous_operations_fail_and_run_nothing(
    transport: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant
) -> None:
    key = tenant.keys[Role.ADMIN]
    url = f"{server.url}/graphql"
    queries = "{ viewer { kind } } { viewer { kind } }"
    document = queries if transport == "GET" else two_anonymous_key_creations(tenant)
    before = await key_count(server)
    if transport == GRAPHQL_TRANSPORT_WS:
        async with Socket.open(http, server.url, {"apiKey": key}, transport) as socket:
            result = await socket.run(document)
        errors = result["errors"]
        assert result["data"] == []
    else:
        headers = {
            "X-API-Key": key,
            "Accept": "text/event-stream" if transport == "SSE" else "application/json",
        }
        if transport == "GET":
            request = http.get(url, params={"query": document}, headers=headers)
        else:
            request = http.post(url, json={"query": document}, headers=headers)
        async with request as response:
            text = await response.text()
        if transport == "SSE":  # one `next` event, then `complete`
            text = next(line for line in text.splitlines() if line.startswith("data:")).removeprefix("data:")
        body = json.loads(text)
        assert body["data"] is None
        errors = body["errors"]
    assert [e["message"] for e in errors] == [LONE, LONE]
    assert {e["extensions"]["code"] for e in errors} == {"BAD_USER_INPUT"}
    assert all(e["extensions"]["requestId"] for e in errors)
    assert await key_count(server) == before


async def test_legacy_graphql_ws_refuses_what_it_cannot_run_with_a_code(
    server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant
) -> None:
    """Two anonymous operations or an unknown operation name over legacy graphql-ws is the
    client's mistake, not an unexpected error of the server."""
    subscription = "subscription { chatStream(input: {messages: []}) { __typename } }"
    async with Socket.open(
        http, server.url, {"apiKey": tenant.keys[Role.ADMIN]}, LEGACY_GRAPHQL_WS
    ) as socket:
        assert codes(await socket.run("{ viewer { kind } }")) == []  # the protocol carries queries too
        assert codes(await socket.run("{ viewer { kind } } { viewer { kind } }")) == ["BAD_USER_INPUT"]
        assert codes(await socket.run(f"{subscription} {subscription}")) == ["BAD_USER_INPUT"]
        result = await socket.run(subscription.replace("subscription", "subscription A"))
        assert codes(result) == []  # the control: a subscription runs
        await socket.ws.send_json(
            {"id": "x", "type": "start", "payload": {"query": subscription, "operationName": "B"}}
        )
        message = await socket.receive()
        assert message["payload"]["extensions"]["code"] == "BAD_USER_INPUT"
        assert message["payload"]["message"] == 'Unknown operation named "B".'


async def test_an_unknown_operation_name_over_graphql_transport_ws_is_bad_user_input(
    server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant
) -> None:
    async with Socket.open(
        http, server.url, {"apiKey": tenant.keys[Role.ADMIN]}, GRAPHQL_TRANSPORT_WS
    ) as socket:
        await socket.ws.send_json(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": "{ viewer { kind } }", "operationName": "B"},
            }
        )
        message = await socket.receive()
    assert message["type"] == "error"
    assert [e["extensions"]["code"] for e in message["payload"]] == ["BAD_USER_INPUT"]


# ---- the subscription limit -------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [GRAPHQL_TRANSPORT_WS, LEGACY_GRAPHQL_WS])
async def test_the_subscription_limit_is_rate_limited_with_a_request_id(
    protocol: str, database_url: str, http: aiohttp.ClientSession, stalling: OpenAIFake
) -> None:
    async with running_server(make_settings(database_url, max_subscriptions_per_connection=1)) as live:
        tenant = await make_tenant(live.services, "Acme")
        admin = GraphQLClient(http, live.url, await make_platform_admin_key(live.services))
        model = await create_system_model(admin, "slow", modelUrl=f"{stalling.url}/v1")
        variables = stream_input(user_says("Hi"), model=model["id"])
        start = "subscribe" if protocol == GRAPHQL_TRANSPORT_WS else "start"
        payload = {"query": CHAT_STREAM, "variables": variables}
        async with Socket.open(http, live.url, {"apiKey": tenant.keys[Role.ADMIN]}, protocol) as socket:
            await socket.ws.send_json({"id": "1", "type": start, "payload": payload})
            for _ in range(500):
                if stalling.open_streams:
                    break
                await asyncio.sleep(0.01)
            await socket.ws.send_json({"id": "2", "type": start, "payload": payload})
            while (message := await socket.receive()).get("id") != "2":
                pass
    assert message["type"] == "error"
    errors = message["payload"]
    second = {"errors": errors if isinstance(errors, list) else [errors]}
    (error,) = second["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["requestId"]
    assert error["message"] == "At most 1 operations may run at once on one connection."


# ---- malformed WebSocket messages -------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        [1, 2],
        "start",
        {"type": "start", "id": "1"},
        {"type": "start", "id": "1", "payload": {"variables": {}}},
        {"type": "start", "id": "1", "payload": {"query": 5}},
        {"type": "stop"},
    ],
)
async def test_legacy_graphql_ws_answers_a_malformed_message_and_stays_usable(
    server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant, message: object
) -> None:
    subscription = "subscription { chatStream(input: {messages: []}) { __typename } }"
    async with Socket.open(
        http, server.url, {"apiKey": tenant.keys[Role.ADMIN]}, LEGACY_GRAPHQL_WS
    ) as socket:
        await socket.ws.send_json(message)
        answer = await socket.receive()
        assert answer["type"] == "error"
        assert answer["payload"]["message"].startswith("Invalid message: ")
        assert answer["payload"]["extensions"]["code"] == "BAD_USER_INPUT"
        assert codes(await socket.run(subscription)) == []  # still serving


@pytest.mark.parametrize(
    "message",
    [[1, 2], "subscribe", {"type": "subscribe", "id": "1", "payload": {"query": 5}}],
)
async def test_graphql_transport_ws_closes_on_a_malformed_message_with_4400(
    server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant, message: object
) -> None:
    async with Socket.open(
        http, server.url, {"apiKey": tenant.keys[Role.ADMIN]}, GRAPHQL_TRANSPORT_WS
    ) as socket:
        await socket.ws.send_json(message)
        answer = await socket.ws.receive(timeout=5)
    assert answer.type == aiohttp.WSMsgType.CLOSE
    assert answer.data == 4400
    assert answer.extra.startswith("Invalid message: ")


async def test_a_refused_legacy_connection_says_unauthenticated(
    server: LiveServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(f"{server.url}/graphql", protocols=[LEGACY_GRAPHQL_WS]) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"apiKey": "mg_0000_wrong"}})
        message = await ws.receive_json(timeout=5)
    assert message["type"] == "connection_error"
    assert message["payload"]["extensions"]["code"] == "UNAUTHENTICATED"
    assert message["payload"]["extensions"]["code"] in CLOSED_SET
