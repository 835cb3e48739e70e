"""System models: only platform admins change them; every field round-trips; invisible ones are hidden
from organizations."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from app.domain.auth import Role
from tests.conftest import LiveServer
from tests.support.catalog import (
    AVAILABLE,
    MODEL_DELETE,
    SYSTEM_CREATE,
    SYSTEM_UPDATE,
    available_names,
    codes,
    create_system_model,
    create_system_prompt,
    fetch_model,
    model_names,
    stored_catalog,
    system_model,
)
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient, error_codes

# Every field a system model shows (references by id).
SYSTEM_FIELDS = """
  id name description kind provider providerModelId modelUrl modelGroup apiType contextWindow
  maxOutputTokens capabilities { streaming tools vision reasoning } creditMultiplier accessTier isVisible
  isRecommended enabled lifecycleState endOfLifeAt deprecationNotice replacement { id }
  systemPrompt { id text } systemPromptOverride effectiveSystemPrompt providerSettings hasToken hasClientKey
  updatedAt
"""
CREATE = f"""mutation($input: SystemModelCreateInput!) {{ systemModelCreate(input: $input) {{
  model {{ {SYSTEM_FIELDS} }} userErrors {{ code field message }} }} }}"""
UPDATE = f"""mutation($input: SystemModelUpdateInput!) {{ systemModelUpdate(input: $input) {{
  model {{ {SYSTEM_FIELDS} }} userErrors {{ code field message }} }} }}"""
READ = f"""query($id: ID!) {{ model(id: $id) {{ {SYSTEM_FIELDS} }}
  node(id: $id) {{ ... on Model {{ {SYSTEM_FIELDS} }} }} }}"""
LIST = f"""query {{ models(first: 100) {{ nodes {{ {SYSTEM_FIELDS} }} }} }}"""


@pytest.fixture
def admin(gql: GraphQLClient, admin_key: str) -> GraphQLClient:
    return gql.with_key(admin_key)


@pytest.fixture
def org(gql: GraphQLClient, tenant: Tenant) -> GraphQLClient:
    return gql.with_key(tenant.keys[Role.ADMIN])


def assert_round_trip(sent: dict[str, Any], model: dict[str, Any]) -> None:
    """Every sent field reads back as sent (ids of references, decimals and dates compared by value)."""
    for field, value in sent.items():
        if field == "systemPromptId":
            assert model["systemPrompt"]["id"] == value
        elif field == "replacementModelId":
            assert model["replacement"]["id"] == value
        elif field == "creditMultiplier":
            assert Decimal(model[field]) == Decimal(value)
        elif field == "endOfLifeAt":
            assert datetime.fromisoformat(model[field]) == datetime.fromisoformat(value)
        elif field == "capabilities":
            defaults = {"streaming": False, "tools": False, "vision": False, "reasoning": False}
            assert model[field] == defaults | value
        elif field in ("token", "clientKey", "secretKey"):
            continue  # write-only: see hasToken / hasClientKey
        else:
            assert model[field] == value, field


# ---- who may change system models ------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
async def test_organization_keys_cannot_create_system_models(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant, role: Role
) -> None:
    before = await stored_catalog(server.services.db)
    body = await gql.with_key(tenant.keys[role]).post(CREATE, {"input": system_model("sneaky")})
    assert error_codes(body) == ["FORBIDDEN"]
    assert body["data"] is None
    assert await stored_catalog(server.services.db) == before


@pytest.mark.parametrize(
    ("document", "changes"),
    [
        (SYSTEM_UPDATE, {"contextWindow": 1000, "name": "renamed"}),
        (SYSTEM_UPDATE, {"enabled": False}),
        (SYSTEM_UPDATE, {"token": "sk-user-token"}),
        (MODEL_DELETE, {}),
    ],
    ids=["update-fields", "disable", "set-token", "delete"],
)
async def test_organization_users_cannot_change_system_models(
    server: LiveServer,
    admin: GraphQLClient,
    org: GraphQLClient,
    document: str,
    changes: dict[str, Any],
) -> None:
    model = await create_system_model(admin, "gpt-platform")
    before = await stored_catalog(server.services.db)
    payload = await org.mutate(document, {"id": model["id"], **changes})
    assert codes(payload) == [("PERMISSION_DENIED", ["input", "id"])]
    assert payload.get("model") is None
    assert payload.get("deletedModelId") is None
    assert await stored_catalog(server.services.db) == before
    read_back = await fetch_model(org, model["id"])
    assert read_back is not None
    assert (read_back["name"], read_back["hasToken"], read_back["enabled"]) == ("gpt-platform", False, True)


async def test_a_platform_admin_updates_and_deletes_system_models(admin: GraphQLClient) -> None:
    model = await create_system_model(admin, "gpt-platform")
    payload = await admin.mutate(
        SYSTEM_UPDATE, {"id": model["id"], "contextWindow": 1000, "maxOutputTokens": 500}
    )
    assert payload["userErrors"] == []
    assert (payload["model"]["contextWindow"], payload["model"]["maxOutputTokens"]) == (1000, 500)
    deleted = await admin.mutate(MODEL_DELETE, {"id": model["id"]})
    assert deleted == {"deletedModelId": model["id"], "userErrors": []}
    assert await fetch_model(admin, model["id"]) is None


# ---- every field round-trips -------------------------------------------------------------------------


async def test_every_field_of_a_system_model_round_trips(admin: GraphQLClient) -> None:
    composition = await create_system_prompt(
        admin, "Careful assistant", "You are careful.", "Answer briefly."
    )
    replacement = await create_system_model(admin, "gpt-successor")
    sent: dict[str, Any] = {
        "name": "Azure GPT",
        "description": "GPT-4o on our Azure tenant",
        "provider": "AZURE_OPENAI",
        "providerModelId": "gpt-4o",
        "modelUrl": "https://acme.openai.azure.com/openai",
        "modelGroup": "CHAT",
        "apiType": "RESPONSES",
        "contextWindow": 128000,
        "maxOutputTokens": 16384,
        "capabilities": {"streaming": True, "tools": True, "vision": True, "reasoning": False},
        "creditMultiplier": "2.75",
        "accessTier": "PREMIUM",
        "isVisible": False,
        "isRecommended": True,
        "enabled": True,
        "endOfLifeAt": "2099-01-31T12:00:00+00:00",
        "deprecationNotice": "Moves to gpt-successor.",
        "replacementModelId": replacement["id"],
        "systemPromptOverride": "Be terse.",
        "systemPromptId": composition["id"],
        "providerSettings": {"resourceName": "acme", "deploymentName": "gpt4o", "apiVersion": "2024-10-21"},
        "token": "sk-platform-token",
    }
    payload = await admin.mutate(CREATE, sent)
    assert payload["userErrors"] == []
    created = payload["model"]
    assert_round_trip(sent, created)
    assert created["kind"] == "SYSTEM"
    assert created["lifecycleState"] == "DEPRECATED"
    assert created["effectiveSystemPrompt"] == "Be terse."  # the override wins over the composition
    assert created["systemPrompt"]["text"] == composition["text"]
    assert (created["hasToken"], created["hasClientKey"]) == (True, False)

    read = await admin.data(READ, {"id": created["id"]})
    assert read["model"] == created
    assert read["node"] == created
    listed = (await admin.data(LIST))["models"]["nodes"]
    assert created in listed

    changed: dict[str, Any] = {
        "name": "Compatible GPT",
        "description": None,
        "provider": "OPENAI_COMPATIBLE",
        "providerModelId": "llama-3.1-70b",
        "modelUrl": "https://llm.example.com/v1",
        "modelGroup": "CHAT",
        "apiType": "CHAT_COMPLETION",
        "contextWindow": 64000,
        "maxOutputTokens": 4000,
        "capabilities": {"streaming": False, "tools": False, "vision": False, "reasoning": True},
        "creditMultiplier": "0.5",
        "accessTier": "STANDARD",
        "isVisible": True,
        "isRecommended": False,
        "enabled": False,
        "endOfLifeAt": None,
        "deprecationNotice": None,
        "replacementModelId": None,
        "systemPromptOverride": None,
        "providerSettings": {"customAuthHeader": "X-Api-Token", "customModel": "llama"},
    }
    # The destination moves (provider, URL, auth header): the stored token is not sent there unless
    # it is given again.
    refused = await admin.mutate(UPDATE, {"id": created["id"], **changed})
    assert {tuple(e["field"]) for e in refused["userErrors"]} == {
        ("input", "provider"),
        ("input", "modelUrl"),
        ("input", "providerSettings", "customAuthHeader"),
    }
    payload = await admin.mutate(UPDATE, {"id": created["id"], **changed, "token": "sk-compatible-token"})
    assert payload["userErrors"] == []
    updated = payload["model"]
    for field in ("description", "endOfLifeAt", "deprecationNotice", "replacement", "systemPromptOverride"):
        assert updated[field] is None, field
    assert_round_trip({k: v for k, v in changed.items() if v is not None}, updated)
    assert updated["lifecycleState"] == "DISABLED"
    assert updated["systemPrompt"]["id"] == composition["id"]  # not sent: kept
    assert updated["effectiveSystemPrompt"] == composition["text"]  # no override: the composition
    assert (updated["hasToken"], updated["hasClientKey"]) == (True, False)
    assert (await admin.data(READ, {"id": created["id"]}))["model"] == updated


async def test_leaving_fields_out_of_an_update_keeps_them(admin: GraphQLClient) -> None:
    model = await create_system_model(
        admin, "gpt-keep", description="kept", modelUrl="https://api.openai.com/v1", isRecommended=True
    )
    payload = await admin.mutate(SYSTEM_UPDATE, {"id": model["id"], "contextWindow": 64000})
    assert payload["userErrors"] == []
    updated = payload["model"]
    for field in ("providerModelId", "modelUrl", "capabilities", "creditMultiplier", "isRecommended"):
        assert updated[field] == model[field], field
    assert updated["contextWindow"] == 64000
    assert updated["updatedAt"] > model["updatedAt"]


# ---- visibility -----------------------------------------------------------------------------------------


async def test_invisible_system_models_are_hidden_from_organizations(
    admin: GraphQLClient, org: GraphQLClient, tenant: Tenant
) -> None:
    shown = await create_system_model(admin, "gpt-shown")
    hidden = await create_system_model(admin, "gpt-hidden", isVisible=False)

    assert await fetch_model(org, hidden["id"]) is None
    assert (await org.data("query($id: ID!) { node(id: $id) { id } }", {"id": hidden["id"]}))["node"] is None
    assert await model_names(org, {"includeSystem": True}) == ["gpt-shown"]
    assert await model_names(org, {"kinds": ["SYSTEM"]}) == ["gpt-shown"]
    assert await available_names(org, tenant.project_gid) == ["gpt-shown"]
    assert (await fetch_model(org, shown["id"]) or {})["name"] == "gpt-shown"

    assert (await fetch_model(admin, hidden["id"]) or {})["isVisible"] is False
    assert await model_names(admin) == ["gpt-hidden", "gpt-shown"]
    assert await model_names(admin, {"kinds": ["SYSTEM"]}) == ["gpt-hidden", "gpt-shown"]
    # A platform admin is not in an organization: nothing is "available" to call.
    assert (await admin.data(AVAILABLE))["availableModels"] == []


async def test_making_a_system_model_invisible_hides_it_at_once(
    admin: GraphQLClient, org: GraphQLClient, tenant: Tenant
) -> None:
    model = await create_system_model(admin, "gpt-soon-hidden")
    assert await available_names(org, tenant.project_gid) == ["gpt-soon-hidden"]
    payload = await admin.mutate(SYSTEM_UPDATE, {"id": model["id"], "isVisible": False})
    assert payload["userErrors"] == []
    assert await available_names(org, tenant.project_gid) == []
    assert await fetch_model(org, model["id"]) is None


async def test_system_model_create_requires_a_name_and_a_provider_model_id(admin: GraphQLClient) -> None:
    payload = await admin.mutate(SYSTEM_CREATE, system_model("", providerModelId=None))
    assert sorted(codes(payload)) == [
        ("REQUIRED", ["input", "name"]),
        ("REQUIRED", ["input", "providerModelId"]),
    ]
    assert payload["model"] is None
    assert await model_names(admin) == []


CLIENT_KEYS = {"clientKey": "ck-platform-client", "secretKey": "sk-platform-secret"}


async def test_platform_client_keys_are_stored_and_cleared_together(admin: GraphQLClient) -> None:
    created = await admin.mutate(
        CREATE,
        {
            **system_model("gpt-compatible", provider="OPENAI_COMPATIBLE"),
            "modelUrl": "https://llm.example.com",
            **CLIENT_KEYS,
        },
    )
    assert created["userErrors"] == []
    assert (created["model"]["hasToken"], created["model"]["hasClientKey"]) == (False, True)
    model = await create_system_model(admin, "gpt-later")
    updated = await admin.mutate(UPDATE, {"id": model["id"], **CLIENT_KEYS})
    assert updated["userErrors"] == []
    assert updated["model"]["hasClientKey"] is True
    cleared = await admin.mutate(UPDATE, {"id": model["id"], "clearClientKeys": True})
    assert cleared["userErrors"] == []
    assert cleared["model"]["hasClientKey"] is False
