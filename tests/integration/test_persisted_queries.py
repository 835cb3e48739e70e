"""Automatic persisted queries (Apollo's protocol) as a client meets them over HTTP and WebSockets:
an unknown hash, the text sent with its hash, then the hash alone; and what is refused (a wrong
hash, another version, a mutation over GET), with every limit still applied to a persisted document.
Apollo Client itself runs the protocol in tests/contract (`apollo-client-persisted`)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import aiohttp
import pytest

from app.domain.auth import Role
from app.services.demo import seed_demo
from tests.conftest import LiveServer
from tests.integration.test_graphql_limits import nested
from tests.support.factories import Tenant
from tests.support.gateway import CHAT_STREAM, stream_input

GRAPHQL_RESPONSE = "application/graphql-response+json"
VIEWER = "{ viewer { organization { name } } }"


def persisted(query: str, version: object = 1) -> dict[str, Any]:
    digest = hashlib.sha256(query.encode()).hexdigest()
    return {"persistedQuery": {"version": version, "sha256Hash": digest}}


async def post(
    http: aiohttp.ClientSession, server: LiveServer, key: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any], aiohttp.typedefs.LooseHeaders]:
    headers = {"X-API-Key": key, "Accept": GRAPHQL_RESPONSE}
    async with http.post(f"{server.url}/graphql", json=body, headers=headers) as response:
        return response.status, await response.json(content_type=None), response.headers


async def get(
    http: aiohttp.ClientSession, server: LiveServer, key: str, params: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    headers = {"X-API-Key": key, "Accept": GRAPHQL_RESPONSE}
    async with http.get(f"{server.url}/graphql", params=params, headers=headers) as response:
        return response.status, await response.json(content_type=None)


@pytest.fixture
def key(tenant: Tenant) -> str:
    return tenant.keys[Role.ADMIN]


def not_found(body: dict[str, Any]) -> bool:
    (error,) = body["errors"]
    return error["message"] == "PersistedQueryNotFound" and error["extensions"]["code"] == (
        "PERSISTED_QUERY_NOT_FOUND"
    )


async def test_an_unknown_hash_is_not_found_then_the_text_is_kept(
    http: aiohttp.ClientSession, server: LiveServer, key: str
) -> None:
    extensions = persisted(VIEWER)
    status, body, headers = await post(http, server, key, {"extensions": extensions})
    assert status == 200  # as Apollo Server answers it: clients retry on the body, whatever the status
    assert not_found(body)
    assert body["errors"][0]["extensions"]["requestId"]
    assert "no-cache" in headers["Cache-Control"]

    status, body, _ = await post(http, server, key, {"query": VIEWER, "extensions": extensions})
    assert (status, body) == (200, {"data": {"viewer": {"organization": {"name": "Acme"}}}})

    params = {"extensions": json.dumps(extensions)}
    for _ in range(2):
        assert await get(http, server, key, params) == (200, body)
    status, again, _ = await post(http, server, key, {"extensions": extensions})
    assert again == body


async def test_a_hash_that_is_not_the_texts_is_refused_and_nothing_is_kept(
    http: aiohttp.ClientSession, server: LiveServer, key: str
) -> None:
    extensions = persisted("{ viewer { kind } }")
    status, body, _ = await post(http, server, key, {"query": VIEWER, "extensions": extensions})
    assert status == 400
    assert body["errors"][0]["message"] == "provided sha does not match query"
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    _, body, _ = await post(http, server, key, {"extensions": extensions})
    assert not_found(body)


@pytest.mark.parametrize(
    "extensions",
    [
        persisted(VIEWER, version=2),
        persisted(VIEWER, version="1"),
        {"persistedQuery": {"version": 1, "sha256Hash": "ABC"}},
        {"persistedQuery": {"version": 1, "sha256Hash": 12}},
        {"persistedQuery": "yes"},
    ],
)
async def test_another_version_or_a_malformed_hash_is_refused(
    http: aiohttp.ClientSession, server: LiveServer, key: str, extensions: dict[str, Any]
) -> None:
    for body in ({"extensions": extensions}, {"query": VIEWER, "extensions": extensions}):
        status, answer, _ = await post(http, server, key, body)
        assert status == 400
        assert answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "data" not in answer


async def test_a_persisted_mutation_is_refused_over_get(
    http: aiohttp.ClientSession, server: LiveServer, key: str
) -> None:
    mutation = "mutation { __typename }"
    extensions = persisted(mutation)
    status, body, _ = await post(http, server, key, {"query": mutation, "extensions": extensions})
    assert (status, body) == (200, {"data": {"__typename": "Mutation"}})
    for params in (
        {"extensions": json.dumps(extensions)},
        {"query": mutation, "extensions": json.dumps(extensions)},
    ):
        status, body = await get(http, server, key, params)
        assert status == 405
        assert body["errors"][0]["message"] == "mutations are not allowed when using GET"


async def test_a_persisted_document_is_still_validated_and_costed(
    http: aiohttp.ClientSession, server: LiveServer, key: str
) -> None:
    for query, code in (("{ viewer { nope } }", "BAD_USER_INPUT"), (nested(20), "QUERY_TOO_COMPLEX")):
        extensions = persisted(query)
        for body in ({"query": query, "extensions": extensions}, {"extensions": extensions}):
            status, answer, _ = await post(http, server, key, body)
            assert status == 400
            assert [e["extensions"]["code"] for e in answer["errors"]] == [code]


async def test_graphql_transport_ws_runs_a_subscription_by_its_hash(
    http: aiohttp.ClientSession, server: LiveServer
) -> None:
    keys = await seed_demo(server.services)
    assert keys is not None
    extensions = persisted(CHAT_STREAM)
    variables = stream_input()
    ws = await http.ws_connect(f"{server.url}/graphql", protocols=["graphql-transport-ws"])
    await ws.send_json({"type": "connection_init", "payload": {"apiKey": keys.demo_project}})
    assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"

    async def subscribe(operation: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
        await ws.send_json({"id": operation, "type": "subscribe", "payload": payload})
        messages = []
        while not messages or messages[-1]["type"] not in ("complete", "error"):
            messages.append(await ws.receive_json(timeout=10))
        return messages

    (refusal,) = await subscribe("1", {"variables": variables, "extensions": extensions})
    assert refusal["type"] == "error"
    assert not_found({"errors": refusal["payload"]})
    with_text = await subscribe("2", {"query": CHAT_STREAM, "variables": variables, "extensions": extensions})
    by_hash = await subscribe("3", {"variables": variables, "extensions": extensions})
    for messages in (with_text, by_hash):
        kinds = [m["payload"]["data"]["chatStream"]["__typename"] for m in messages if m["type"] == "next"]
        assert (kinds[0], kinds[-1], messages[-1]["type"]) == ("ChatStreamStart", "ChatStreamEnd", "complete")
    await ws.close()


async def test_legacy_graphql_ws_answers_an_unknown_hash(
    http: aiohttp.ClientSession, server: LiveServer, key: str
) -> None:
    ws = await http.ws_connect(f"{server.url}/graphql", protocols=["graphql-ws"])
    await ws.send_json({"type": "connection_init", "payload": {"apiKey": key}})
    assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
    await ws.send_json({"id": "1", "type": "start", "payload": {"extensions": persisted(VIEWER)}})
    refusal = await ws.receive_json(timeout=5)
    while refusal["type"] == "ka":  # the legacy protocol's keep-alive
        refusal = await ws.receive_json(timeout=5)
    assert (refusal["type"], refusal["id"]) == ("error", "1")
    assert not_found({"errors": [refusal["payload"]]})
    await ws.close()


async def test_a_subscription_over_sse_runs_by_its_hash(
    http: aiohttp.ClientSession, server: LiveServer
) -> None:
    keys = await seed_demo(server.services)
    assert keys is not None
    extensions = persisted(CHAT_STREAM)
    headers = {"X-API-Key": keys.demo_project, "Accept": "text/event-stream"}

    async def stream(body: dict[str, Any]) -> str:
        async with http.post(f"{server.url}/graphql", json=body, headers=headers) as response:
            return await response.text()

    unknown = await stream({"variables": stream_input(), "extensions": extensions})
    assert "PersistedQueryNotFound" in unknown
    for body in (
        {"query": CHAT_STREAM, "variables": stream_input(), "extensions": extensions},
        {"variables": stream_input(), "extensions": extensions},
    ):
        events = await stream(body)
        assert "ChatStreamStart" in events
        assert "ChatStreamEnd" in events
