"""Tenant isolation: another organization's objects read and fail exactly like missing ones.

Globex's admin key (`other_tenant`) tries every query and mutation on Acme's (`tenant`) objects.
Each response must equal, byte for byte apart from request ids, the response for a random id that
exists nowhere; and Acme's data, read with Acme's own key, must be unchanged afterwards.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from app.domain.ids import encode_id
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient

Ids = dict[str, str]

# Placeholders in the variables below, filled with Acme's ids or with random ones.
ORG, PROJECT, KEY, OWN_ORG = "$ORG", "$PROJECT", "$KEY", "$OWN_ORG"

READS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    # name: (document, variables, the data a missing object gives)
    "organization": (
        "query($id: ID!) { organization(id: $id) { id name projects { nodes { id } } } }",
        {"id": ORG},
        {"organization": None},
    ),
    "project": (
        "query($id: ID!) { project(id: $id) { id name organization { id } } }",
        {"id": PROJECT},
        {"project": None},
    ),
    "node(Organization)": ("query($id: ID!) { node(id: $id) { id } }", {"id": ORG}, {"node": None}),
    "node(Project)": ("query($id: ID!) { node(id: $id) { id } }", {"id": PROJECT}, {"node": None}),
    "node(ApiKey)": ("query($id: ID!) { node(id: $id) { id } }", {"id": KEY}, {"node": None}),
    "apiKeys": (
        "query($id: ID!) { apiKeys(organizationId: $id) { nodes { id } pageInfo { hasNextPage } } }",
        {"id": ORG},
        {"apiKeys": {"nodes": [], "pageInfo": {"hasNextPage": False}}},
    ),
}


def _mutation(name: str, input_type: str, selection: str) -> str:
    return (
        f"mutation($input: {input_type}!) {{ {name}(input: $input) "
        f"{{ {selection} userErrors {{ __typename code field message }} }} }}"
    )


MUTATIONS: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    # name: (document, input, the field path of the NOT_FOUND user error)
    "organizationUpdate": (
        _mutation("organizationUpdate", "OrganizationUpdateInput", "organization { id }"),
        {"id": ORG, "name": "Pwned", "autoMigrateEndOfLife": True},
        ["input", "id"],
    ),
    "projectCreate": (
        _mutation("projectCreate", "ProjectCreateInput", "project { id }"),
        {"organizationId": ORG, "name": "Pwned"},
        ["input", "organizationId"],
    ),
    "projectUpdate": (
        _mutation("projectUpdate", "ProjectUpdateInput", "project { id }"),
        {"id": PROJECT, "name": "Pwned"},
        ["input", "id"],
    ),
    "projectDelete": (
        _mutation("projectDelete", "ProjectDeleteInput", "deletedProjectId"),
        {"id": PROJECT},
        ["input", "id"],
    ),
    "apiKeyCreate": (
        _mutation("apiKeyCreate", "ApiKeyCreateInput", "secret apiKey { id }"),
        {"organizationId": ORG, "name": "Pwned", "role": "ADMIN"},
        ["input", "organizationId"],
    ),
    "apiKeyCreate(projectId)": (
        _mutation("apiKeyCreate", "ApiKeyCreateInput", "secret apiKey { id }"),
        {"organizationId": OWN_ORG, "projectId": PROJECT, "name": "Pwned", "role": "VIEWER"},
        ["input", "projectId"],
    ),
    "apiKeyRevoke": (
        _mutation("apiKeyRevoke", "ApiKeyRevokeInput", "apiKey { id revokedAt }"),
        {"id": KEY},
        ["input", "id"],
    ),
}

SNAPSHOT = """
query($org: ID!, $project: ID!) {
  organization(id: $org) {
    id name plan monthlyCreditLimit autoMigrateEndOfLife externalId updatedAt
    projects(first: 100) { nodes { id name updatedAt } }
  }
  project(id: $project) { id name updatedAt }
  apiKeys(organizationId: $org, first: 100) { nodes { id name role permissions expiresAt revokedAt } }
}"""


def fill(template: dict[str, Any], ids: Ids) -> dict[str, Any]:
    return {k: ids.get(v, v) if isinstance(v, str) else v for k, v in template.items()}


def comparable(body: dict[str, Any]) -> dict[str, Any]:
    """A response without what differs between any two requests: the request id."""
    body = {k: v for k, v in body.items() if k != "_request_id"}
    if "errors" in body:
        body["errors"] = [
            {**e, "extensions": {k: v for k, v in e["extensions"].items() if k != "requestId"}}
            for e in body["errors"]
        ]
    return body


@pytest.fixture
async def acme_ids(gql: GraphQLClient, tenant: Tenant, other_tenant: Tenant) -> Ids:
    keys = await gql.with_key(tenant.admin_key).data(
        "query($id: ID!) { apiKeys(organizationId: $id) { nodes { id name } } }",
        {"id": tenant.organization_gid},
    )
    viewer_key = next(k for k in keys["apiKeys"]["nodes"] if k["name"] == "Acme viewer")
    return {
        ORG: tenant.organization_gid,
        PROJECT: tenant.project_gid,
        KEY: viewer_key["id"],
        OWN_ORG: other_tenant.organization_gid,
    }


@pytest.fixture
def missing_ids(other_tenant: Tenant) -> Ids:
    return {
        ORG: encode_id("Organization", uuid.uuid4()),
        PROJECT: encode_id("Project", uuid.uuid4()),
        KEY: encode_id("ApiKey", uuid.uuid4()),
        OWN_ORG: other_tenant.organization_gid,
    }


async def snapshot(gql: GraphQLClient, tenant: Tenant) -> dict[str, Any]:
    return await gql.with_key(tenant.admin_key).data(
        SNAPSHOT, {"org": tenant.organization_gid, "project": tenant.project_gid}
    )


async def test_another_organizations_objects_read_like_missing_ones(
    gql: GraphQLClient,
    tenant: Tenant,
    other_tenant: Tenant,
    acme_ids: Ids,
    missing_ids: Ids,
    subtests: pytest.Subtests,
) -> None:
    intruder = gql.with_key(other_tenant.admin_key)
    for name, (document, variables, missing_data) in READS.items():
        with subtests.test(read=name):
            foreign = await intruder.post(document, fill(variables, acme_ids))
            missing = await intruder.post(document, fill(variables, missing_ids))
            assert comparable(foreign) == comparable(missing)
            assert "errors" not in foreign
            assert foreign["data"] == missing_data

            # The same document with Acme's own key does find the object.
            own = await gql.with_key(tenant.admin_key).post(document, fill(variables, acme_ids))
            assert "errors" not in own
            assert own["data"] != missing_data


async def test_another_organizations_objects_cannot_be_changed_and_look_missing(
    gql: GraphQLClient,
    tenant: Tenant,
    other_tenant: Tenant,
    acme_ids: Ids,
    missing_ids: Ids,
    subtests: pytest.Subtests,
) -> None:
    intruder = gql.with_key(other_tenant.admin_key)
    before = await snapshot(gql, tenant)
    for name, (document, input_, field) in MUTATIONS.items():
        with subtests.test(mutation=name):
            foreign = await intruder.post(document, {"input": fill(input_, acme_ids)})
            missing = await intruder.post(document, {"input": fill(input_, missing_ids)})
            assert comparable(foreign) == comparable(missing)
            assert "errors" not in foreign
            (payload,) = foreign["data"].values()
            errors = payload.pop("userErrors")
            assert [(e["code"], e["field"]) for e in errors] == [("NOT_FOUND", field)]
            assert all(value is None for value in payload.values())
            assert await snapshot(gql, tenant) == before

    # Acme's keys all still work (none was revoked).
    for key in tenant.keys.values():
        data = await gql.with_key(key).data("{ viewer { organization { name } } }")
        assert data["viewer"]["organization"] == {"name": "Acme"}


async def test_the_intruders_own_lists_show_nothing_of_acme(
    gql: GraphQLClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    data = await gql.with_key(other_tenant.admin_key).data(
        """query($id: ID!) {
             organization(id: $id) { name projects { nodes { name } } }
             apiKeys(organizationId: $id) { nodes { name } }
             viewer { organization { name } }
           }""",
        {"id": other_tenant.organization_gid},
    )
    assert data == {
        "organization": {"name": "Globex", "projects": {"nodes": [{"name": "Globex project"}]}},
        "apiKeys": {"nodes": [{"name": f"Globex {role}"} for role in ("admin", "developer", "viewer")]},
        "viewer": {"organization": {"name": "Globex"}},
    }


# ---- malformed and wrong-type ids: the caller's own objects, asked for the wrong way -------------


def _raw_id(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


BAD_ORGANIZATION_IDS: dict[str, Callable[[Tenant], str]] = {
    "garbage": lambda t: "garbage!",
    "empty": lambda t: "",
    "not a uuid": lambda t: _raw_id("Organization:not-a-uuid"),
    "unknown type": lambda t: _raw_id(f"Widget:{t.organization.id}"),
    "no type": lambda t: _raw_id(str(t.organization.id)),
    "project id": lambda t: t.project_gid,
    "project uuid labelled Organization": lambda t: encode_id("Organization", t.project.id),
}


async def test_malformed_and_wrong_type_organization_ids_are_not_found(
    gql: GraphQLClient, tenant: Tenant, subtests: pytest.Subtests
) -> None:
    client = gql.with_key(tenant.admin_key)
    for name, make_id in BAD_ORGANIZATION_IDS.items():
        with subtests.test(id=name):
            bad_id = make_id(tenant)
            data = await client.data(
                """query($id: ID!) {
                     organization(id: $id) { id }
                     apiKeys(organizationId: $id) { nodes { id } }
                   }""",
                {"id": bad_id},
            )
            assert data == {"organization": None, "apiKeys": {"nodes": []}}
            for mutation, input_, field in [
                ("organizationUpdate", {"id": bad_id, "name": "Renamed"}, "id"),
                ("projectCreate", {"organizationId": bad_id, "name": "New"}, "organizationId"),
                ("apiKeyCreate", {"organizationId": bad_id, "name": "New"}, "organizationId"),
            ]:
                payload = await client.mutate(MUTATIONS[mutation][0], input_)
                assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
                    ("NOT_FOUND", ["input", field])
                ]


BAD_PROJECT_IDS: dict[str, Callable[[Tenant], str]] = {
    "garbage": lambda t: "%%%",
    "not a uuid": lambda t: _raw_id("Project:123"),
    "organization id": lambda t: t.organization_gid,
    "organization uuid labelled Project": lambda t: encode_id("Project", t.organization.id),
    "project uuid labelled ApiKey": lambda t: encode_id("ApiKey", t.project.id),
}


async def test_malformed_and_wrong_type_project_ids_are_not_found(
    gql: GraphQLClient, tenant: Tenant, subtests: pytest.Subtests
) -> None:
    client = gql.with_key(tenant.admin_key)
    for name, make_id in BAD_PROJECT_IDS.items():
        with subtests.test(id=name):
            bad_id = make_id(tenant)
            data = await client.data("query($id: ID!) { project(id: $id) { id } }", {"id": bad_id})
            assert data == {"project": None}
            for mutation, input_ in [
                ("projectUpdate", {"id": bad_id, "name": "Renamed"}),
                ("projectDelete", {"id": bad_id}),
            ]:
                payload = await client.mutate(MUTATIONS[mutation][0], input_)
                assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
                    ("NOT_FOUND", ["input", "id"])
                ]
    assert (await snapshot(gql, tenant))["project"]["name"] == "Acme project"


async def test_malformed_node_ids_are_null(gql: GraphQLClient, tenant: Tenant) -> None:
    client = gql.with_key(tenant.admin_key)
    for bad_id in ["", "garbage!", _raw_id("Organization:x"), _raw_id(f"Widget:{tenant.organization.id}")]:
        data = await client.data("query($id: ID!) { node(id: $id) { id } }", {"id": bad_id})
        assert data == {"node": None}, bad_id
