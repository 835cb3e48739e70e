"""Write scope is key scope (issue: trust boundary, item 5).

A project-bound key reads its project's view (organization models included) but changes only its
project's own models; a reference (replacement, fallback, parent) may name only a model usable
wherever the referring model is, and one it may not use reads exactly like a missing one.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from app.domain.auth import Role
from app.domain.ids import encode_id
from tests.conftest import LiveServer
from tests.support.catalog import (
    MODEL,
    MODEL_DELETE,
    USER_CREATE,
    USER_UPDATE,
    add_project,
    create_user_model,
    uuid_of,
)
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient

ECHO = {"provider": "ECHO", "providerModelId": "echo"}


@pytest.fixture
async def second_project(server: LiveServer, tenant: Tenant) -> str:
    return await add_project(server.services, tenant, "Second")


async def project_key(server: LiveServer, tenant: Tenant, project_gid: str, role: Role) -> str:
    _, key = await server.services.api_keys.create_unchecked(
        name=f"project {role.value}",
        organization_id=tenant.organization.id,
        project_id=uuid_of(project_gid),
        role=role,
    )
    return key


async def read(client: GraphQLClient, model_gid: str) -> dict[str, Any] | None:
    model: dict[str, Any] | None = (await client.data(MODEL, {"id": model_gid}))["model"]
    return model


async def test_a_project_key_reads_but_cannot_change_organization_models(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant, second_project: str
) -> None:
    org = gql.with_key(tenant.admin_key)
    shared = await create_user_model(
        org, organizationId=tenant.organization_gid, name="shared", systemPromptOverride="Be kind.", **ECHO
    )
    project_admin = gql.with_key(await project_key(server, tenant, tenant.project_gid, Role.ADMIN))
    before = await read(project_admin, shared["id"])
    assert before is not None  # in its project's view
    for change in (
        {"enabled": False},
        {"systemPromptOverride": "Say something else."},
        {"assignedProjectIds": [second_project]},  # would take the model from every other project
        {"name": "renamed"},
    ):
        payload = await project_admin.mutate(USER_UPDATE, {"id": shared["id"], **change})
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
            ("PERMISSION_DENIED", ["input", "id"])
        ]
        assert payload["model"] is None
    deleted = await project_admin.mutate(MODEL_DELETE, {"id": shared["id"]})
    assert [e["code"] for e in deleted["userErrors"]] == ["PERMISSION_DENIED"]
    assert await read(org, shared["id"]) == before

    # Its own project's models are its to change.
    own = await create_user_model(
        project_admin,
        organizationId=tenant.organization_gid,
        scope="PROJECT",
        projectId=tenant.project_gid,
        name="ours",
        **ECHO,
    )
    changed = await project_admin.mutate(USER_UPDATE, {"id": own["id"], "enabled": False})
    assert changed["userErrors"] == []
    assert (await project_admin.mutate(MODEL_DELETE, {"id": own["id"]}))["userErrors"] == []


async def test_a_reference_to_a_model_of_another_project_reads_like_a_missing_one(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant, second_project: str
) -> None:
    org = gql.with_key(tenant.admin_key)
    elsewhere = await create_user_model(
        org,
        organizationId=tenant.organization_gid,
        scope="PROJECT",
        projectId=second_project,
        name="p2",
        **ECHO,
    )
    missing = encode_id("UserModel", uuid.uuid4())
    developer = gql.with_key(await project_key(server, tenant, tenant.project_gid, Role.DEVELOPER))
    base = {
        "organizationId": tenant.organization_gid,
        "scope": "PROJECT",
        "projectId": tenant.project_gid,
        **ECHO,
    }

    def refusals(target: str) -> list[tuple[str, dict[str, Any]]]:
        fallback = {"modelId": target, "failedRequests": 3, "durationMinutes": 5}
        return [
            ("replacement", {"replacementModelId": target}),
            ("fallback", {"fallbacks": [fallback]}),
            ("parent", {"parentModelId": target, "provider": None, "providerModelId": None}),
        ]

    for (what, with_elsewhere), (_, with_missing) in zip(
        refusals(elsewhere["id"]), refusals(missing), strict=True
    ):
        seen = await developer.mutate(USER_CREATE, {**base, "name": f"{what}-a", **with_elsewhere})
        absent = await developer.mutate(USER_CREATE, {**base, "name": f"{what}-b", **with_missing})
        assert seen["userErrors"] == absent["userErrors"], what
        assert [e["code"] for e in seen["userErrors"]] == ["NOT_FOUND"], what

    # The same through an update, and for an organization-wide model naming a project's model.
    ours = await create_user_model(developer, **base, name="ours")
    seen = await developer.mutate(USER_UPDATE, {"id": ours["id"], "replacementModelId": elsewhere["id"]})
    absent = await developer.mutate(USER_UPDATE, {"id": ours["id"], "replacementModelId": missing})
    assert seen["userErrors"] == absent["userErrors"]
    org_wide = await org.mutate(
        USER_CREATE,
        {
            "organizationId": tenant.organization_gid,
            "name": "org-wide",
            "replacementModelId": ours["id"],
            **ECHO,
        },
    )
    assert [(e["code"], e["field"]) for e in org_wide["userErrors"]] == [
        ("NOT_FOUND", ["input", "replacementModelId"])
    ]
