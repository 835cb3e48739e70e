"""Organizations over real HTTP GraphQL: create, update, list, read, and `viewer`."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest

from app.domain.auth import ROLE_PERMISSIONS, Permission, Role
from app.domain.ids import encode_id
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient, error_codes

ORGANIZATION_FIELDS = "id name plan monthlyCreditLimit autoMigrateEndOfLife externalId"

CREATE = f"""
mutation Create($input: OrganizationCreateInput!) {{
  organizationCreate(input: $input) {{
    organization {{ {ORGANIZATION_FIELDS} }}
    userErrors {{ code field message }}
  }}
}}"""

UPDATE = f"""
mutation Update($input: OrganizationUpdateInput!) {{
  organizationUpdate(input: $input) {{
    organization {{ {ORGANIZATION_FIELDS} }}
    userErrors {{ code field message }}
  }}
}}"""

ORGANIZATION = f"query One($id: ID!) {{ organization(id: $id) {{ {ORGANIZATION_FIELDS} }} }}"

ORGANIZATIONS = """
query Page($first: Int, $after: String) {
  organizations(first: $first, after: $after) {
    edges { cursor node { id name } }
    nodes { name }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""

VIEWER = """
query {
  viewer { kind permissions isPlatformAdmin organization { name } project { name } }
}"""


def random_org_id() -> str:
    return encode_id("Organization", uuid.uuid4())


async def organization_names(admin: GraphQLClient) -> list[str]:
    data = await admin.data("{ organizations(first: 100) { nodes { name } } }")
    return [n["name"] for n in data["organizations"]["nodes"]]


async def read_organization(client: GraphQLClient, organization_id: str) -> dict[str, Any] | None:
    data = await client.data(ORGANIZATION, {"id": organization_id})
    organization: dict[str, Any] | None = data["organization"]
    return organization


async def create_key(client: GraphQLClient, tenant: Tenant, role: str, project_id: str | None) -> str:
    payload = await client.mutate(
        "mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { secret userErrors { code } } }",
        {"organizationId": tenant.organization_gid, "projectId": project_id, "name": "key", "role": role},
    )
    assert payload["userErrors"] == []
    secret: str = payload["secret"]
    return secret


def errors_of(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


# ---- organizationCreate ---------------------------------------------------------------------------


async def test_a_platform_admin_creates_an_organization_with_every_field(
    gql: GraphQLClient, admin_key: str
) -> None:
    admin = gql.with_key(admin_key)
    payload = await admin.mutate(
        CREATE,
        {
            "name": "  Initech  ",
            "plan": "ENTERPRISE",
            "monthlyCreditLimit": "1234.5",
            "autoMigrateEndOfLife": True,
            "externalId": "organization-test-123",
        },
    )
    assert payload["userErrors"] == []
    created = payload["organization"]
    assert created["name"] == "Initech"  # surrounding white space is trimmed
    assert created["plan"] == "ENTERPRISE"
    assert float(created["monthlyCreditLimit"]) == 1234.5
    assert created["autoMigrateEndOfLife"] is True
    assert created["externalId"] == "organization-test-123"
    assert await read_organization(admin, created["id"]) == created


async def test_organization_create_defaults(gql: GraphQLClient, admin_key: str) -> None:
    payload = await gql.with_key(admin_key).mutate(CREATE, {"name": "Defaults"})
    created = payload["organization"]
    assert (created["plan"], created["monthlyCreditLimit"], created["autoMigrateEndOfLife"]) == (
        "FREE",
        None,
        False,
    )
    assert created["externalId"] is None


async def test_organization_create_is_forbidden_to_organization_keys(
    gql: GraphQLClient, admin_key: str, tenant: Tenant, subtests: pytest.Subtests
) -> None:
    for role in Role:
        with subtests.test(role=role.value):
            body = await gql.with_key(tenant.keys[role]).post(CREATE, {"input": {"name": "Sneaky"}})
            assert error_codes(body) == ["FORBIDDEN"]
            assert body["data"] is None
            assert body["errors"][0]["extensions"]["requestId"] == body["_request_id"]
    assert await organization_names(gql.with_key(admin_key)) == ["Acme"]


async def test_organization_create_needs_a_key(gql: GraphQLClient, admin_key: str) -> None:
    body = await gql.post(CREATE, {"input": {"name": "Anonymous"}})
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert "Anonymous" not in await organization_names(gql.with_key(admin_key))


INVALID_CREATES: list[tuple[dict[str, Any], str, str]] = [
    ({"name": ""}, "REQUIRED", "name"),
    ({"name": "   \t "}, "REQUIRED", "name"),
    ({"name": "x" * 201}, "TOO_LONG", "name"),
    ({"name": "aCME"}, "DUPLICATE", "name"),
    ({"name": " Acme "}, "DUPLICATE", "name"),
    ({"monthlyCreditLimit": "-0.01"}, "OUT_OF_RANGE", "monthlyCreditLimit"),
    ({"monthlyCreditLimit": "1e14"}, "OUT_OF_RANGE", "monthlyCreditLimit"),
    ({"monthlyCreditLimit": "Infinity"}, "OUT_OF_RANGE", "monthlyCreditLimit"),
    ({"monthlyCreditLimit": "NaN"}, "OUT_OF_RANGE", "monthlyCreditLimit"),
    ({"externalId": "e" * 201}, "TOO_LONG", "externalId"),
    ({"externalId": "ext-Acme"}, "DUPLICATE", "externalId"),
]


async def test_organization_create_rejects_invalid_fields_and_writes_nothing(
    gql: GraphQLClient, admin_key: str, tenant: Tenant, subtests: pytest.Subtests
) -> None:
    admin = gql.with_key(admin_key)
    for changes, code, field in INVALID_CREATES:
        with subtests.test(changes=changes):
            payload = await admin.mutate(CREATE, {"name": "Fresh", **changes})
            assert payload["organization"] is None
            assert errors_of(payload) == [(code, ["input", field])]
            assert payload["userErrors"][0]["message"]
            assert await organization_names(admin) == ["Acme"]


async def test_organization_create_reports_every_invalid_field_at_once(
    gql: GraphQLClient, admin_key: str
) -> None:
    payload = await gql.with_key(admin_key).mutate(
        CREATE, {"name": "", "monthlyCreditLimit": "-1", "externalId": "e" * 201}
    )
    assert sorted(errors_of(payload)) == [
        ("OUT_OF_RANGE", ["input", "monthlyCreditLimit"]),
        ("REQUIRED", ["input", "name"]),
        ("TOO_LONG", ["input", "externalId"]),
    ]


async def test_names_of_200_characters_are_accepted(gql: GraphQLClient, admin_key: str) -> None:
    payload = await gql.with_key(admin_key).mutate(CREATE, {"name": "n" * 200, "externalId": "e" * 200})
    assert payload["userErrors"] == []
    assert payload["organization"]["name"] == "n" * 200


# ---- organizationUpdate ---------------------------------------------------------------------------


async def test_an_organization_admin_changes_name_and_auto_migration(
    gql: GraphQLClient, tenant: Tenant
) -> None:
    client = gql.with_key(tenant.admin_key)
    payload = await client.mutate(
        UPDATE, {"id": tenant.organization_gid, "name": "Acme Corp", "autoMigrateEndOfLife": True}
    )
    assert payload["userErrors"] == []
    updated = payload["organization"]
    assert (updated["name"], updated["autoMigrateEndOfLife"]) == ("Acme Corp", True)
    # Fields left out are unchanged.
    assert (updated["plan"], updated["externalId"]) == ("PRO", "ext-Acme")
    assert await read_organization(client, tenant.organization_gid) == updated


async def test_renaming_to_a_different_case_of_its_own_name_is_fine(
    gql: GraphQLClient, tenant: Tenant
) -> None:
    payload = await gql.with_key(tenant.admin_key).mutate(
        UPDATE, {"id": tenant.organization_gid, "name": "ACME"}
    )
    assert payload["userErrors"] == []
    assert payload["organization"]["name"] == "ACME"


async def test_only_platform_admins_change_plan_limit_and_external_id(
    gql: GraphQLClient, tenant: Tenant, subtests: pytest.Subtests
) -> None:
    client = gql.with_key(tenant.admin_key)
    before = await read_organization(client, tenant.organization_gid)
    for field, value in [
        ("plan", "ENTERPRISE"),
        ("monthlyCreditLimit", "10"),
        ("monthlyCreditLimit", None),
        ("externalId", "x"),
        ("externalId", None),
    ]:
        with subtests.test(field=field, value=value):
            payload = await client.mutate(
                UPDATE, {"id": tenant.organization_gid, "name": "Renamed", field: value}
            )
            assert payload["organization"] is None
            assert errors_of(payload) == [("PERMISSION_DENIED", ["input", field])]
            # Nothing was written, not even the allowed name change.
            assert await read_organization(client, tenant.organization_gid) == before


async def test_organization_update_needs_organization_manage(gql: GraphQLClient, tenant: Tenant) -> None:
    for role in (Role.DEVELOPER, Role.VIEWER):
        body = await gql.with_key(tenant.keys[role]).post(
            UPDATE, {"input": {"id": tenant.organization_gid, "name": "Nope"}}
        )
        assert error_codes(body) == ["FORBIDDEN"], role
    organization = await read_organization(gql.with_key(tenant.admin_key), tenant.organization_gid)
    assert organization is not None
    assert organization["name"] == "Acme"


async def test_a_project_key_cannot_change_its_organization(gql: GraphQLClient, tenant: Tenant) -> None:
    project_admin = await create_key(gql.with_key(tenant.admin_key), tenant, "ADMIN", tenant.project_gid)
    body = await gql.with_key(project_admin).post(
        UPDATE, {"input": {"id": tenant.organization_gid, "autoMigrateEndOfLife": True}}
    )
    assert error_codes(body) == ["FORBIDDEN"]
    organization = await read_organization(gql.with_key(tenant.admin_key), tenant.organization_gid)
    assert organization is not None
    assert organization["autoMigrateEndOfLife"] is False


async def test_an_explicit_null_for_a_required_field_is_a_user_error(
    gql: GraphQLClient, admin_key: str, tenant: Tenant
) -> None:
    admin = gql.with_key(admin_key)
    before = await read_organization(admin, tenant.organization_gid)
    for field in ("name", "plan", "autoMigrateEndOfLife"):
        payload = await admin.mutate(UPDATE, {"id": tenant.organization_gid, field: None})
        assert errors_of(payload) == [("REQUIRED", ["input", field])]
    assert await read_organization(admin, tenant.organization_gid) == before


INVALID_UPDATES: list[tuple[dict[str, Any], str, str]] = [
    ({"name": " "}, "REQUIRED", "name"),
    ({"name": "y" * 201}, "TOO_LONG", "name"),
    ({"name": "globex"}, "DUPLICATE", "name"),
    ({"externalId": "ext-Globex"}, "DUPLICATE", "externalId"),
    ({"externalId": "e" * 201}, "TOO_LONG", "externalId"),
    ({"monthlyCreditLimit": "-5"}, "OUT_OF_RANGE", "monthlyCreditLimit"),
    ({"monthlyCreditLimit": "NaN"}, "OUT_OF_RANGE", "monthlyCreditLimit"),
]


async def test_organization_update_rejects_invalid_fields_and_writes_nothing(
    gql: GraphQLClient, admin_key: str, tenant: Tenant, other_tenant: Tenant, subtests: pytest.Subtests
) -> None:
    admin = gql.with_key(admin_key)
    before = await read_organization(admin, tenant.organization_gid)
    for changes, code, field in INVALID_UPDATES:
        with subtests.test(changes=changes):
            payload = await admin.mutate(UPDATE, {"id": tenant.organization_gid, "name": "Valid", **changes})
            assert errors_of(payload) == [(code, ["input", field])]
            assert await read_organization(admin, tenant.organization_gid) == before


async def test_a_platform_admin_changes_plan_and_limit_then_clears_the_limit(
    gql: GraphQLClient, admin_key: str, tenant: Tenant
) -> None:
    admin = gql.with_key(admin_key)
    payload = await admin.mutate(
        UPDATE,
        {
            "id": tenant.organization_gid,
            "plan": "ENTERPRISE",
            "monthlyCreditLimit": "500",
            "externalId": "new",
        },
    )
    assert payload["userErrors"] == []
    updated = payload["organization"]
    assert (updated["plan"], float(updated["monthlyCreditLimit"]), updated["externalId"]) == (
        "ENTERPRISE",
        500.0,
        "new",
    )

    cleared = await admin.mutate(
        UPDATE, {"id": tenant.organization_gid, "monthlyCreditLimit": None, "externalId": None}
    )
    assert cleared["userErrors"] == []
    assert cleared["organization"]["monthlyCreditLimit"] is None
    assert cleared["organization"]["externalId"] is None
    assert cleared["organization"]["plan"] == "ENTERPRISE"
    assert await read_organization(admin, tenant.organization_gid) == cleared["organization"]


async def test_updating_a_missing_organization_is_not_found(
    gql: GraphQLClient, admin_key: str, tenant: Tenant
) -> None:
    admin = gql.with_key(admin_key)
    for organization_id in (random_org_id(), "garbage", tenant.project_gid):
        payload = await admin.mutate(UPDATE, {"id": organization_id, "name": "Ghost"})
        assert payload["organization"] is None
        assert errors_of(payload) == [("NOT_FOUND", ["input", "id"])], organization_id
    assert await organization_names(admin) == ["Acme"]


# ---- organizations (pagination) and organization(id) ---------------------------------------------


async def test_organizations_pages_through_every_organization_once(
    gql: GraphQLClient, admin_key: str
) -> None:
    admin = gql.with_key(admin_key)
    names = [f"Org {i}" for i in range(5)]
    for name in names:
        assert (await admin.mutate(CREATE, {"name": name}))["userErrors"] == []

    seen: list[str] = []
    pages: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await admin.data(ORGANIZATIONS, {"first": 2, "after": after}))["organizations"]
        pages.append(page)
        seen += [edge["node"]["name"] for edge in page["edges"]]
        assert [n["name"] for n in page["nodes"]] == [e["node"]["name"] for e in page["edges"]]
        assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert seen == names  # creation order, no duplicates, nothing missed
    assert [len(p["edges"]) for p in pages] == [2, 2, 1]
    assert [p["pageInfo"]["hasPreviousPage"] for p in pages] == [False, True, True]


async def test_organizations_after_the_last_cursor_is_empty(gql: GraphQLClient, admin_key: str) -> None:
    admin = gql.with_key(admin_key)
    await admin.mutate(CREATE, {"name": "Only"})
    first = (await admin.data(ORGANIZATIONS, {"first": 1}))["organizations"]
    assert first["pageInfo"]["hasNextPage"] is False
    rest = (await admin.data(ORGANIZATIONS, {"first": 1, "after": first["pageInfo"]["endCursor"]}))[
        "organizations"
    ]
    assert rest["edges"] == []
    assert rest["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": None,
        "endCursor": None,
    }


def _cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


BAD_PAGE_ARGUMENTS: list[dict[str, Any]] = [
    {"first": 0},
    {"first": -1},
    {"first": 101},
    {"after": "garbage!"},
    {"after": _cursor(b'{"not": "a list"}')},
    {"after": _cursor(b'["not a date", "not a uuid"]')},
    {"after": _cursor(b'["2024-01-01T00:00:00+00:00"]')},
]


async def test_bad_page_arguments_are_bad_user_input(
    gql: GraphQLClient, admin_key: str, subtests: pytest.Subtests
) -> None:
    for arguments in BAD_PAGE_ARGUMENTS:
        with subtests.test(arguments=arguments):
            body = await gql.with_key(admin_key).post(ORGANIZATIONS, arguments)
            assert error_codes(body) == ["BAD_USER_INPUT"]
            assert body["data"] is None


async def test_first_100_is_allowed(gql: GraphQLClient, admin_key: str) -> None:
    data = await gql.with_key(admin_key).data(ORGANIZATIONS, {"first": 100})
    assert data["organizations"]["edges"] == []


async def test_organizations_is_for_platform_admins_only(gql: GraphQLClient, tenant: Tenant) -> None:
    for role in Role:
        body = await gql.with_key(tenant.keys[role]).post(ORGANIZATIONS)
        assert error_codes(body) == ["FORBIDDEN"], role


async def test_organization_by_id(gql: GraphQLClient, admin_key: str, tenant: Tenant) -> None:
    expected = {
        "id": tenant.organization_gid,
        "name": "Acme",
        "plan": "PRO",
        "monthlyCreditLimit": None,
        "autoMigrateEndOfLife": False,
        "externalId": "ext-Acme",
    }
    for key in (admin_key, *tenant.keys.values()):
        assert await read_organization(gql.with_key(key), tenant.organization_gid) == expected
    node = await gql.with_key(tenant.admin_key).data(
        "query($id: ID!) { node(id: $id) { id ... on Organization { name } } }",
        {"id": tenant.organization_gid},
    )
    assert node["node"] == {"id": tenant.organization_gid, "name": "Acme"}
    assert await read_organization(gql.with_key(admin_key), random_org_id()) is None


async def test_organization_needs_a_key(gql: GraphQLClient, tenant: Tenant) -> None:
    body = await gql.post(ORGANIZATION, {"id": tenant.organization_gid})
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert body["data"] == {"organization": None}


# ---- viewer ---------------------------------------------------------------------------------------


def permissions_of(role: Role) -> list[str]:
    return sorted(p.value for p in ROLE_PERMISSIONS[role])


async def test_viewer_of_an_organization_key(gql: GraphQLClient, tenant: Tenant) -> None:
    for role in Role:
        data = await gql.with_key(tenant.keys[role]).data(VIEWER)
        assert data["viewer"] == {
            "kind": "API_KEY",
            "permissions": permissions_of(role),
            "isPlatformAdmin": False,
            "organization": {"name": "Acme"},
            "project": None,
        }


async def test_viewer_of_a_project_scoped_key(gql: GraphQLClient, tenant: Tenant) -> None:
    project_key = await create_key(gql.with_key(tenant.admin_key), tenant, "VIEWER", tenant.project_gid)
    data = await gql.with_key(project_key).data(VIEWER)
    assert data["viewer"] == {
        "kind": "API_KEY",
        "permissions": permissions_of(Role.VIEWER),
        "isPlatformAdmin": False,
        "organization": {"name": "Acme"},
        "project": {"name": "Acme project"},
    }


async def test_viewer_of_a_platform_admin(gql: GraphQLClient, admin_key: str) -> None:
    data = await gql.with_key(admin_key).data(VIEWER)
    assert data["viewer"] == {
        "kind": "API_KEY",
        "permissions": sorted(p.value for p in Permission),
        "isPlatformAdmin": True,
        "organization": None,
        "project": None,
    }


async def test_viewer_needs_a_key(gql: GraphQLClient) -> None:
    body = await gql.post(VIEWER)
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert body["errors"][0]["message"] == "authentication required"
