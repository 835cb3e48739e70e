"""GraphQL over HTTP's media types and status codes (https://graphql.github.io/graphql-over-http/draft/):
`application/graphql-response+json` when the client prefers it, request errors as 4xx without
`data` under it, `application/json` answered as before; the middleware's own errors likewise."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest

from app.db import DatabaseUnavailable
from app.domain.auth import Role
from tests.conftest import LiveServer
from tests.support.factories import Tenant

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
APOLLO_ACCEPT = "application/graphql-response+json,application/json;q=0.9"
URQL_ACCEPT = (
    "application/graphql-response+json, application/graphql+json, application/json, "
    "text/event-stream, multipart/mixed"
)


async def post(
    http: aiohttp.ClientSession, server: LiveServer, body: Any, accept: str | None, **headers: str
) -> tuple[int, str, dict[str, Any], str]:
    """Status, media type, JSON body and X-Request-Id of a POST /graphql."""
    if accept is not None:
        headers["Accept"] = accept
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    headers.setdefault("Content-Type", "application/json")
    async with http.post(f"{server.url}/graphql", data=data, headers=headers) as response:
        return (
            response.status,
            response.content_type,
            orjson.loads(await response.read()),
            response.headers["X-Request-Id"],
        )


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (APOLLO_ACCEPT, GRAPHQL_RESPONSE),
        (URQL_ACCEPT, GRAPHQL_RESPONSE),
        ("application/json;q=0.5, application/graphql-response+json", GRAPHQL_RESPONSE),
        ("application/json, application/graphql-response+json", JSON),
        ("application/graphql-response+json;q=0, application/json", JSON),
        ("application/*;q=0.8, application/graphql-response+json;q=0.9", GRAPHQL_RESPONSE),
        ("text/plain", GRAPHQL_RESPONSE),  # names no JSON type: the spec's default
        (JSON, JSON),
        ("*/*", JSON),  # what graphql-http's audit and clients without an opinion expect
        (None, JSON),
    ],
)
async def test_the_response_media_type_follows_accept(
    http: aiohttp.ClientSession, server: LiveServer, accept: str | None, expected: str
) -> None:
    status, media, body, _ = await post(http, server, {"query": "{ __typename }"}, accept)
    assert (status, media, body) == (200, expected, {"data": {"__typename": "Query"}})


REQUEST_ERRORS = {
    "parse": ({"query": "{"}, "BAD_USER_INPUT"),
    "validation": ({"query": "{ nope }"}, "BAD_USER_INPUT"),
    "coercion": (
        {"query": "query($id: ID!) { node(id: $id) { id } }", "variables": {"id": None}},
        "BAD_USER_INPUT",
    ),
    "limits": ({"query": "{" + " ".join(f"a{i}: __typename" for i in range(40)) + "}"}, "QUERY_TOO_COMPLEX"),
}


@pytest.mark.parametrize("kind", REQUEST_ERRORS)
async def test_request_errors_are_400_without_data_under_graphql_response_json(
    http: aiohttp.ClientSession, server: LiveServer, kind: str
) -> None:
    request, code = REQUEST_ERRORS[kind]
    status, media, body, request_id = await post(http, server, request, GRAPHQL_RESPONSE)
    assert (status, media) == (400, GRAPHQL_RESPONSE)
    assert "data" not in body
    assert [e["extensions"]["code"] for e in body["errors"]] == [code] * len(body["errors"])
    assert {e["extensions"]["requestId"] for e in body["errors"]} == {request_id}


@pytest.mark.parametrize("kind", REQUEST_ERRORS)
async def test_request_errors_stay_200_with_null_data_under_application_json(
    http: aiohttp.ClientSession, server: LiveServer, kind: str
) -> None:
    request, code = REQUEST_ERRORS[kind]
    status, media, body, request_id = await post(http, server, request, JSON)
    assert (status, media, body["data"]) == (200, JSON, None)
    assert body["errors"][0]["extensions"] == {**body["errors"][0]["extensions"], "code": code}
    assert body["errors"][0]["extensions"]["requestId"] == request_id


async def test_field_errors_are_200_under_graphql_response_json(
    http: aiohttp.ClientSession, server: LiveServer
) -> None:
    """Execution ran (and failed in a field): a partial response, not a request error."""
    status, media, body, request_id = await post(
        http, server, {"query": "{ viewer { kind } }"}, GRAPHQL_RESPONSE
    )
    assert (status, media, body["data"]) == (200, GRAPHQL_RESPONSE, None)
    assert body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED", "requestId": request_id}
    assert body["errors"][0]["path"] == ["viewer"]


@pytest.mark.parametrize(
    ("accept", "expected"), [(GRAPHQL_RESPONSE, GRAPHQL_RESPONSE), (None, JSON), (JSON, JSON)]
)
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"variables": {}}, "No GraphQL query found in the request"),
        (b'{"query": ', "Unable to parse request body as JSON"),
        ({"query": 7}, "The GraphQL operation's `query` must be a string or null, if provided."),
        ({"query": "query A { __typename }", "operationName": "B"}, 'Unknown operation named "B".'),
    ],
)
async def test_refused_requests_are_graphql_errors_with_a_code_and_the_request_id(
    http: aiohttp.ClientSession, server: LiveServer, body: Any, reason: str, accept: str | None, expected: str
) -> None:
    status, media, answer, request_id = await post(http, server, body, accept)
    assert (status, media) == (400, expected)
    error = {"message": reason, "extensions": {"code": "BAD_USER_INPUT", "requestId": request_id}}
    assert answer == (
        {"errors": [error]} if expected == GRAPHQL_RESPONSE else {"data": None, "errors": [error]}
    )


async def test_a_mutation_over_get_is_405(http: aiohttp.ClientSession, server: LiveServer) -> None:
    params = {"query": "mutation { __typename }"}
    async with http.get(
        f"{server.url}/graphql", params=params, headers={"Accept": GRAPHQL_RESPONSE}
    ) as response:
        assert (response.status, response.content_type) == (405, GRAPHQL_RESPONSE)
        assert "POST" in response.headers["Allow"]
        body = await response.json(content_type=None)
    assert body["errors"][0]["message"] == "mutations are not allowed when using GET"
    assert "data" not in body


@pytest.mark.parametrize(("accept", "expected"), [(GRAPHQL_RESPONSE, GRAPHQL_RESPONSE), (None, JSON)])
async def test_an_oversized_body_follows_the_media_type_rules(
    http: aiohttp.ClientSession, server: LiveServer, accept: str | None, expected: str
) -> None:
    payload = {"query": "{ __typename }", "variables": {"pad": "x" * 1_100_000}}
    status, media, body, request_id = await post(http, server, payload, accept)
    assert (status, media) == (413, expected)
    assert ("data" in body) is (expected == JSON)
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "requestId": request_id}


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (DatabaseUnavailable("down"), 503, "SERVICE_UNAVAILABLE"),
        (RuntimeError("boom"), 500, "INTERNAL_SERVER_ERROR"),
    ],
)
@pytest.mark.parametrize(("accept", "expected"), [(GRAPHQL_RESPONSE, GRAPHQL_RESPONSE), (JSON, JSON)])
async def test_the_middlewares_failures_follow_the_media_type_rules(
    http: aiohttp.ClientSession,
    server: LiveServer,
    tenant: Tenant,
    monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
    status: int,
    code: str,
    accept: str,
    expected: str,
) -> None:
    """Failures outside GraphQL execution (here: authenticating an event stream reservation)."""

    async def fail(*_args: object) -> None:
        raise failure

    monkeypatch.setattr(server.services.auth, "authenticate", fail)
    headers = {"Accept": accept, "X-API-Key": tenant.keys[Role.DEVELOPER]}
    async with http.put(f"{server.url}/graphql", headers=headers) as response:
        assert (response.status, response.content_type) == (status, expected)
        body = await response.json(content_type=None)
        request_id = response.headers["X-Request-Id"]
    assert ("data" in body) is (expected == JSON)
    assert body["errors"][0]["extensions"] == {"code": code, "requestId": request_id}
