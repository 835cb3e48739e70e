"""User models: scopes and project assignment, bring-your-own-key models, project defaults, fallbacks,
deletion rules, project-bound keys and role permissions."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import pytest

from app.domain.auth import Role
from app.domain.ids import encode_id
from tests.conftest import LiveServer
from tests.support.catalog import (
    MODEL_DELETE,
    USER_CREATE,
    USER_UPDATE,
    add_project,
    available_names,
    codes,
    create_system_model,
    create_user_model,
    fetch_model,
    model_names,
    stored_catalog,
    uuid_of,
)
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient, error_codes


@pytest.fixture
def admin(gql: GraphQLClient, admin_key: str) -> GraphQLClient:
    return gql.with_key(admin_key)


@pytest.fixture
def org(gql: GraphQLClient, tenant: Tenant) -> GraphQLClient:
    return gql.with_key(tenant.keys[Role.ADMIN])


@pytest.fixture
async def second_project(server: LiveServer, tenant: Tenant) -> str:
    return await add_project(server.services, tenant, "Second project")


def own_model(tenant: Tenant, name: str, **fields: Any) -> dict[str, Any]:
    return {
        "organizationId": tenant.organization_gid,
        "name": name,
        "provider": "OPENAI",
        "providerModelId": "gpt-4o",
        **fields,
    }


async def create(client: GraphQLClient, tenant: Tenant, name: str, **fields: Any) -> dict[str, Any]:
    return await create_user_model(client, **own_model(tenant, name, **fields))


async def visible_in(client: GraphQLClient, project_gid: str) -> tuple[list[str], list[str]]:
    """The organization's models usable in a project: by availableModels and by the models filter."""
    return await available_names(client, project_gid), await model_names(client, {"projectId": project_gid})


# ---- scopes -------------------------------------------------------------------------------------------


async def test_organization_models_without_assignment_are_in_every_project(
    org: GraphQLClient, tenant: Tenant, second_project: str
) -> None:
    model = await create(org, tenant, "everywhere")
    assert (model["scope"], model["assignedProjects"], model["project"]) == ("ORGANIZATION", [], None)
    for project in (tenant.project_gid, second_project):
        assert await visible_in(org, project) == (["everywhere"], ["everywhere"])


async def test_assigned_organization_models_are_only_in_their_projects(
    server: LiveServer, org: GraphQLClient, tenant: Tenant, second_project: str
) -> None:
    third_project = await add_project(server.services, tenant, "Third project")
    model = await create(org, tenant, "assigned", assignedProjectIds=[second_project, third_project])
    assert sorted(p["id"] for p in model["assignedProjects"]) == sorted([second_project, third_project])
    assert await visible_in(org, tenant.project_gid) == ([], [])
    assert await visible_in(org, second_project) == (["assigned"], ["assigned"])
    assert await visible_in(org, third_project) == (["assigned"], ["assigned"])
    assert await model_names(org) == ["assigned"]  # the organization-wide list shows it

    # Reassigning moves it; an empty list means every project again.
    moved = await org.mutate(USER_UPDATE, {"id": model["id"], "assignedProjectIds": [tenant.project_gid]})
    assert [p["id"] for p in moved["model"]["assignedProjects"]] == [tenant.project_gid]
    assert await visible_in(org, tenant.project_gid) == (["assigned"], ["assigned"])
    assert await visible_in(org, second_project) == ([], [])
    everywhere = await org.mutate(USER_UPDATE, {"id": model["id"], "assignedProjectIds": []})
    assert everywhere["model"]["assignedProjects"] == []
    assert await visible_in(org, second_project) == (["assigned"], ["assigned"])


async def test_project_models_are_only_in_their_project(
    org: GraphQLClient, tenant: Tenant, second_project: str
) -> None:
    model = await create(org, tenant, "project-only", scope="PROJECT", projectId=tenant.project_gid)
    assert (model["scope"], model["project"]) == ("PROJECT", {"name": tenant.project.name})
    assert await visible_in(org, tenant.project_gid) == (["project-only"], ["project-only"])
    assert await visible_in(org, second_project) == ([], [])
    assert await model_names(org, {"scopes": ["PROJECT"]}) == ["project-only"]
    assert await model_names(org, {"scopes": ["ORGANIZATION"]}) == []


async def test_a_bring_your_own_key_model_stands_alone(org: GraphQLClient, tenant: Tenant) -> None:
    model = await create_user_model(
        org,
        organizationId=tenant.organization_gid,
        name="our-claude",
        provider="ANTHROPIC",
        providerModelId="claude-sonnet-4-5",
        modelUrl="https://anthropic-proxy.example.com",
        contextWindow=200000,
        maxOutputTokens=64000,
        capabilities={"streaming": True, "vision": True},
        token="sk-ant-own-key",
    )
    assert model["parent"] is None
    assert (model["provider"], model["providerModelId"]) == ("ANTHROPIC", "claude-sonnet-4-5")
    assert model["modelUrl"] == "https://anthropic-proxy.example.com"
    assert Decimal(model["creditMultiplier"]) == 0  # the organization pays its provider, not credits
    assert model["accessTier"] == "STANDARD"
    assert (model["hasToken"], model["hasClientKey"]) == (True, False)
    assert model["capabilities"] == {"streaming": True, "tools": False, "vision": True, "reasoning": False}
    assert await fetch_model(org, model["id"]) == model


async def test_a_user_model_cannot_set_its_own_credit_multiplier(org: GraphQLClient, tenant: Tenant) -> None:
    body = await org.post(
        USER_CREATE,
        {"input": own_model(tenant, "free-lunch", creditMultiplier="0.01")},
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]  # not even in the input type
    assert await model_names(org) == []


# ---- project defaults --------------------------------------------------------------------------------


async def test_setting_a_new_default_unsets_the_old_one(
    server: LiveServer, org: GraphQLClient, tenant: Tenant, second_project: str
) -> None:
    here = {"scope": "PROJECT", "projectId": tenant.project_gid}
    first = await create(org, tenant, "first", isDefault=True, **here)
    elsewhere = await create(
        org, tenant, "elsewhere", isDefault=True, scope="PROJECT", projectId=second_project
    )
    assert first["isDefault"] is True
    second = await create(org, tenant, "second", isDefault=True, **here)
    assert second["isDefault"] is True
    assert (await fetch_model(org, first["id"]) or {})["isDefault"] is False
    assert (await fetch_model(org, elsewhere["id"]) or {})["isDefault"] is True  # other projects untouched

    back = await org.mutate(USER_UPDATE, {"id": first["id"], "isDefault": True})
    assert back["userErrors"] == []
    assert back["model"]["isDefault"] is True
    assert (await fetch_model(org, second["id"]) or {})["isDefault"] is False
    defaults = await server.services.db.fetch(
        "SELECT name FROM models WHERE project_id = $1 AND is_default", uuid_of(tenant.project_gid)
    )
    assert [r["name"] for r in defaults] == ["first"]

    # Changing something else keeps the default; unsetting it leaves the project without one.
    renamed = await org.mutate(USER_UPDATE, {"id": first["id"], "description": "still default"})
    assert renamed["model"]["isDefault"] is True
    unset = await org.mutate(USER_UPDATE, {"id": first["id"], "isDefault": False})
    assert unset["model"]["isDefault"] is False
    assert (await fetch_model(org, second["id"]) or {})["isDefault"] is False


async def test_a_refused_default_change_keeps_the_old_default(org: GraphQLClient, tenant: Tenant) -> None:
    here = {"scope": "PROJECT", "projectId": tenant.project_gid}
    old = await create(org, tenant, "old", isDefault=True, **here)
    payload = await org.mutate(USER_CREATE, own_model(tenant, "new", isDefault=True, contextWindow=0, **here))
    assert codes(payload) == [("OUT_OF_RANGE", ["input", "contextWindow"])]
    assert (await fetch_model(org, old["id"]) or {})["isDefault"] is True


async def test_concurrent_defaults_leave_exactly_one_and_no_bogus_errors(
    server: LiveServer, org: GraphQLClient, tenant: Tenant
) -> None:
    here = {"scope": "PROJECT", "projectId": tenant.project_gid}
    payloads = await asyncio.gather(
        *(
            org.mutate(USER_CREATE, own_model(tenant, f"default-{i}", isDefault=True, **here))
            for i in range(8)
        )
    )
    count = await server.services.db.fetchval(
        "SELECT count(*) FROM models WHERE project_id = $1 AND is_default", uuid_of(tenant.project_gid)
    )
    assert count == 1
    assert [p["userErrors"] for p in payloads] == [[]] * 8


# ---- fallbacks -----------------------------------------------------------------------------------------


async def test_fallbacks_round_trip_in_order(
    admin: GraphQLClient, org: GraphQLClient, tenant: Tenant
) -> None:
    system = await create_system_model(admin, "gpt-system")
    wide = await create(org, tenant, "org-wide")
    local = await create(org, tenant, "local", scope="PROJECT", projectId=tenant.project_gid)
    fallbacks = [
        {
            "modelId": local["id"],
            "enabled": True,
            "failedRequests": 1,
            "durationMinutes": 1,
            "notifyEmails": [],
        },
        {
            "modelId": system["id"],
            "enabled": False,
            "failedRequests": 5,
            "durationMinutes": 60,
            "notifyEmails": ["ops@acme.test", "oncall@acme.test"],
        },
        {
            "modelId": wide["id"],
            "enabled": True,
            "failedRequests": 1000,
            "durationMinutes": 10080,
            "notifyEmails": [],
        },
    ]
    primary = await create(
        org, tenant, "primary", scope="PROJECT", projectId=tenant.project_gid, fallbacks=fallbacks
    )

    def shown(model: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {**{k: v for k, v in f.items() if k != "model"}, "modelId": f["model"]["id"]}
            for f in model["fallbacks"]
        ]

    assert shown(primary) == fallbacks
    assert shown(await fetch_model(org, primary["id"]) or {}) == fallbacks

    reordered = await org.mutate(
        USER_UPDATE, {"id": primary["id"], "fallbacks": [{"modelId": wide["id"]}, {"modelId": local["id"]}]}
    )
    assert reordered["userErrors"] == []
    defaults = {"enabled": True, "failedRequests": 3, "durationMinutes": 5, "notifyEmails": []}
    assert shown(reordered["model"]) == [
        {**defaults, "modelId": wide["id"]},
        {**defaults, "modelId": local["id"]},
    ]
    untouched = await org.mutate(USER_UPDATE, {"id": primary["id"], "description": "fallbacks not sent"})
    assert shown(untouched["model"]) == shown(reordered["model"])
    cleared = await org.mutate(USER_UPDATE, {"id": primary["id"], "fallbacks": []})
    assert cleared["model"]["fallbacks"] == []


# ---- deletion ------------------------------------------------------------------------------------------


async def test_model_delete_is_refused_while_the_model_is_used(
    admin: GraphQLClient, org: GraphQLClient, tenant: Tenant
) -> None:
    parent = await create_system_model(admin, "gpt-parent")
    variant = await create_user_model(
        org, organizationId=tenant.organization_gid, name="the-variant", parentModelId=parent["id"]
    )
    successor = await create(org, tenant, "successor")
    retiring = await create(org, tenant, "the-retiring", replacementModelId=successor["id"])
    backup = await create(org, tenant, "backup")
    primary = await create(
        org,
        tenant,
        "the-primary",
        scope="PROJECT",
        projectId=tenant.project_gid,
        fallbacks=[{"modelId": backup["id"]}],
    )
    for client, used, user in ((admin, parent, variant), (org, successor, retiring), (org, backup, primary)):
        payload = await client.mutate(MODEL_DELETE, {"id": used["id"]})
        assert codes(payload) == [("IN_USE", ["input", "id"])]
        assert user["name"] in payload["userErrors"][0]["message"]
        assert payload["deletedModelId"] is None
        assert await fetch_model(client, used["id"]) is not None

    # Once nothing uses them, they go (users first).
    for client, model in (
        (org, variant),
        (admin, parent),
        (org, retiring),
        (org, successor),
        (org, primary),
        (org, backup),
    ):
        payload = await client.mutate(MODEL_DELETE, {"id": model["id"]})
        assert payload == {"deletedModelId": model["id"], "userErrors": []}
        assert await fetch_model(client, model["id"]) is None
    assert await model_names(org, {"includeSystem": True}) == []


async def test_deleting_a_default_model_leaves_the_project_without_default(
    org: GraphQLClient, tenant: Tenant
) -> None:
    model = await create(
        org, tenant, "default", scope="PROJECT", projectId=tenant.project_gid, isDefault=True
    )
    assert (await org.mutate(MODEL_DELETE, {"id": model["id"]}))["userErrors"] == []
    assert await model_names(org) == []


# ---- project-bound keys --------------------------------------------------------------------------------


async def test_a_project_key_sees_only_its_projects_models(
    server: LiveServer, gql: GraphQLClient, org: GraphQLClient, tenant: Tenant, second_project: str
) -> None:
    await create(org, tenant, "org-wide")
    await create(org, tenant, "assigned-here", assignedProjectIds=[tenant.project_gid])
    elsewhere_assigned = await create(org, tenant, "assigned-elsewhere", assignedProjectIds=[second_project])
    await create(org, tenant, "project-here", scope="PROJECT", projectId=tenant.project_gid)
    elsewhere = await create(org, tenant, "project-elsewhere", scope="PROJECT", projectId=second_project)
    _, key = await server.services.api_keys.create_unchecked(
        name="project key",
        organization_id=tenant.organization.id,
        project_id=tenant.project.id,
        role=Role.ADMIN,
    )
    bound = gql.with_key(key)
    expected = ["assigned-here", "org-wide", "project-here"]
    assert await model_names(bound) == expected
    assert await model_names(bound, {"projectId": tenant.project_gid}) == expected
    assert await model_names(bound, {"projectId": second_project}) == []
    assert await model_names(bound, {"organizationId": tenant.organization_gid}) == expected
    assert await available_names(bound) == expected
    assert await available_names(bound, second_project) == []
    for hidden in (elsewhere, elsewhere_assigned):
        assert await fetch_model(bound, hidden["id"]) is None
        assert (await bound.data("query($id: ID!) { node(id: $id) { id } }", {"id": hidden["id"]}))[
            "node"
        ] is None
        payload = await bound.mutate(USER_UPDATE, {"id": hidden["id"], "description": "mine now"})
        assert codes(payload) == [("NOT_FOUND", ["input", "id"])]
        assert codes(await bound.mutate(MODEL_DELETE, {"id": hidden["id"]})) == [
            ("NOT_FOUND", ["input", "id"])
        ]

    # It creates models in its own project only.
    mine = await bound.mutate(
        USER_CREATE, own_model(tenant, "made-by-key", scope="PROJECT", projectId=tenant.project_gid)
    )
    assert mine["userErrors"] == []
    for elsewhere_input in (
        own_model(tenant, "x", scope="PROJECT", projectId=second_project),
        own_model(tenant, "y"),
    ):
        body = await bound.post(USER_CREATE, {"input": elsewhere_input})
        assert error_codes(body) == ["FORBIDDEN"]
    assert await model_names(org) == [
        "assigned-elsewhere",
        "assigned-here",
        "made-by-key",
        "org-wide",
        "project-elsewhere",
        "project-here",
    ]


# ---- permissions ---------------------------------------------------------------------------------------


async def test_role_permissions_on_user_models(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant
) -> None:
    viewer, developer, admin = (
        gql.with_key(tenant.keys[r]) for r in (Role.VIEWER, Role.DEVELOPER, Role.ADMIN)
    )
    before = await stored_catalog(server.services.db)
    body = await viewer.post(USER_CREATE, {"input": own_model(tenant, "by-viewer")})
    assert error_codes(body) == ["FORBIDDEN"]
    assert await stored_catalog(server.services.db) == before

    model = await create(developer, tenant, "by-developer")
    updated = await developer.mutate(USER_UPDATE, {"id": model["id"], "contextWindow": 1000})
    assert updated["userErrors"] == []
    body = await viewer.post(USER_UPDATE, {"input": {"id": model["id"], "contextWindow": 5}})
    assert error_codes(body) == ["FORBIDDEN"]
    body = await developer.post(MODEL_DELETE, {"input": {"id": model["id"]}})
    assert error_codes(body) == ["FORBIDDEN"]
    assert (await fetch_model(viewer, model["id"]) or {})["contextWindow"] == 1000  # viewers read

    deleted = await admin.mutate(MODEL_DELETE, {"id": model["id"]})
    assert deleted == {"deletedModelId": model["id"], "userErrors": []}


async def test_deleting_a_missing_model_is_not_found(org: GraphQLClient) -> None:
    missing = encode_id("UserModel", uuid.uuid4())
    assert codes(await org.mutate(MODEL_DELETE, {"id": missing})) == [("NOT_FOUND", ["input", "id"])]
    assert codes(await org.mutate(MODEL_DELETE, {"id": "not-an-id"})) == [("NOT_FOUND", ["input", "id"])]


async def test_deleting_a_project_whose_model_is_a_replacement_clears_the_reference(
    server: LiveServer, org: GraphQLClient, tenant: Tenant, second_project: str
) -> None:
    doomed = await create(org, tenant, "doomed", scope="PROJECT", projectId=second_project)
    # Only a model that serves the second project alone may name one of its models.
    user = await create(
        org, tenant, "user-of-doomed", replacementModelId=doomed["id"], assignedProjectIds=[second_project]
    )
    body = await org.post(
        """mutation($input: ProjectDeleteInput!) { projectDelete(input: $input) {
             deletedProjectId userErrors { code field message } } }""",
        {"input": {"id": second_project}},
    )
    assert "errors" not in body, body["errors"]
    payload = body["data"]["projectDelete"]
    survivor = await fetch_model(org, user["id"])
    assert survivor is not None
    # Deleted, and nothing is left pointing at the deleted model (the reference is set to null).
    assert (payload["userErrors"], payload["deletedProjectId"]) == ([], second_project)
    assert await fetch_model(org, doomed["id"]) is None
    assert survivor["replacement"] is None
