"""API keys over real HTTP GraphQL: create (secret once), use, permissions, expiry, revoke, last use."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from app.domain.auth import ROLE_PERMISSIONS, Role
from app.domain.ids import decode_any, encode_id
from tests.conftest import LiveServer, make_settings, running_server
from tests.support.factories import Tenant, make_tenant
from tests.support.graphql import GraphQLClient, error_codes

KEY_FIELDS = (
    "id name prefix role permissions isPlatformAdmin expiresAt revokedAt lastUsedAt createdAt "
    "project { name }"
)

CREATE = f"""
mutation Create($input: ApiKeyCreateInput!) {{
  apiKeyCreate(input: $input) {{ secret apiKey {{ {KEY_FIELDS} }} userErrors {{ code field message }} }}
}}"""

REVOKE = f"""
mutation Revoke($input: ApiKeyRevokeInput!) {{
  apiKeyRevoke(input: $input) {{ apiKey {{ {KEY_FIELDS} }} userErrors {{ code field message }} }}
}}"""

KEYS = f"""
query Keys($id: ID!, $first: Int, $after: String) {{
  apiKeys(organizationId: $id, first: $first, after: $after) {{
    nodes {{ {KEY_FIELDS} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""

VIEWER = "{ viewer { permissions organization { name } project { name } } }"


def errors_of(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


def key_input(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    return {"organizationId": tenant.organization_gid, "name": "ci", **fields}


async def create_key(client: GraphQLClient, tenant: Tenant, **fields: Any) -> tuple[str, dict[str, Any]]:
    """(secret, apiKey) of a new key of `tenant`."""
    payload = await client.mutate(CREATE, key_input(tenant, **fields))
    assert payload["userErrors"] == []
    return payload["secret"], payload["apiKey"]


async def list_keys(client: GraphQLClient, tenant: Tenant) -> list[dict[str, Any]]:
    data = await client.data(KEYS, {"id": tenant.organization_gid, "first": 100})
    keys: list[dict[str, Any]] = data["apiKeys"]["nodes"]
    return keys


async def key_names(client: GraphQLClient, tenant: Tenant) -> list[str]:
    return [k["name"] for k in await list_keys(client, tenant)]


def without_request_ids(body: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in body.items() if k != "_request_id"}
    body["errors"] = [
        {**e, "extensions": {k: v for k, v in e["extensions"].items() if k != "requestId"}}
        for e in body.get("errors", [])
    ]
    return body


def role_permissions(role: Role) -> list[str]:
    return sorted(p.value for p in ROLE_PERMISSIONS[role])


# ---- apiKeyCreate and using the key ---------------------------------------------------------------


async def test_the_secret_is_shown_once_and_works_in_every_place_a_key_may_be_sent(
    gql: GraphQLClient, tenant: Tenant
) -> None:
    admin = gql.with_key(tenant.admin_key)
    payload = await admin.mutate(CREATE, key_input(tenant, name=" deploy bot ", role="VIEWER"))
    assert payload["userErrors"] == []
    secret, key = payload["secret"], payload["apiKey"]
    assert secret.startswith(f"mg_{key['prefix']}_")
    assert len(secret) > len(f"mg_{key['prefix']}_") + 30
    decoded = decode_any(key["id"])
    assert decoded is not None
    assert decoded[0] == "ApiKey"
    assert key["name"] == "deploy bot"
    assert (key["role"], key["isPlatformAdmin"], key["project"]) == ("VIEWER", False, None)
    assert (key["expiresAt"], key["revokedAt"], key["lastUsedAt"]) == (None, None, None)

    expected = {
        "permissions": role_permissions(Role.VIEWER),
        "organization": {"name": "Acme"},
        "project": None,
    }
    # X-API-Key
    assert (await gql.with_key(secret).data(VIEWER))["viewer"] == expected
    # Authorization: Bearer
    body = await gql.post(VIEWER, headers={"Authorization": f"Bearer {secret}"})
    assert body["data"]["viewer"] == expected
    # ?api_key= on a POST and on a GET
    async with gql.session.post(
        f"{gql.base_url}/graphql", params={"api_key": secret}, json={"query": VIEWER}
    ) as response:
        assert (await response.json())["data"]["viewer"] == expected
    async with gql.session.get(
        f"{gql.base_url}/graphql", params={"api_key": secret, "query": VIEWER}
    ) as response:
        assert (await response.json())["data"]["viewer"] == expected

    # The secret is never shown again: not in the list, not through node(id).
    secret_part = secret.split("_", 2)[2]
    listing = await admin.post(KEYS, {"id": tenant.organization_gid})
    node = await admin.post(
        f"query($id: ID!) {{ node(id: $id) {{ ... on ApiKey {{ {KEY_FIELDS} }} }} }}", {"id": key["id"]}
    )
    for body in (listing, node):
        assert "errors" not in body
        text = json.dumps(body)
        assert secret_part not in text
    assert key["id"] in json.dumps(listing)
    assert node["data"]["node"]["prefix"] == key["prefix"]


async def test_a_key_gets_its_roles_permissions_by_default(
    gql: GraphQLClient, tenant: Tenant, subtests: pytest.Subtests
) -> None:
    for role in Role:
        with subtests.test(role=role.value):
            secret, key = await create_key(gql.with_key(tenant.admin_key), tenant, role=role.value)
            assert (key["role"], key["permissions"]) == (role.value, role_permissions(role))
            viewer = (await gql.with_key(secret).data(VIEWER))["viewer"]
            assert viewer["permissions"] == role_permissions(role)


async def test_the_default_role_is_developer(gql: GraphQLClient, tenant: Tenant) -> None:
    _, key = await create_key(gql.with_key(tenant.admin_key), tenant)
    assert (key["role"], key["permissions"]) == ("DEVELOPER", role_permissions(Role.DEVELOPER))


async def test_explicit_permissions_replace_the_roles(gql: GraphQLClient, tenant: Tenant) -> None:
    secret, key = await create_key(
        gql.with_key(tenant.admin_key), tenant, role="ADMIN", permissions=["llm:invoke", "models:read"]
    )
    assert key["permissions"] == ["llm:invoke", "models:read"]
    assert (await gql.with_key(secret).data(VIEWER))["viewer"]["permissions"] == ["llm:invoke", "models:read"]
    # The key has no keys:manage, whatever its role says.
    body = await gql.with_key(secret).post(KEYS, {"id": tenant.organization_gid})
    assert error_codes(body) == ["FORBIDDEN"]


INVALID_CREATES: list[tuple[dict[str, Any], list[tuple[str, list[str]]]]] = [
    ({"name": ""}, [("REQUIRED", ["input", "name"])]),
    ({"name": "   "}, [("REQUIRED", ["input", "name"])]),
    ({"name": "k" * 201}, [("TOO_LONG", ["input", "name"])]),
    (
        {"permissions": ["models:read", "models:fly", "llm:invoke", ""]},
        [("INVALID", ["input", "permissions", "1"]), ("INVALID", ["input", "permissions", "3"])],
    ),
    ({"permissions": ["platform:admin"]}, [("PERMISSION_DENIED", ["input", "permissions"])]),
    ({"expiresAt": "2020-01-01T00:00:00+00:00"}, [("INVALID", ["input", "expiresAt"])]),
    ({"projectId": "bogus"}, [("NOT_FOUND", ["input", "projectId"])]),
]


async def test_api_key_create_rejects_bad_input_and_writes_nothing(
    gql: GraphQLClient, tenant: Tenant, subtests: pytest.Subtests
) -> None:
    admin = gql.with_key(tenant.admin_key)
    before = await key_names(admin, tenant)
    for fields, errors in INVALID_CREATES:
        with subtests.test(fields=fields):
            payload = await admin.mutate(CREATE, key_input(tenant, **fields))
            assert (payload["secret"], payload["apiKey"]) == (None, None)
            assert errors_of(payload) == errors
            assert await key_names(admin, tenant) == before


async def test_a_project_of_another_organization_is_not_found(
    gql: GraphQLClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    payload = await gql.with_key(tenant.admin_key).mutate(
        CREATE, key_input(tenant, projectId=other_tenant.project_gid)
    )
    assert errors_of(payload) == [("NOT_FOUND", ["input", "projectId"])]


async def test_platform_admin_cannot_be_granted_even_by_a_platform_admin(
    gql: GraphQLClient, admin_key: str, tenant: Tenant
) -> None:
    payload = await gql.with_key(admin_key).mutate(
        CREATE, key_input(tenant, permissions=["models:read", "platform:admin"])
    )
    assert errors_of(payload) == [("PERMISSION_DENIED", ["input", "permissions"])]
    # ... while any organization permission is fine for a platform admin.
    _, key = await create_key(gql.with_key(admin_key), tenant, role="ADMIN")
    assert key["permissions"] == role_permissions(Role.ADMIN)


async def test_nobody_grants_more_than_they_have(gql: GraphQLClient, tenant: Tenant) -> None:
    admin = gql.with_key(tenant.admin_key)
    limited_secret, _ = await create_key(admin, tenant, permissions=["keys:manage", "models:read"])
    limited = gql.with_key(limited_secret)
    before = await key_names(admin, tenant)

    too_much = await limited.mutate(CREATE, key_input(tenant, permissions=["models:read", "llm:invoke"]))
    assert errors_of(too_much) == [("PERMISSION_DENIED", ["input", "permissions"])]
    assert "llm:invoke" in too_much["userErrors"][0]["message"]
    by_role = await limited.mutate(CREATE, key_input(tenant, role="VIEWER"))  # viewer has usage:read
    assert errors_of(by_role) == [("PERMISSION_DENIED", ["input", "role"])]
    assert "usage:read" in by_role["userErrors"][0]["message"]
    assert await key_names(admin, tenant) == before

    _, subset = await create_key(limited, tenant, permissions=["models:read"])
    assert subset["permissions"] == ["models:read"]


@pytest.mark.parametrize("role", [Role.DEVELOPER, Role.VIEWER])
async def test_keys_manage_is_needed_to_list_create_and_revoke_keys(
    gql: GraphQLClient, tenant: Tenant, role: Role
) -> None:
    client = gql.with_key(tenant.keys[role])
    listing = await client.post(KEYS, {"id": tenant.organization_gid})
    assert error_codes(listing) == ["FORBIDDEN"]
    created = await client.post(CREATE, {"input": key_input(tenant, role="VIEWER", permissions=[])})
    assert error_codes(created) == ["FORBIDDEN"]
    assert created["data"] is None

    admin = gql.with_key(tenant.admin_key)
    keys = await list_keys(admin, tenant)
    assert len(keys) == len(Role)
    revoked = await client.post(REVOKE, {"input": {"id": keys[0]["id"]}})
    assert error_codes(revoked) == ["FORBIDDEN"]
    # lastUsedAt moves on with every request; nothing else may change.
    assert [(k["id"], k["revokedAt"]) for k in await list_keys(admin, tenant)] == [
        (k["id"], None) for k in keys
    ]


async def test_a_project_key_manages_only_its_projects_keys(
    gql: GraphQLClient, admin_key: str, tenant: Tenant
) -> None:
    admin = gql.with_key(tenant.admin_key)
    sibling = await admin.mutate(
        "mutation($input: ProjectCreateInput!) { projectCreate(input: $input) { project { id } } }",
        {"organizationId": tenant.organization_gid, "name": "Sibling"},
    )
    sibling_id = sibling["project"]["id"]
    scoped_secret, scoped = await create_key(
        admin, tenant, name="scoped", role="ADMIN", projectId=tenant.project_gid
    )
    _, sibling_key = await create_key(admin, tenant, name="sibling key", projectId=sibling_id)
    organization_key = (await list_keys(admin, tenant))[0]
    assert organization_key["name"] == "Acme admin"
    client = gql.with_key(scoped_secret)

    assert await key_names(client, tenant) == ["scoped"]
    own_key = await client.mutate(
        CREATE, key_input(tenant, name="own", role="VIEWER", projectId=tenant.project_gid)
    )
    assert own_key["userErrors"] == []
    assert await key_names(client, tenant) == ["scoped", "own"]
    for other in (sibling_key, organization_key):
        node = await client.data("query($id: ID!) { node(id: $id) { id } }", {"id": other["id"]})
        assert node["node"] is None
        revoked = await client.mutate(REVOKE, {"id": other["id"]})
        assert errors_of(revoked) == [("NOT_FOUND", ["input", "id"])]
    for project_id in (None, sibling_id):
        body = await client.post(CREATE, {"input": key_input(tenant, role="VIEWER", projectId=project_id)})
        assert error_codes(body) == ["FORBIDDEN"]
    assert scoped["project"] == {"name": "Acme project"}
    everything = await list_keys(gql.with_key(admin_key), tenant)
    assert len(everything) == len(Role) + 3
    assert all(k["revokedAt"] is None for k in everything)


async def test_api_keys_need_a_key(gql: GraphQLClient, tenant: Tenant) -> None:
    body = await gql.post(KEYS, {"id": tenant.organization_gid})
    assert error_codes(body) == ["UNAUTHENTICATED"]


async def test_api_keys_paginate(gql: GraphQLClient, tenant: Tenant) -> None:
    admin = gql.with_key(tenant.admin_key)
    for i in range(2):
        await create_key(admin, tenant, name=f"extra {i}")
    first = (await admin.data(KEYS, {"id": tenant.organization_gid, "first": 3}))["apiKeys"]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = (
        await admin.data(
            KEYS, {"id": tenant.organization_gid, "first": 3, "after": first["pageInfo"]["endCursor"]}
        )
    )["apiKeys"]
    assert rest["pageInfo"]["hasNextPage"] is False
    names = [k["name"] for k in first["nodes"] + rest["nodes"]]
    assert names == ["Acme admin", "Acme developer", "Acme viewer", "extra 0", "extra 1"]


# ---- expiry ---------------------------------------------------------------------------------------


async def test_a_key_stops_working_when_it_expires(gql: GraphQLClient, tenant: Tenant) -> None:
    expires_at = datetime.now(UTC) + timedelta(seconds=1.5)
    secret, key = await create_key(gql.with_key(tenant.admin_key), tenant, expiresAt=expires_at.isoformat())
    assert datetime.fromisoformat(key["expiresAt"]) == expires_at
    assert (await gql.with_key(secret).data(VIEWER))["viewer"]["organization"] == {"name": "Acme"}

    await asyncio.sleep((expires_at - datetime.now(UTC)).total_seconds() + 0.05)
    body = await gql.with_key(secret).post(VIEWER)
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert body["errors"][0]["message"] == "authentication required"


async def test_a_key_expired_in_the_database_is_refused(
    gql: GraphQLClient, server: LiveServer, tenant: Tenant
) -> None:
    secret, key = await create_key(gql.with_key(tenant.admin_key), tenant)
    await server.services.db.execute(
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE prefix = $1", key["prefix"]
    )
    body = await gql.with_key(secret).post(VIEWER)
    assert error_codes(body) == ["UNAUTHENTICATED"]


# ---- apiKeyRevoke ---------------------------------------------------------------------------------


async def test_a_revoked_key_stops_working_at_once_and_revoking_twice_is_fine(
    gql: GraphQLClient, tenant: Tenant
) -> None:
    admin = gql.with_key(tenant.admin_key)
    secret, key = await create_key(admin, tenant)
    assert (await gql.with_key(secret).data(VIEWER))["viewer"]["organization"] == {"name": "Acme"}  # cached

    payload = await admin.mutate(REVOKE, {"id": key["id"]})
    assert payload["userErrors"] == []
    revoked = payload["apiKey"]
    assert revoked["id"] == key["id"]
    assert revoked["revokedAt"] is not None

    body = await gql.with_key(secret).post(VIEWER)
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert body["data"] is None

    again = await admin.mutate(REVOKE, {"id": key["id"]})
    assert again["userErrors"] == []
    # The first revocation time stays. (lastUsedAt may have been flushed meanwhile.)
    assert {**again["apiKey"], "lastUsedAt": None} == {**revoked, "lastUsedAt": None}
    listed = {k["id"]: k for k in await list_keys(admin, tenant)}
    assert listed[key["id"]]["revokedAt"] == revoked["revokedAt"]
    # The other keys are untouched.
    assert all(k["revokedAt"] is None for k in listed.values() if k["id"] != key["id"])
    assert (await admin.data(VIEWER))["viewer"]["organization"] == {"name": "Acme"}


async def test_revoking_a_missing_key_is_not_found(gql: GraphQLClient, tenant: Tenant) -> None:
    for key_id in ("nope", encode_id("ApiKey", uuid.uuid4()), tenant.project_gid):
        payload = await gql.with_key(tenant.admin_key).mutate(REVOKE, {"id": key_id})
        assert payload["apiKey"] is None
        assert errors_of(payload) == [("NOT_FOUND", ["input", "id"])], key_id


# ---- last use -------------------------------------------------------------------------------------


async def last_used_at(client: GraphQLClient, tenant: Tenant, key_id: str) -> str | None:
    keys = {k["id"]: k for k in await list_keys(client, tenant)}
    value: str | None = keys[key_id]["lastUsedAt"]
    return value


async def test_last_use_is_recorded(gql: GraphQLClient, tenant: Tenant) -> None:
    admin = gql.with_key(tenant.admin_key)
    secret, key = await create_key(admin, tenant)
    assert await last_used_at(admin, tenant, key["id"]) is None

    used_from = datetime.now(UTC)
    for _ in range(3):
        await gql.with_key(secret).data(VIEWER)
    used_until = datetime.now(UTC)

    deadline = time.monotonic() + 5
    while (recorded := await last_used_at(admin, tenant, key["id"])) is None:
        assert time.monotonic() < deadline, "lastUsedAt was never recorded"
        await asyncio.sleep(0.05)
    assert used_from <= datetime.fromisoformat(recorded) <= used_until


async def test_last_use_is_written_in_batches_not_per_request(
    database_url: str, http: aiohttp.ClientSession
) -> None:
    # A server that would flush only once an hour: requests alone must not write last use.
    async with running_server(make_settings(database_url, flush_interval=3600)) as live:
        tenant = await make_tenant(live.services, "Batch")
        client = GraphQLClient(http, live.url, tenant.keys[Role.VIEWER])
        for _ in range(5):
            await client.data(VIEWER)
        query = "SELECT count(*) FROM api_keys WHERE last_used_at IS NOT NULL"
        assert await live.services.db.fetchval(query) == 0
        await live.services.flush()
        assert await live.services.db.fetchval(query) == 1


# ---- bad keys -------------------------------------------------------------------------------------


async def test_every_bad_key_is_refused_the_same_way(gql: GraphQLClient, tenant: Tenant) -> None:
    admin_secret = tenant.admin_key
    prefix = admin_secret.split("_")[1]
    bad_keys = [
        "mg_",
        "mg_x",
        "mg__x",
        "nope",
        f"mg_{prefix}_wrong-secret",
        f"mg_{prefix}_{admin_secret.split('_', 2)[2][:-1]}",  # one character short
        "mg_000000000000_" + admin_secret.split("_", 2)[2],  # unknown prefix, a real secret
    ]
    reference = without_request_ids(await gql.with_key("nope").post(VIEWER))
    assert reference["errors"] == [
        {
            "message": "authentication required",
            "locations": [{"line": 1, "column": 3}],
            "path": ["viewer"],
            "extensions": {"code": "UNAUTHENTICATED"},
        }
    ]
    for bad in bad_keys:
        for headers in ({"X-API-Key": bad}, {"Authorization": f"Bearer {bad}"}):
            body = await gql.post(VIEWER, headers=headers)
            assert without_request_ids(body) == reference, (bad, headers)
            assert body["errors"][0]["extensions"]["requestId"] == body["_request_id"]
        async with gql.session.post(
            f"{gql.base_url}/graphql", params={"api_key": bad}, json={"query": VIEWER}
        ) as response:
            body = {**await response.json(), "_status": response.status}
            assert without_request_ids(body) == reference, (bad, "api_key")
    # The real key still works after all that.
    assert (await gql.with_key(admin_secret).data(VIEWER))["viewer"]["organization"] == {"name": "Acme"}
