"""Webhook management over GraphQL: organization admins create, update, rotate and delete webhooks,
whose secret is write-only (stored sealed, generated secrets shown once); every invalid field is a
user error and nothing is written; other organizations, project keys and non-admins get nothing."""

from __future__ import annotations

from typing import Any

import pytest

from app.config import Settings
from app.domain.auth import Role
from app.domain.ids import encode_id
from tests.conftest import LiveServer, make_settings
from tests.support.catalog import uuid_of
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient, error_codes

URL = "https://hooks.example.com/modelgate"  # never called: no event happens in these tests
SECRET = "whsec_given_0123456789abcdefghij"
FIELDS = "id url events enabled createdAt updatedAt"
CREATE = f"""mutation($input: WebhookCreateInput!) {{ webhookCreate(input: $input) {{
  webhook {{ {FIELDS} }} secret userErrors {{ code field message }} }} }}"""
UPDATE = f"""mutation($input: WebhookUpdateInput!) {{ webhookUpdate(input: $input) {{
  webhook {{ {FIELDS} }} userErrors {{ code field message }} }} }}"""
ROTATE = f"""mutation($input: WebhookRotateSecretInput!) {{ webhookRotateSecret(input: $input) {{
  webhook {{ {FIELDS} }} secret userErrors {{ code field message }} }} }}"""
DELETE = """mutation($input: WebhookDeleteInput!) { webhookDelete(input: $input) {
  deletedWebhookId userErrors { code field message } } }"""
LIST = f"""query($id: ID!) {{ organization(id: $id) {{ webhooks {{ nodes {{ {FIELDS} }} }} }} }}"""
NODE = "query($id: ID!) { node(id: $id) { id ... on Webhook { url } } }"
NOTIFICATIONS = """query($id: ID!) { organization(id: $id) { notifications { nodes { id } } } }"""


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, allow_private_webhooks=False)


def codes(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return sorted((e["code"], e["field"]) for e in payload["userErrors"])


async def create(gql: GraphQLClient, tenant: Tenant, **values: Any) -> dict[str, Any]:
    return await gql.with_key(tenant.admin_key).mutate(
        CREATE, {"organizationId": tenant.organization_gid, "url": URL, **values}
    )


async def stored_count(server: LiveServer) -> int:
    count: int = await server.services.db.fetchval("SELECT count(*) FROM webhooks")
    return count


async def test_create_with_a_generated_secret_shows_it_once_and_stores_it_sealed(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant
) -> None:
    payload = await create(gql, tenant, events=["MODEL_TRIPPED", "CREDITS_EXHAUSTED"])
    assert payload["userErrors"] == []
    webhook, secret = payload["webhook"], payload["secret"]
    assert secret.startswith("whsec_")
    assert (webhook["url"], webhook["events"], webhook["enabled"]) == (
        URL,
        ["MODEL_TRIPPED", "CREDITS_EXHAUSTED"],
        True,
    )
    webhook_id = uuid_of(webhook["id"])
    stored = await server.services.db.fetchval(
        "SELECT secret_key_ciphertext FROM webhooks WHERE id = $1", webhook_id
    )
    assert secret.encode() not in stored
    found = await server.services.webhooks.for_delivery(webhook_id)
    assert found is not None
    assert found[1] == secret

    listed = await gql.with_key(tenant.admin_key).data(LIST, {"id": tenant.organization_gid})
    assert listed["organization"]["webhooks"]["nodes"] == [webhook]
    given = await create(gql, tenant, secret=SECRET)
    assert given["secret"] is None  # given, so not shown back


async def test_every_invalid_field_is_a_user_error_and_nothing_is_written(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant
) -> None:
    cases: list[tuple[dict[str, Any], list[tuple[str, list[str] | None]]]] = [
        ({"url": " "}, [("REQUIRED", ["input", "url"])]),
        ({"url": "ftp://hooks.example.com"}, [("UNSAFE_URL", ["input", "url"])]),
        ({"url": "http://hooks.example.com/x"}, [("UNSAFE_URL", ["input", "url"])]),
        ({"url": "https://127.0.0.1/x"}, [("UNSAFE_URL", ["input", "url"])]),
        ({"url": "https://10.0.0.7/x"}, [("UNSAFE_URL", ["input", "url"])]),
        ({"url": "https://localhost/x"}, [("UNSAFE_URL", ["input", "url"])]),
        ({"url": "https://user:pw@hooks.example.com/x"}, [("UNSAFE_URL", ["input", "url"])]),
        ({"url": "https://hooks.example.com/" + "a" * 2000}, [("TOO_LONG", ["input", "url"])]),
        ({"events": ["MODEL_TRIPPED", "MODEL_TRIPPED"]}, [("INVALID", ["input", "events"])]),
        ({"secret": "short"}, [("INVALID", ["input", "secret"])]),
        ({"secret": " " + SECRET}, [("INVALID", ["input", "secret"])]),
        ({"secret": "x" * 201}, [("TOO_LONG", ["input", "secret"])]),
        (
            {"organizationId": encode_id("Project", tenant.project.id)},
            [("NOT_FOUND", ["input", "organizationId"])],
        ),
        (
            {"url": "ftp://x", "secret": "short", "events": ["API_KEY_REVOKED", "API_KEY_REVOKED"]},
            [
                ("INVALID", ["input", "events"]),
                ("INVALID", ["input", "secret"]),
                ("UNSAFE_URL", ["input", "url"]),
            ],
        ),
    ]
    for values, expected in cases:
        payload = await create(gql, tenant, **values)
        assert (codes(payload), payload["webhook"], payload["secret"]) == (expected, None, None), values
    assert await stored_count(server) == 0


async def test_update_rotate_and_delete(server: LiveServer, gql: GraphQLClient, tenant: Tenant) -> None:
    admin = gql.with_key(tenant.admin_key)
    created = await create(gql, tenant, secret=SECRET)
    gid = created["webhook"]["id"]
    webhook_id = uuid_of(gid)

    updated = await admin.mutate(UPDATE, {"id": gid, "events": ["API_KEY_EXPIRING"], "enabled": False})
    assert updated["userErrors"] == []
    assert (updated["webhook"]["url"], updated["webhook"]["events"], updated["webhook"]["enabled"]) == (
        URL,
        ["API_KEY_EXPIRING"],
        False,
    )
    for values, expected in (
        ({"url": None}, [("REQUIRED", ["input", "url"])]),
        ({"url": "https://192.168.1.1/x"}, [("UNSAFE_URL", ["input", "url"])]),
        ({"events": None}, [("REQUIRED", ["input", "events"])]),
        ({"enabled": None}, [("REQUIRED", ["input", "enabled"])]),
        ({"events": ["MODEL_RECOVERED", "MODEL_RECOVERED"]}, [("INVALID", ["input", "events"])]),
    ):
        payload = await admin.mutate(UPDATE, {"id": gid, **values})
        assert (codes(payload), payload["webhook"]) == (expected, None), values
    listed = await admin.data(LIST, {"id": tenant.organization_gid})
    assert listed["organization"]["webhooks"]["nodes"] == [updated["webhook"]]

    rotated = await admin.mutate(ROTATE, {"id": gid})
    assert rotated["userErrors"] == []
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != SECRET
    found = await server.services.webhooks.for_delivery(webhook_id)
    assert found is not None
    assert found[1] == rotated["secret"]
    short = await admin.mutate(ROTATE, {"id": gid, "secret": "short"})
    assert codes(short) == [("INVALID", ["input", "secret"])]
    found = await server.services.webhooks.for_delivery(webhook_id)
    assert found is not None
    assert found[1] == rotated["secret"]  # unchanged by the refused rotation

    deleted = await admin.mutate(DELETE, {"id": gid})
    assert deleted == {"deletedWebhookId": gid, "userErrors": []}
    assert (await admin.data(NODE, {"id": gid}))["node"] is None
    again = await admin.mutate(DELETE, {"id": gid})
    assert codes(again) == [("NOT_FOUND", ["input", "id"])]


async def test_another_organization_sees_and_touches_nothing(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    gid = (await create(gql, tenant, secret=SECRET))["webhook"]["id"]
    stranger = gql.with_key(other_tenant.admin_key)
    payload = await stranger.mutate(CREATE, {"organizationId": tenant.organization_gid, "url": URL})
    assert codes(payload) == [("NOT_FOUND", ["input", "organizationId"])]
    for document, values in (
        (UPDATE, {"id": gid, "enabled": False}),
        (ROTATE, {"id": gid}),
        (DELETE, {"id": gid}),
    ):
        assert codes(await stranger.mutate(document, values)) == [("NOT_FOUND", ["input", "id"])]
    assert (await stranger.data(NODE, {"id": gid}))["node"] is None
    assert (await stranger.data(LIST, {"id": tenant.organization_gid}))["organization"] is None
    found = await server.services.webhooks.for_delivery(uuid_of(gid))
    assert found is not None
    assert (found[0].enabled, found[1]) == (True, SECRET)


async def test_project_keys_and_non_admins_are_refused(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant
) -> None:
    gid = (await create(gql, tenant, secret=SECRET))["webhook"]["id"]
    _, project_admin = await server.services.api_keys.create_unchecked(
        name="project admin",
        organization_id=tenant.organization.id,
        project_id=tenant.project.id,
        role=Role.ADMIN,
    )
    for key in (project_admin, tenant.keys[Role.DEVELOPER], tenant.keys[Role.VIEWER]):
        client = gql.with_key(key)
        refused = await client.post(
            CREATE, {"input": {"organizationId": tenant.organization_gid, "url": URL}}
        )
        assert error_codes(refused) == ["FORBIDDEN"]
        for document, values in (
            (UPDATE, {"id": gid, "enabled": False}),
            (ROTATE, {"id": gid}),
            (DELETE, {"id": gid}),
        ):
            assert error_codes(await client.post(document, {"input": values})) == ["FORBIDDEN"]
        assert (await client.data(NODE, {"id": gid}))["node"] is None
    # A project admin reads neither the webhooks nor the notifications of its organization.
    project_client = gql.with_key(project_admin)
    listed = await project_client.post(LIST, {"id": tenant.organization_gid})
    assert error_codes(listed) == ["FORBIDDEN"]
    notifications = await project_client.data(NOTIFICATIONS, {"id": tenant.organization_gid})
    assert notifications["organization"]["notifications"]["nodes"] == []
    assert await stored_count(server) == 1


async def test_an_update_or_rotation_writes_only_its_own_fields(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What another admin changed between this mutation's read and its write stands."""
    admin = gql.with_key(tenant.admin_key)
    gid = (await create(gql, tenant, secret=SECRET))["webhook"]["id"]
    repository = server.services.webhooks.webhooks
    stale = await repository.get(uuid_of(gid))
    read = repository.get

    async def read_then_changed_elsewhere(webhook_id: Any) -> Any:
        await server.services.db.execute(
            "UPDATE webhooks SET enabled = false, events = '{API_KEY_REVOKED}' WHERE id = $1", webhook_id
        )
        await read(webhook_id)
        return stale  # what this mutation read, just before the other change

    monkeypatch.setattr(repository, "get", read_then_changed_elsewhere)
    updated = await admin.mutate(UPDATE, {"id": gid, "url": "https://hooks.example.com/v2"})
    rotated = await admin.mutate(ROTATE, {"id": gid})
    for payload in (updated, rotated):
        assert payload["userErrors"] == []
        webhook = payload["webhook"]
        assert (webhook["url"], webhook["events"], webhook["enabled"]) == (
            "https://hooks.example.com/v2",
            ["API_KEY_REVOKED"],
            False,
        )
