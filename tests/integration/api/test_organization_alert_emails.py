"""An organization's alert emails over GraphQL: organization admins (and platform admins) set them
through organizationUpdate and read them back; every invalid value is a user error on its item and
nothing is written; another organization, a project-bound key and a non-admin neither read nor set
them."""

from __future__ import annotations

from typing import Any

from app.domain.auth import Role
from tests.conftest import LiveServer
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient, error_codes

UPDATE = """mutation($input: OrganizationUpdateInput!) { organizationUpdate(input: $input) {
  organization { id alertEmails } userErrors { code field message } } }"""
READ = "query($id: ID!) { organization(id: $id) { id name alertEmails } }"
EMAILS = ["ops@acme.test", "Finance.Team+alerts@acme.test"]


def errors_of(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return sorted((e["code"], e["field"]) for e in payload["userErrors"])


async def stored(server: LiveServer, tenant: Tenant) -> list[str]:
    emails: list[str] = await server.services.db.fetchval(
        "SELECT alert_emails FROM organizations WHERE id = $1", tenant.organization.id
    )
    return emails


async def set_emails(client: GraphQLClient, tenant: Tenant, emails: Any) -> dict[str, Any]:
    return await client.mutate(UPDATE, {"id": tenant.organization_gid, "alertEmails": emails})


async def test_an_organization_admin_sets_reads_and_clears_the_list(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant
) -> None:
    admin = gql.with_key(tenant.admin_key)
    assert (await admin.data(READ, {"id": tenant.organization_gid}))["organization"]["alertEmails"] == []

    payload = await set_emails(admin, tenant, EMAILS)
    assert payload["userErrors"] == []
    assert payload["organization"]["alertEmails"] == EMAILS  # as given: order and case kept
    assert (await admin.data(READ, {"id": tenant.organization_gid}))["organization"]["alertEmails"] == EMAILS
    assert await stored(server, tenant) == EMAILS

    # Left out: unchanged by another change.
    renamed = await admin.mutate(UPDATE, {"id": tenant.organization_gid, "name": "Acme renamed"})
    assert renamed["organization"]["alertEmails"] == EMAILS

    cleared = await set_emails(admin, tenant, [])
    assert (cleared["userErrors"], cleared["organization"]["alertEmails"]) == ([], [])
    assert await stored(server, tenant) == []


async def test_a_platform_admin_sets_any_organizations_list(
    server: LiveServer, gql: GraphQLClient, admin_key: str, tenant: Tenant
) -> None:
    platform = gql.with_key(admin_key)
    payload = await set_emails(platform, tenant, ["noc@platform.test"])
    assert payload["userErrors"] == []
    read = await platform.data(READ, {"id": tenant.organization_gid})
    assert read["organization"]["alertEmails"] == ["noc@platform.test"]


async def test_every_invalid_value_is_a_user_error_and_nothing_is_written(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant
) -> None:
    admin = gql.with_key(tenant.admin_key)
    assert (await set_emails(admin, tenant, EMAILS))["userErrors"] == []
    at = ["input", "alertEmails"]
    cases: list[tuple[Any, list[tuple[str, list[str] | None]]]] = [
        (None, [("REQUIRED", at)]),
        (["not-an-email"], [("INVALID", [*at, "0"])]),
        (["ops@acme.test", ""], [("INVALID", [*at, "1"])]),
        ([" ops@acme.test"], [("INVALID", [*at, "0"])]),
        (["ops@acme.test\n"], [("INVALID", [*at, "0"])]),
        (["ops@acme.test\r\nBcc: x@evil.test"], [("INVALID", [*at, "0"])]),
        (["a,b@acme.test"], [("INVALID", [*at, "0"])]),
        (["Ops <ops@acme.test>"], [("INVALID", [*at, "0"])]),
        (["ops@localhost"], [("INVALID", [*at, "0"])]),
        ([f"ops@{'a' * 250}.test"], [("INVALID", [*at, "0"])]),
        (["ops\x00@acme.test"], [("INVALID", [*at, "0"])]),
        (["ops@acme.test", "OPS@Acme.Test"], [("DUPLICATE", [*at, "1"])]),
        ([f"person{n}@acme.test" for n in range(21)], [("OUT_OF_RANGE", at)]),
        (
            ["x", "ops@acme.test", "ops@acme.test", *(f"p{n}@acme.test" for n in range(18))],
            [("DUPLICATE", [*at, "2"]), ("INVALID", [*at, "0"]), ("OUT_OF_RANGE", at)],
        ),
    ]
    for value, expected in cases:
        payload = await set_emails(admin, tenant, value)
        assert (errors_of(payload), payload["organization"]) == (expected, None), value
        assert all(e["message"] for e in payload["userErrors"])
    assert await stored(server, tenant) == EMAILS

    # 20 addresses are fine.
    twenty = [f"person{n}@acme.test" for n in range(20)]
    assert (await set_emails(admin, tenant, twenty))["userErrors"] == []
    assert await stored(server, tenant) == twenty


async def test_another_organization_neither_reads_nor_sets_the_list(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    assert (await set_emails(gql.with_key(tenant.admin_key), tenant, EMAILS))["userErrors"] == []
    stranger = gql.with_key(other_tenant.admin_key)
    assert (await stranger.data(READ, {"id": tenant.organization_gid}))["organization"] is None
    payload = await set_emails(stranger, tenant, ["thief@evil.test"])
    assert (errors_of(payload), payload["organization"]) == ([("NOT_FOUND", ["input", "id"])], None)
    assert await stored(server, tenant) == EMAILS


async def test_project_keys_and_non_admins_neither_read_nor_set_the_list(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant
) -> None:
    assert (await set_emails(gql.with_key(tenant.admin_key), tenant, EMAILS))["userErrors"] == []
    _, project_admin = await server.services.api_keys.create_unchecked(
        name="project admin",
        organization_id=tenant.organization.id,
        project_id=tenant.project.id,
        role=Role.ADMIN,
    )
    for key in (project_admin, tenant.keys[Role.DEVELOPER], tenant.keys[Role.VIEWER]):
        client = gql.with_key(key)
        # They see their organization, but not the people's addresses on it.
        named = await client.data(
            "query($id: ID!) { organization(id: $id) { name } }", {"id": tenant.organization_gid}
        )
        assert named["organization"]["name"] == tenant.organization.name
        read = await client.post(READ, {"id": tenant.organization_gid})
        assert error_codes(read) == ["FORBIDDEN"]
        assert "ops@acme.test" not in str(read)
        via_viewer = await client.post("{ viewer { organization { alertEmails } } }")
        assert error_codes(via_viewer) == ["FORBIDDEN"]
        written = await client.post(UPDATE, {"input": {"id": tenant.organization_gid, "alertEmails": []}})
        assert error_codes(written) == ["FORBIDDEN"]
    assert await stored(server, tenant) == EMAILS
