"""Projects over real HTTP GraphQL: create, rename, delete, list, and project-scoped keys."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from app.domain.auth import Role
from app.domain.ids import encode_id
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient, error_codes

PROJECT_FIELDS = "id name organization { id name }"

CREATE = f"""
mutation Create($input: ProjectCreateInput!) {{
  projectCreate(input: $input) {{ project {{ {PROJECT_FIELDS} }} userErrors {{ code field message }} }}
}}"""

UPDATE = f"""
mutation Update($input: ProjectUpdateInput!) {{
  projectUpdate(input: $input) {{ project {{ {PROJECT_FIELDS} }} userErrors {{ code field message }} }}
}}"""

DELETE = """
mutation Delete($input: ProjectDeleteInput!) {
  projectDelete(input: $input) { deletedProjectId userErrors { code field message } }
}"""

PROJECT = f"query One($id: ID!) {{ project(id: $id) {{ {PROJECT_FIELDS} }} }}"

PROJECTS = """
query Projects($id: ID!, $first: Int, $after: String) {
  organization(id: $id) {
    projects(first: $first, after: $after) {
      edges { cursor node { id name } }
      nodes { name }
      pageInfo { hasNextPage hasPreviousPage endCursor }
    }
  }
}"""

API_KEY_CREATE = """
mutation Key($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { secret userErrors { code } } }
"""

VIEWER_ORG = "{ viewer { organization { name } } }"


def errors_of(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def project_names(client: GraphQLClient, organization_id: str) -> list[str]:
    data = await client.data(PROJECTS, {"id": organization_id, "first": 100})
    return [n["name"] for n in data["organization"]["projects"]["nodes"]]


async def create_project(client: GraphQLClient, tenant: Tenant, name: str) -> dict[str, Any]:
    payload = await client.mutate(CREATE, {"organizationId": tenant.organization_gid, "name": name})
    assert payload["userErrors"] == []
    project: dict[str, Any] = payload["project"]
    return project


async def create_key(client: GraphQLClient, tenant: Tenant, project_id: str | None, role: str) -> str:
    payload = await client.mutate(
        API_KEY_CREATE,
        {"organizationId": tenant.organization_gid, "projectId": project_id, "name": "key", "role": role},
    )
    assert payload["userErrors"] == []
    secret: str = payload["secret"]
    return secret


# ---- projectCreate --------------------------------------------------------------------------------


async def test_an_organization_admin_creates_a_project(gql: GraphQLClient, tenant: Tenant) -> None:
    client = gql.with_key(tenant.admin_key)
    created = await create_project(client, tenant, "  Beta  ")
    assert created["name"] == "Beta"
    assert created["organization"] == {"id": tenant.organization_gid, "name": "Acme"}
    assert (await client.data(PROJECT, {"id": created["id"]}))["project"] == created
    assert await project_names(client, tenant.organization_gid) == ["Acme project", "Beta"]


async def test_a_platform_admin_creates_a_project_in_any_organization(
    gql: GraphQLClient, admin_key: str, tenant: Tenant
) -> None:
    created = await create_project(gql.with_key(admin_key), tenant, "Ops")
    assert created["organization"]["name"] == "Acme"


BAD_NAMES = [("", "REQUIRED"), ("  \n ", "REQUIRED"), ("p" * 201, "TOO_LONG")]


async def test_project_create_rejects_bad_names_and_writes_nothing(
    gql: GraphQLClient, tenant: Tenant, subtests: pytest.Subtests
) -> None:
    client = gql.with_key(tenant.admin_key)
    for name, code in [*BAD_NAMES, ("acme PROJECT", "DUPLICATE"), (" Acme project ", "DUPLICATE")]:
        with subtests.test(name=name, code=code):
            payload = await client.mutate(CREATE, {"organizationId": tenant.organization_gid, "name": name})
            assert payload["project"] is None
            assert errors_of(payload) == [(code, ["input", "name"])]
            assert await project_names(client, tenant.organization_gid) == ["Acme project"]


async def test_the_same_project_name_is_fine_in_another_organization(
    gql: GraphQLClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    created = await create_project(gql.with_key(other_tenant.admin_key), other_tenant, "Acme project")
    assert created["organization"]["name"] == "Globex"
    assert await project_names(gql.with_key(tenant.admin_key), tenant.organization_gid) == ["Acme project"]


async def test_a_200_character_name_is_accepted(gql: GraphQLClient, tenant: Tenant) -> None:
    created = await create_project(gql.with_key(tenant.admin_key), tenant, "p" * 200)
    assert created["name"] == "p" * 200


async def test_project_create_in_a_missing_organization_is_not_found(
    gql: GraphQLClient, admin_key: str
) -> None:
    payload = await gql.with_key(admin_key).mutate(
        CREATE, {"organizationId": encode_id("Organization", uuid.uuid4()), "name": "Lost"}
    )
    assert errors_of(payload) == [("NOT_FOUND", ["input", "organizationId"])]


# ---- permissions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.DEVELOPER, Role.VIEWER])
async def test_project_mutations_need_organization_manage(
    gql: GraphQLClient, tenant: Tenant, role: Role, subtests: pytest.Subtests
) -> None:
    for operation, document, input_ in [
        ("create", CREATE, {"organizationId": tenant.organization_gid, "name": "New"}),
        ("update", UPDATE, {"id": tenant.project_gid, "name": "New"}),
        ("delete", DELETE, {"id": tenant.project_gid}),
    ]:
        with subtests.test(operation=operation):
            body = await gql.with_key(tenant.keys[role]).post(document, {"input": input_})
            assert error_codes(body) == ["FORBIDDEN"]
            assert body["data"] is None
    assert await project_names(gql.with_key(tenant.admin_key), tenant.organization_gid) == ["Acme project"]


async def test_project_mutations_need_a_key(gql: GraphQLClient, tenant: Tenant) -> None:
    body = await gql.post(CREATE, {"input": {"organizationId": tenant.organization_gid, "name": "Anon"}})
    assert error_codes(body) == ["UNAUTHENTICATED"]


# ---- projectUpdate --------------------------------------------------------------------------------


async def test_project_rename(gql: GraphQLClient, tenant: Tenant) -> None:
    client = gql.with_key(tenant.admin_key)
    payload = await client.mutate(UPDATE, {"id": tenant.project_gid, "name": " Renamed "})
    assert payload["userErrors"] == []
    assert payload["project"]["name"] == "Renamed"
    assert (await client.data(PROJECT, {"id": tenant.project_gid}))["project"]["name"] == "Renamed"
    # Another case of its own name is not a duplicate of itself.
    payload = await client.mutate(UPDATE, {"id": tenant.project_gid, "name": "RENAMED"})
    assert payload["userErrors"] == []
    assert payload["project"]["name"] == "RENAMED"


async def test_project_rename_rejects_bad_names_and_writes_nothing(
    gql: GraphQLClient, tenant: Tenant, subtests: pytest.Subtests
) -> None:
    client = gql.with_key(tenant.admin_key)
    await create_project(client, tenant, "Second")
    for name, code in [*BAD_NAMES, ("SECOND", "DUPLICATE")]:
        with subtests.test(name=name, code=code):
            payload = await client.mutate(UPDATE, {"id": tenant.project_gid, "name": name})
            assert payload["project"] is None
            assert errors_of(payload) == [(code, ["input", "name"])]
            assert await project_names(client, tenant.organization_gid) == ["Acme project", "Second"]


RENAME_OR_DELETE = [(UPDATE, {"name": "Taken over"}), (DELETE, {})]


async def test_missing_projects_are_not_found(
    gql: GraphQLClient, tenant: Tenant, subtests: pytest.Subtests
) -> None:
    client = gql.with_key(tenant.admin_key)
    for project_id in (encode_id("Project", uuid.uuid4()), "not-an-id", tenant.organization_gid):
        for document, extra in RENAME_OR_DELETE:
            with subtests.test(project_id=project_id, mutation=document.split()[1]):
                payload = await client.mutate(document, {"id": project_id, **extra})
                assert errors_of(payload) == [("NOT_FOUND", ["input", "id"])]
    assert await project_names(client, tenant.organization_gid) == ["Acme project"]


# ---- projectDelete --------------------------------------------------------------------------------


async def test_project_delete_removes_it_and_its_keys_stop_working_at_once(
    gql: GraphQLClient, tenant: Tenant
) -> None:
    admin = gql.with_key(tenant.admin_key)
    doomed = await create_project(admin, tenant, "Doomed")
    project_key = await create_key(admin, tenant, doomed["id"], "DEVELOPER")
    organization_key = await create_key(admin, tenant, None, "VIEWER")
    for key in (project_key, organization_key):  # both work, and are now cached
        assert (await gql.with_key(key).data(VIEWER_ORG))["viewer"]["organization"] == {"name": "Acme"}

    payload = await admin.mutate(DELETE, {"id": doomed["id"]})
    assert payload == {"deletedProjectId": doomed["id"], "userErrors": []}

    body = await gql.with_key(project_key).post(VIEWER_ORG)
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert (await gql.with_key(organization_key).data(VIEWER_ORG))["viewer"]["organization"] == {
        "name": "Acme"
    }
    assert (await admin.data(PROJECT, {"id": doomed["id"]}))["project"] is None
    assert (await admin.data("query($id: ID!) { node(id: $id) { id } }", {"id": doomed["id"]}))[
        "node"
    ] is None
    assert await project_names(admin, tenant.organization_gid) == ["Acme project"]
    # Deleting again: it is gone.
    again = await admin.mutate(DELETE, {"id": doomed["id"]})
    assert errors_of(again) == [("NOT_FOUND", ["input", "id"])]


# ---- organization { projects } ---------------------------------------------------------------------


async def test_projects_paginate(gql: GraphQLClient, tenant: Tenant) -> None:
    client = gql.with_key(tenant.admin_key)
    for i in range(4):
        await create_project(client, tenant, f"P{i}")

    seen: list[str] = []
    pages: list[dict[str, Any]] = []
    after = None
    while True:
        data = await client.data(PROJECTS, {"id": tenant.organization_gid, "first": 2, "after": after})
        page = data["organization"]["projects"]
        pages.append(page)
        seen += [e["node"]["name"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["Acme project", "P0", "P1", "P2", "P3"]
    assert [len(p["edges"]) for p in pages] == [2, 2, 1]
    assert [p["pageInfo"]["hasPreviousPage"] for p in pages] == [False, True, True]


async def test_bad_project_page_arguments(gql: GraphQLClient, tenant: Tenant) -> None:
    for arguments in ({"first": 0}, {"first": 101}, {"after": "%%%"}):
        body = await gql.with_key(tenant.admin_key).post(
            PROJECTS, {"id": tenant.organization_gid, **arguments}
        )
        assert error_codes(body) == ["BAD_USER_INPUT"], arguments


# ---- project-scoped keys --------------------------------------------------------------------------


async def test_a_project_scoped_key_sees_only_its_own_project(gql: GraphQLClient, tenant: Tenant) -> None:
    admin = gql.with_key(tenant.admin_key)
    sibling = await create_project(admin, tenant, "Sibling")
    scoped = gql.with_key(await create_key(admin, tenant, tenant.project_gid, "ADMIN"))

    assert await project_names(scoped, tenant.organization_gid) == ["Acme project"]
    assert (await scoped.data(PROJECT, {"id": tenant.project_gid}))["project"]["name"] == "Acme project"
    assert (await scoped.data(PROJECT, {"id": sibling["id"]}))["project"] is None
    node = await scoped.data("query($id: ID!) { node(id: $id) { id } }", {"id": sibling["id"]})
    assert node["node"] is None
    # The sibling cannot be renamed or deleted through the project key: it reads as missing.
    for document, extra in RENAME_OR_DELETE:
        payload = await scoped.mutate(document, {"id": sibling["id"], **extra})
        assert errors_of(payload) == [("NOT_FOUND", ["input", "id"])]
    # A project key cannot create projects, even with the admin role.
    body = await scoped.post(CREATE, {"input": {"organizationId": tenant.organization_gid, "name": "More"}})
    assert error_codes(body) == ["FORBIDDEN"]
    assert await project_names(admin, tenant.organization_gid) == ["Acme project", "Sibling"]
