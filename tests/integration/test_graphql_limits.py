"""Limits that refuse a request before anything executes, and the shape of top-level errors."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from app.domain.auth import Role
from tests.conftest import LiveServer, make_settings, running_server
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient, error_codes


def nested(depth: int) -> str:
    """viewer -> organization -> projects -> nodes -> organization -> … at least `depth` levels."""
    inner = "name"
    levels = 2
    while levels < depth:
        inner = f"organization {{ projects(first: 1) {{ nodes {{ {inner} }} }} }}"
        levels += 3
    return f"{{ viewer {{ {inner} }} }}"


@pytest.fixture
def client(gql: GraphQLClient, tenant: Tenant) -> GraphQLClient:
    return gql.with_key(tenant.keys[Role.ADMIN])


async def test_a_query_within_the_limits_runs(client: GraphQLClient) -> None:
    assert "errors" not in await client.post(nested(10))


async def test_too_deep_is_refused_before_execution(client: GraphQLClient) -> None:
    body = await client.post(nested(20))
    assert body["data"] is None
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"]
    assert body["errors"][0]["extensions"]["requestId"] == body["_request_id"]


async def test_too_costly_is_refused(client: GraphQLClient) -> None:
    query = """{ viewer { organization { projects(first: 100) { nodes { organization {
        projects(first: 100) { nodes { organization { projects(first: 100) { nodes { name } } } } }
        } } } } } }"""
    body = await client.post(query)
    assert error_codes(body) == ["QUERY_TOO_COMPLEX"]
    assert body["errors"][0]["extensions"]["cost"] > 20000


async def test_a_variable_page_size_is_costed_at_the_maximum(client: GraphQLClient) -> None:
    query = """query($n: Int) { viewer { organization { projects(first: $n) { nodes { organization {
        projects(first: $n) { nodes { organization { projects(first: $n) { nodes { name } } } } }
        } } } } } }"""
    assert error_codes(await client.post(query, {"n": 1})) == ["QUERY_TOO_COMPLEX"]


async def test_too_many_aliases_are_refused(client: GraphQLClient) -> None:
    query = "{ " + " ".join(f"a{i}: viewer {{ kind }}" for i in range(31)) + " }"
    assert error_codes(await client.post(query)) == ["QUERY_TOO_COMPLEX"]


async def test_too_many_tokens_are_refused(client: GraphQLClient) -> None:
    query = "{ viewer { " + " ".join(["kind"] * 6000) + " } }"
    assert error_codes(await client.post(query)) == ["QUERY_TOO_COMPLEX"]


async def test_page_size_is_capped_at_100(client: GraphQLClient, tenant: Tenant) -> None:
    for first in (0, 101):
        body = await client.post(
            "query($id: ID!, $n: Int) { apiKeys(organizationId: $id, first: $n) { nodes { name } } }",
            {"id": tenant.organization_gid, "n": first},
        )
        assert error_codes(body) == ["BAD_USER_INPUT"], first


async def test_oversized_body_is_413_with_a_graphql_error(
    server: LiveServer, http: aiohttp.ClientSession
) -> None:
    payload = {"query": "{ viewer { kind } }", "variables": {"pad": "x" * 1_100_000}}
    async with http.post(f"{server.url}/graphql", json=payload) as response:
        assert response.status == 413
        body = await response.json()
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["requestId"] == response.headers["X-Request-Id"]


async def test_invalid_documents_are_bad_user_input(client: GraphQLClient) -> None:
    for query in ("{ viewer { nope } }", "{ viewer ", "query { organization(id: 1, extra: 2) { name } }"):
        body = await client.post(query)
        assert set(error_codes(body)) == {"BAD_USER_INPUT"}, query


async def test_get_runs_queries_but_never_mutations(
    server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant
) -> None:
    key = tenant.keys[Role.ADMIN]
    params = {"query": "{ viewer { kind } }", "api_key": key}
    async with http.get(f"{server.url}/graphql", params=params) as response:
        assert (await response.json())["data"]["viewer"]["kind"] == "API_KEY"
    mutation = 'mutation { projectCreate(input: {organizationId: "x", name: "y"}) { userErrors { code } } }'
    async with http.get(f"{server.url}/graphql", params={"query": mutation, "api_key": key}) as response:
        assert response.status == 405  # GraphQL over HTTP: Method Not Allowed


async def test_unexpected_failures_are_masked_and_logged_with_the_request_id(
    client: GraphQLClient,
    server: LiveServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def explode(*_args: object) -> None:
        raise RuntimeError("internal detail that must not leak")

    monkeypatch.setattr(server.services.organizations, "referenced", explode)
    with caplog.at_level(logging.ERROR, logger="modelgate.graphql"):
        body = await client.post("{ viewer { organization { name } } }")
    error = body["errors"][0]
    assert error["message"] == "Unexpected error."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": body["_request_id"]}
    assert "internal detail" not in str(body)
    logged = [r for r in caplog.records if getattr(r, "requestId", None) == body["_request_id"]]
    assert logged
    assert "internal detail that must not leak" in str(logged[0].exc_info)


async def test_introspection_and_suggestions_can_be_switched_off(
    database_url: str, http: aiohttp.ClientSession, tenant: Tenant
) -> None:
    settings = make_settings(database_url, introspection=False, field_suggestions=False, graphiql=False)
    async with running_server(settings) as live:
        client = GraphQLClient(http, live.url, tenant.keys[Role.ADMIN])
        body = await client.post("{ __schema { types { name } } }")
        assert body["data"] is None
        assert set(error_codes(body)) == {"BAD_USER_INPUT"}
        body = await client.post("{ viewer { organizatio { name } } }")
        assert "Did you mean" not in body["errors"][0]["message"]
        async with http.get(f"{live.url}/graphql", headers={"Accept": "text/html"}) as response:
            assert response.status == 404


async def test_graphiql_is_served_to_browsers_by_default(
    server: LiveServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{server.url}/graphql", headers={"Accept": "text/html"}) as response:
        assert response.status == 200
        assert "graphiql" in (await response.text()).lower()
