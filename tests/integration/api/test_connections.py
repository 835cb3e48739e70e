"""Connections over real HTTP GraphQL: CRUD, validation, write-only credentials, models using them,
isolation between organizations, permissions."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from app.domain.auth import Role
from app.domain.credentials import Credentials
from app.domain.ids import decode_any, encode_id
from tests.conftest import LiveServer
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient, error_codes

FIELDS = "id name provider description hasToken hasClientKey createdAt updatedAt organization { name }"
ERRORS = "userErrors { code field message }"

CREATE = f"""
mutation Create($input: ConnectionCreateInput!) {{
  connectionCreate(input: $input) {{ connection {{ {FIELDS} }} {ERRORS} }}
}}"""

UPDATE = f"""
mutation Update($input: ConnectionUpdateInput!) {{
  connectionUpdate(input: $input) {{ connection {{ {FIELDS} }} {ERRORS} }}
}}"""

DELETE = f"""
mutation Delete($input: ConnectionDeleteInput!) {{
  connectionDelete(input: $input) {{ deletedConnectionId {ERRORS} }}
}}"""

LIST = f"""
query List($id: ID!, $first: Int, $after: String) {{
  connections(organizationId: $id, first: $first, after: $after) {{
    nodes {{ {FIELDS} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""

NODE = f"query One($id: ID!) {{ node(id: $id) {{ ... on Connection {{ {FIELDS} }} }} }}"

TOKEN = "sk-CONNECTION-SECRET-123"
CLIENT_KEY = "ck-CONNECTION-CLIENT-456"
SECRET_KEY = "sec-CONNECTION-SIGNING-789"
NEW_TOKEN = "sk-CONNECTION-ROTATED-000"
SECRETS = (TOKEN, CLIENT_KEY, SECRET_KEY, NEW_TOKEN)


class RecordingClient(GraphQLClient):
    """Keeps every response body, so a test can check that no secret ever came back."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, key: str | None, seen: list[str]
    ) -> None:
        super().__init__(session, base_url, key)
        self.seen = seen

    def with_key(self, key: str | None) -> RecordingClient:
        return RecordingClient(self.session, self.base_url, key, self.seen)

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, *, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        body = await super().post(query, variables, headers=headers)
        self.seen.append(json.dumps(body))
        return body


def errors_of(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


def connection_input(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    return {"organizationId": tenant.organization_gid, "name": "OpenAI prod", "provider": "OPENAI", **fields}


async def create(client: GraphQLClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    payload = await client.mutate(CREATE, connection_input(tenant, **fields))
    assert payload["userErrors"] == []
    connection: dict[str, Any] = payload["connection"]
    return connection


async def listed(client: GraphQLClient, tenant: Tenant) -> list[dict[str, Any]]:
    data = await client.data(LIST, {"id": tenant.organization_gid, "first": 100})
    nodes: list[dict[str, Any]] = data["connections"]["nodes"]
    return nodes


def uuid_of(global_id: str) -> uuid.UUID:
    decoded = decode_any(global_id)
    assert decoded is not None
    return decoded[1]


async def credentials(server: LiveServer, connection: dict[str, Any]) -> Credentials:
    return await server.services.connections.credentials_for(uuid_of(connection["id"]))


async def insert_model(server: LiveServer, tenant: Tenant, name: str, connection: dict[str, Any]) -> None:
    """A bare user model row that uses `connection` (the models API is not what is tested here)."""
    await server.services.db.execute(
        """INSERT INTO models (id, kind, organization_id, scope, name, model_group, provider, connection_id)
           VALUES ($1, 'USER', $2, 'ORGANIZATION', $3, 'CHAT', 'OPENAI', $4)""",
        uuid.uuid4(),
        tenant.organization.id,
        name,
        uuid_of(connection["id"]),
    )


# ---- create, read, list, update, delete ----------------------------------------------------------


async def test_a_connection_is_created_read_listed_updated_and_deleted(
    gql: GraphQLClient, tenant: Tenant
) -> None:
    admin = gql.with_key(tenant.admin_key)
    created = await create(admin, tenant, name="  OpenAI prod  ", description="the main account", token=TOKEN)
    assert decode_any(created["id"]) == ("Connection", uuid_of(created["id"]))
    assert {k: created[k] for k in ("name", "provider", "description", "hasToken", "hasClientKey")} == {
        "name": "OpenAI prod",
        "provider": "OPENAI",
        "description": "the main account",
        "hasToken": True,
        "hasClientKey": False,
    }
    assert created["organization"] == {"name": "Acme"}
    assert created["createdAt"] == created["updatedAt"]

    assert (await admin.data(NODE, {"id": created["id"]}))["node"] == created
    assert await listed(admin, tenant) == [created]

    payload = await admin.mutate(UPDATE, {"id": created["id"], "name": "OpenAI main", "description": None})
    assert payload["userErrors"] == []
    updated = payload["connection"]
    assert (updated["name"], updated["description"], updated["hasToken"]) == ("OpenAI main", None, True)
    assert updated["createdAt"] == created["createdAt"]
    assert datetime.fromisoformat(updated["updatedAt"]) > datetime.fromisoformat(created["updatedAt"])

    deleted = await admin.mutate(DELETE, {"id": created["id"]})
    assert deleted == {"deletedConnectionId": created["id"], "userErrors": []}
    assert await listed(admin, tenant) == []
    assert (await admin.data(NODE, {"id": created["id"]}))["node"] is None
    again = await admin.mutate(DELETE, {"id": created["id"]})
    assert errors_of(again) == [("NOT_FOUND", ["input", "id"])]


async def test_connections_paginate_in_creation_order(gql: GraphQLClient, tenant: Tenant) -> None:
    admin = gql.with_key(tenant.admin_key)
    for name in ("one", "two", "three"):
        await create(admin, tenant, name=name, provider="ANTHROPIC")
    first = (await admin.data(LIST, {"id": tenant.organization_gid, "first": 2}))["connections"]
    assert [n["name"] for n in first["nodes"]] == ["one", "two"]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = (
        await admin.data(
            LIST, {"id": tenant.organization_gid, "first": 2, "after": first["pageInfo"]["endCursor"]}
        )
    )["connections"]
    assert ([n["name"] for n in rest["nodes"]], rest["pageInfo"]["hasNextPage"]) == (["three"], False)


async def test_every_change_tells_the_caches(gql: GraphQLClient, server: LiveServer, tenant: Tenant) -> None:
    published: list[str | None] = []
    server.services.notifications.subscribe("catalog", published.append)
    admin = gql.with_key(tenant.admin_key)
    created = await create(admin, tenant)
    # This instance hears of a change at once (and again through NOTIFY, as every other instance).
    after_create = len(published)
    assert after_create >= 1
    await admin.mutate(UPDATE, {"id": created["id"], "token": TOKEN})
    after_update = len(published)
    assert after_update > after_create
    await admin.mutate(DELETE, {"id": created["id"]})
    assert len(published) > after_update
    assert set(published) == {None}


# ---- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"name": ""}, [("REQUIRED", ["input", "name"])]),
        ({"name": "   "}, [("REQUIRED", ["input", "name"])]),
        ({"name": "c" * 201}, [("TOO_LONG", ["input", "name"])]),
        ({"description": "d" * 2001}, [("TOO_LONG", ["input", "description"])]),
        ({"token": ""}, [("REQUIRED", ["input", "token"])]),
        ({"token": "x" * 20_001}, [("TOO_LONG", ["input", "token"])]),
        ({"clientKey": CLIENT_KEY}, [("REQUIRED", ["input", "secretKey"])]),
        ({"secretKey": SECRET_KEY}, [("REQUIRED", ["input", "clientKey"])]),
        (
            {"name": "", "clientKey": " ", "secretKey": SECRET_KEY},
            [("REQUIRED", ["input", "name"]), ("REQUIRED", ["input", "clientKey"])],
        ),
        ({"organizationId": "bogus"}, [("NOT_FOUND", ["input", "organizationId"])]),
    ],
)
async def test_connection_create_rejects_bad_input_and_writes_nothing(
    gql: GraphQLClient, server: LiveServer, tenant: Tenant, fields: dict[str, Any], errors: list[Any]
) -> None:
    admin = gql.with_key(tenant.admin_key)
    payload = await admin.mutate(CREATE, connection_input(tenant, **fields))
    assert payload["connection"] is None
    assert errors_of(payload) == errors
    assert await server.services.db.fetchval("SELECT count(*) FROM connections") == 0


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"name": None}, [("REQUIRED", ["input", "name"])]),
        ({"name": ""}, [("REQUIRED", ["input", "name"])]),
        ({"description": "d" * 2001}, [("TOO_LONG", ["input", "description"])]),
        ({"token": " "}, [("REQUIRED", ["input", "token"])]),
        ({"token": NEW_TOKEN, "clearToken": True}, [("INVALID", ["input", "clearToken"])]),
        ({"clientKey": CLIENT_KEY}, [("REQUIRED", ["input", "secretKey"])]),
        (
            {"clientKey": CLIENT_KEY, "secretKey": SECRET_KEY, "clearClientKeys": True},
            [("INVALID", ["input", "clearClientKeys"])],
        ),
        ({"updatedAt": "2020-01-01T00:00:00+00:00"}, [("CONFLICT", ["input", "updatedAt"])]),
    ],
)
async def test_connection_update_rejects_bad_input_and_writes_nothing(
    gql: GraphQLClient, server: LiveServer, tenant: Tenant, fields: dict[str, Any], errors: list[Any]
) -> None:
    admin = gql.with_key(tenant.admin_key)
    created = await create(admin, tenant, token=TOKEN)
    payload = await admin.mutate(UPDATE, {"id": created["id"], "name": "renamed", **fields})
    assert payload["connection"] is None
    assert errors_of(payload) == errors
    assert await listed(admin, tenant) == [created]
    assert await credentials(server, created) == Credentials(token=TOKEN)


async def test_an_update_with_the_current_updated_at_goes_through(gql: GraphQLClient, tenant: Tenant) -> None:
    admin = gql.with_key(tenant.admin_key)
    created = await create(admin, tenant)
    payload = await admin.mutate(
        UPDATE, {"id": created["id"], "name": "v2", "updatedAt": created["updatedAt"]}
    )
    assert payload["userErrors"] == []
    stale = await admin.mutate(UPDATE, {"id": created["id"], "name": "v3", "updatedAt": created["updatedAt"]})
    assert errors_of(stale) == [("CONFLICT", ["input", "updatedAt"])]
    assert [c["name"] for c in await listed(admin, tenant)] == ["v2"]


async def test_names_are_unique_per_organization_ignoring_case(
    gql: GraphQLClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    admin = gql.with_key(tenant.admin_key)
    await create(admin, tenant, name="Shared")
    other = await create(admin, tenant, name="Other")
    duplicate = await admin.mutate(CREATE, connection_input(tenant, name="shared"))
    assert errors_of(duplicate) == [("DUPLICATE", ["input", "name"])]
    renamed = await admin.mutate(UPDATE, {"id": other["id"], "name": "SHARED"})
    assert errors_of(renamed) == [("DUPLICATE", ["input", "name"])]
    assert sorted(c["name"] for c in await listed(admin, tenant)) == ["Other", "Shared"]
    # Another organization may use the same name.
    await create(gql.with_key(other_tenant.admin_key), other_tenant, name="Shared")


async def test_an_unknown_provider_is_refused_by_the_schema(gql: GraphQLClient, tenant: Tenant) -> None:
    body = await gql.with_key(tenant.admin_key).post(
        CREATE, {"input": connection_input(tenant, provider="NOPE", token=TOKEN)}
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert TOKEN not in json.dumps(body)


# ---- write-only credentials -----------------------------------------------------------------------


async def test_credentials_never_come_back_and_are_stored_encrypted(
    server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    admin = RecordingClient(http, server.url, tenant.admin_key, seen)
    created = await create(admin, tenant, token=TOKEN, clientKey=CLIENT_KEY, secretKey=SECRET_KEY)
    await admin.mutate(UPDATE, {"id": created["id"], "token": NEW_TOKEN})
    await admin.mutate(UPDATE, {"id": created["id"], "token": NEW_TOKEN, "clearToken": True})  # refused
    await admin.mutate(CREATE, connection_input(tenant, name="half", clientKey=CLIENT_KEY))  # refused
    await admin.mutate(CREATE, connection_input(tenant, name="OPENAI PROD", token=TOKEN))  # duplicate
    await admin.data(NODE, {"id": created["id"]})
    await admin.data(LIST, {"id": tenant.organization_gid})
    await admin.post("{ __typename }", {"token": TOKEN})

    assert len(seen) == 8
    for body in seen:
        for secret in SECRETS:
            assert secret not in body
    for secret in SECRETS:
        assert secret not in caplog.text

    row = await server.services.db.fetchrow(
        "SELECT token_ciphertext, client_key_ciphertext, secret_key_ciphertext FROM connections"
    )
    assert row is not None
    for stored in row.values():
        assert all(secret.encode() not in stored for secret in SECRETS)
    assert await credentials(server, created) == Credentials(NEW_TOKEN, CLIENT_KEY, SECRET_KEY)


async def test_credentials_change_only_when_sent_and_clear_only_when_asked(
    gql: GraphQLClient, server: LiveServer, tenant: Tenant
) -> None:
    admin = gql.with_key(tenant.admin_key)
    created = await create(admin, tenant, token=TOKEN, clientKey=CLIENT_KEY, secretKey=SECRET_KEY)
    assert (created["hasToken"], created["hasClientKey"]) == (True, True)

    async def update(**fields: Any) -> tuple[bool, bool]:
        payload = await admin.mutate(UPDATE, {"id": created["id"], **fields})
        assert payload["userErrors"] == []
        return payload["connection"]["hasToken"], payload["connection"]["hasClientKey"]

    # Left out or null: kept.
    assert await update(description="no credential fields") == (True, True)
    assert await update(token=None, clientKey=None, secretKey=None, clearToken=False) == (True, True)
    assert await credentials(server, created) == Credentials(TOKEN, CLIENT_KEY, SECRET_KEY)

    assert await update(clearToken=True) == (False, True)
    assert await credentials(server, created) == Credentials(None, CLIENT_KEY, SECRET_KEY)

    assert await update(clearClientKeys=True, token=NEW_TOKEN) == (True, False)
    assert await credentials(server, created) == Credentials(token=NEW_TOKEN)

    assert await update(clientKey="ck-2", secretKey="sk-2") == (True, True)
    assert await credentials(server, created) == Credentials(NEW_TOKEN, "ck-2", "sk-2")


async def test_a_ciphertext_copied_to_another_connection_does_not_decrypt(
    gql: GraphQLClient, server: LiveServer, tenant: Tenant
) -> None:
    admin = gql.with_key(tenant.admin_key)
    source = await create(admin, tenant, name="source", token=TOKEN)
    target = await create(admin, tenant, name="target", token="sk-other")
    await server.services.db.execute(
        """UPDATE connections SET token_ciphertext = (SELECT token_ciphertext FROM connections WHERE id = $1)
           WHERE id = $2""",
        uuid_of(source["id"]),
        uuid_of(target["id"]),
    )
    with pytest.raises(Exception, match="failed to decrypt") as raised:
        await credentials(server, target)
    assert TOKEN not in str(raised.value)


# ---- models using a connection --------------------------------------------------------------------


async def test_a_connection_in_use_cannot_be_deleted_and_the_error_names_the_models(
    gql: GraphQLClient, server: LiveServer, tenant: Tenant
) -> None:
    admin = gql.with_key(tenant.admin_key)
    connection = await create(admin, tenant, token=TOKEN)
    await insert_model(server, tenant, "support-bot", connection)
    await insert_model(server, tenant, "writer", connection)

    refused = await admin.mutate(DELETE, {"id": connection["id"]})
    assert refused["deletedConnectionId"] is None
    assert errors_of(refused) == [("IN_USE", ["input", "id"])]
    assert "support-bot, writer" in refused["userErrors"][0]["message"]
    assert await listed(admin, tenant) == [connection]

    await server.services.db.execute("DELETE FROM models")
    deleted = await admin.mutate(DELETE, {"id": connection["id"]})
    assert deleted["userErrors"] == []


# ---- isolation and permissions --------------------------------------------------------------------


async def test_another_organizations_connection_reads_as_missing(
    gql: GraphQLClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    connection = await create(gql.with_key(tenant.admin_key), tenant, token=TOKEN)
    outsider = gql.with_key(other_tenant.admin_key)
    assert (await outsider.data(NODE, {"id": connection["id"]}))["node"] is None
    assert await listed(outsider, tenant) == []
    for mutation, fields in ((UPDATE, {"name": "mine now"}), (UPDATE, {"clearToken": True}), (DELETE, {})):
        payload = await outsider.mutate(mutation, {"id": connection["id"], **fields})
        assert errors_of(payload) == [("NOT_FOUND", ["input", "id"])]
    refused = await outsider.mutate(CREATE, connection_input(tenant))
    assert errors_of(refused) == [("NOT_FOUND", ["input", "organizationId"])]
    assert await listed(gql.with_key(tenant.admin_key), tenant) == [connection]


async def test_a_platform_admin_manages_any_organizations_connections(
    gql: GraphQLClient, admin_key: str, tenant: Tenant
) -> None:
    platform = gql.with_key(admin_key)
    created = await create(platform, tenant, name="by the platform")
    assert await listed(gql.with_key(tenant.admin_key), tenant) == [created]
    assert (await platform.mutate(DELETE, {"id": created["id"]}))["userErrors"] == []


@pytest.mark.parametrize("role", [Role.DEVELOPER, Role.VIEWER])
async def test_only_connections_manage_changes_connections_but_models_read_reads_them(
    gql: GraphQLClient, tenant: Tenant, role: Role
) -> None:
    connection = await create(gql.with_key(tenant.admin_key), tenant)
    client = gql.with_key(tenant.keys[role])
    for mutation, input in (
        (CREATE, connection_input(tenant, name="mine")),
        (UPDATE, {"id": connection["id"], "name": "mine"}),
        (DELETE, {"id": connection["id"]}),
    ):
        body = await client.post(mutation, {"input": input})
        assert error_codes(body) == ["FORBIDDEN"]
        assert body["data"] is None
    assert await listed(client, tenant) == [connection]
    assert (await client.data(NODE, {"id": connection["id"]}))["node"] == connection


async def test_without_models_read_connections_are_hidden(gql: GraphQLClient, tenant: Tenant) -> None:
    connection = await create(gql.with_key(tenant.admin_key), tenant)
    created = await gql.with_key(tenant.admin_key).mutate(
        "mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { secret } }",
        {"organizationId": tenant.organization_gid, "name": "invoker", "permissions": ["llm:invoke"]},
    )
    invoker = gql.with_key(created["secret"])
    assert error_codes(await invoker.post(LIST, {"id": tenant.organization_gid})) == ["FORBIDDEN"]
    assert (await invoker.data(NODE, {"id": connection["id"]}))["node"] is None


async def test_a_project_key_cannot_change_the_organizations_connections(
    gql: GraphQLClient, server: LiveServer, tenant: Tenant
) -> None:
    _, project_admin = await server.services.api_keys.create_unchecked(
        name="project admin",
        organization_id=tenant.organization.id,
        project_id=tenant.project.id,
        role=Role.ADMIN,
    )
    client = gql.with_key(project_admin)
    body = await client.post(CREATE, {"input": connection_input(tenant)})
    assert error_codes(body) == ["FORBIDDEN"]
    connection = await create(gql.with_key(tenant.admin_key), tenant)
    assert await listed(client, tenant) == [connection]


async def test_connections_need_a_key(gql: GraphQLClient, tenant: Tenant) -> None:
    assert error_codes(await gql.post(LIST, {"id": tenant.organization_gid})) == ["UNAUTHENTICATED"]
    body = await gql.post(CREATE, {"input": connection_input(tenant)})
    assert error_codes(body) == ["UNAUTHENTICATED"]


async def test_a_malformed_or_foreign_id_is_not_found(gql: GraphQLClient, tenant: Tenant) -> None:
    admin = gql.with_key(tenant.admin_key)
    for bad in ("nope", tenant.project_gid, encode_id("Connection", uuid.uuid4())):
        payload = await admin.mutate(UPDATE, {"id": bad, "name": "x"})
        assert errors_of(payload) == [("NOT_FOUND", ["input", "id"])]
    assert (await admin.data(LIST, {"id": "nope"}))["connections"]["nodes"] == []


async def test_expected_updated_at_is_the_name_and_updated_at_its_deprecated_alias(
    gql: GraphQLClient, tenant: Tenant
) -> None:
    admin = gql.with_key(tenant.admin_key)
    created = await create(admin, tenant)
    fresh = await admin.mutate(
        UPDATE, {"id": created["id"], "name": "v2", "expectedUpdatedAt": created["updatedAt"]}
    )
    assert fresh["userErrors"] == []
    stale = await admin.mutate(
        UPDATE, {"id": created["id"], "name": "v3", "expectedUpdatedAt": created["updatedAt"]}
    )
    assert errors_of(stale) == [("CONFLICT", ["input", "expectedUpdatedAt"])]
    both = {"expectedUpdatedAt": created["updatedAt"], "updatedAt": created["updatedAt"]}
    assert errors_of(await admin.mutate(UPDATE, {"id": created["id"], **both})) == [
        ("INVALID", ["input", "updatedAt"])
    ]
