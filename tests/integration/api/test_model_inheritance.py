"""Variants inherit every inherited field of their system model, and may narrow limits."""

from __future__ import annotations

import pytest

from app.domain.auth import Role
from tests.support.catalog import (
    MODEL,
    USER_CREATE,
    USER_UPDATE,
    codes,
    create_system_model,
    create_user_model,
)
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient


@pytest.fixture
def admin(gql: GraphQLClient, admin_key: str) -> GraphQLClient:
    return gql.with_key(admin_key)


@pytest.fixture
def org(gql: GraphQLClient, tenant: Tenant) -> GraphQLClient:
    return gql.with_key(tenant.keys[Role.ADMIN])


async def test_a_variant_shows_its_parents_values(
    admin: GraphQLClient, org: GraphQLClient, tenant: Tenant
) -> None:
    parent = await create_system_model(
        admin,
        "gpt-parent",
        modelUrl="https://api.openai.com/v1",
        accessTier="STANDARD",
        providerSettings={"customModel": "gpt-4o-2024"},
        systemPromptOverride="Be brief.",
    )
    variant = await create_user_model(
        org,
        organizationId=tenant.organization_gid,
        name="acme-gpt",
        parentModelId=parent["id"],
        contextWindow=32000,
    )
    for field in (
        "provider",
        "providerModelId",
        "modelUrl",
        "modelGroup",
        "apiType",
        "capabilities",
        "creditMultiplier",
        "accessTier",
        "maxOutputTokens",
        "providerSettings",
    ):
        assert variant[field] == parent[field], field
    assert variant["contextWindow"] == 32000
    assert variant["overrides"]["contextWindow"] == 32000
    assert variant["overrides"]["maxOutputTokens"] is None
    assert variant["parent"]["id"] == parent["id"]
    assert variant["effectiveSystemPrompt"] == "Be brief."
    assert variant["lifecycleState"] == "ACTIVE"
    fetched = (await org.data(MODEL, {"id": variant["id"]}))["model"]
    assert fetched["contextWindow"] == 32000


async def test_a_variant_cannot_set_inherited_fields_or_widen_limits(
    admin: GraphQLClient, org: GraphQLClient, tenant: Tenant
) -> None:
    parent = await create_system_model(admin, "gpt-parent")
    payload = await org.mutate(
        USER_CREATE,
        {
            "organizationId": tenant.organization_gid,
            "name": "bad",
            "parentModelId": parent["id"],
            "provider": "ANTHROPIC",
            "contextWindow": 500000,
        },
    )
    assert ("INVALID", ["input", "provider"]) in codes(payload)
    assert ("OUT_OF_RANGE", ["input", "contextWindow"]) in codes(payload)
    assert payload["model"] is None


async def test_updating_a_variant(admin: GraphQLClient, org: GraphQLClient, tenant: Tenant) -> None:
    parent = await create_system_model(admin, "gpt-parent")
    variant = await create_user_model(
        org, organizationId=tenant.organization_gid, name="v", parentModelId=parent["id"]
    )
    payload = await org.mutate(USER_UPDATE, {"id": variant["id"], "maxOutputTokens": 1000})
    assert payload["userErrors"] == []
    assert payload["model"]["maxOutputTokens"] == 1000
    stale = await org.mutate(
        USER_UPDATE, {"id": variant["id"], "maxOutputTokens": 2000, "expectedUpdatedAt": variant["updatedAt"]}
    )
    assert codes(stale) == [("CONFLICT", ["input", "expectedUpdatedAt"])]
    assert (await org.data(MODEL, {"id": variant["id"]}))["model"]["maxOutputTokens"] == 1000
