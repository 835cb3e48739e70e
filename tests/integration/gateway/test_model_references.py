"""The gateway resolves a model reference — an id, a name, or the project default — one way for
every door, through its model cache: a key that may call models but not read the catalog can name
one, and a deprecation's facts (successor, dates) come with the answer."""

from __future__ import annotations

import aiohttp

from tests.conftest import LiveServer
from tests.support.catalog import at, create_system_model
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient

API_KEY_CREATE = """mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) {
  secret userErrors { code field message } } }"""


async def test_a_key_that_may_only_invoke_names_a_model_over_rest(
    server: LiveServer, gql: GraphQLClient, admin_key: str, tenant: Tenant, http: aiohttp.ClientSession
) -> None:
    admin = gql.with_key(admin_key)
    successor = await create_system_model(admin, "Echo two", provider="ECHO", providerModelId="echo")
    await create_system_model(
        admin,
        "Echo one",
        provider="ECHO",
        providerModelId="echo",
        endOfLifeAt=at(30),
        replacementModelId=successor["id"],
    )
    payload = await gql.with_key(tenant.admin_key).mutate(
        API_KEY_CREATE,
        {"organizationId": tenant.organization_gid, "name": "invoke only", "permissions": ["llm:invoke"]},
    )
    assert payload["userErrors"] == [], payload["userErrors"]
    body = {"model": "Echo one", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {payload['secret']}"}
    async with http.post(f"{server.url}/v1/chat/completions", json=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Link"] == f'</v1/models/{successor["id"]}>; rel="successor-version"'
        assert response.headers["Sunset"]
        assert response.headers["Deprecation"].startswith("@")
        assert (await response.json())["modelgate"]["servedBy"]["name"] == "Echo one"
    body["model"] = "Echo three"
    async with http.post(f"{server.url}/v1/chat/completions", json=body, headers=headers) as response:
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "model_not_found"
