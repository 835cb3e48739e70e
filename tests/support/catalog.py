"""GraphQL documents and helpers for catalog tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from app.db import Database
from app.domain.auth import OPERATOR
from app.domain.ids import decode_any, encode_id
from app.services.container import Services
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient

BASE_FIELDS = """
  id name kind provider providerModelId modelUrl modelGroup apiType contextWindow maxOutputTokens
  capabilities { streaming tools vision reasoning } creditMultiplier accessTier isVisible isRecommended
  enabled lifecycleState endOfLifeAt deprecationNotice replacement { id name } systemPromptOverride
  effectiveSystemPrompt providerSettings hasToken hasClientKey createdAt updatedAt
"""
MODEL_FIELDS = (
    BASE_FIELDS
    + """
  ... on UserModel { scope isDefault parent { id name } organization { name } project { name }
                     assignedProjects { id }
                     fallbacks { enabled failedRequests durationMinutes notifyEmails model { id } }
                     overrides { contextWindow maxOutputTokens enabled endOfLifeAt } connection { id } }
"""
)

SYSTEM_CREATE = f"""mutation($input: SystemModelCreateInput!) {{ systemModelCreate(input: $input) {{
  model {{ {BASE_FIELDS} }} userErrors {{ code field message }} }} }}"""
SYSTEM_UPDATE = f"""mutation($input: SystemModelUpdateInput!) {{ systemModelUpdate(input: $input) {{
  model {{ {BASE_FIELDS} }} userErrors {{ code field message }} }} }}"""
USER_CREATE = f"""mutation($input: UserModelCreateInput!) {{ userModelCreate(input: $input) {{
  model {{ {MODEL_FIELDS} }} userErrors {{ code field message }} }} }}"""
USER_UPDATE = f"""mutation($input: UserModelUpdateInput!) {{ userModelUpdate(input: $input) {{
  model {{ {MODEL_FIELDS} }} userErrors {{ code field message }} }} }}"""
MODEL_DELETE = """mutation($input: ModelDeleteInput!) { modelDelete(input: $input) {
  deletedModelId userErrors { code field message } } }"""
MODELS = f"""query($first: Int, $after: String, $filter: ModelFilter) {{
  models(first: $first, after: $after, filter: $filter) {{
    nodes {{ {MODEL_FIELDS} }} pageInfo {{ hasNextPage endCursor }} }} }}"""
MODEL = f"query($id: ID!) {{ model(id: $id) {{ {MODEL_FIELDS} }} }}"
AVAILABLE = """query($projectId: ID, $group: ModelGroup) {
  availableModels(projectId: $projectId, modelGroup: $group) { id name lifecycleState accessTier } }"""


def system_model(name: str = "gpt-test", **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": name,
        "provider": "OPENAI",
        "providerModelId": name,
        "modelGroup": "CHAT",
        "contextWindow": 128000,
        "maxOutputTokens": 16000,
        "capabilities": {"streaming": True, "tools": True},
        "creditMultiplier": "2.5",
        "accessTier": "STANDARD",
    }
    values.update(overrides)
    return values


async def create_system_model(
    admin: GraphQLClient, name: str = "gpt-test", **overrides: Any
) -> dict[str, Any]:
    payload = await admin.mutate(SYSTEM_CREATE, system_model(name, **overrides))
    assert payload["userErrors"] == [], payload["userErrors"]
    model: dict[str, Any] = payload["model"]
    return model


async def create_user_model(client: GraphQLClient, **values: Any) -> dict[str, Any]:
    payload = await client.mutate(USER_CREATE, values)
    assert payload["userErrors"] == [], payload["userErrors"]
    model: dict[str, Any] = payload["model"]
    return model


def codes(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


# ---- more documents and helpers for the catalog test modules ---------------------------------------

NODE = f"query($id: ID!) {{ node(id: $id) {{ id ... on Model {{ {MODEL_FIELDS} }} }} }}"
SYSTEM_PROMPT_CREATE = """mutation($input: SystemPromptCreateInput!) { systemPromptCreate(input: $input) {
  systemPrompt { id name text updatedAt } userErrors { code field message } } }"""
SYSTEM_PROMPT_UPDATE = """mutation($input: SystemPromptUpdateInput!) { systemPromptUpdate(input: $input) {
  systemPrompt { id name text updatedAt } userErrors { code field message } } }"""
CONNECTION_FIELDS = "id name provider hasToken hasClientKey"
CONNECTION_CREATE = f"""mutation($input: ConnectionCreateInput!) {{ connectionCreate(input: $input) {{
  connection {{ {CONNECTION_FIELDS} }} userErrors {{ code field message }} }} }}"""
CONNECTION_UPDATE = f"""mutation($input: ConnectionUpdateInput!) {{ connectionUpdate(input: $input) {{
  connection {{ {CONNECTION_FIELDS} }} userErrors {{ code field message }} }} }}"""
CONNECTIONS = f"""query($id: ID!) {{ connections(organizationId: $id, first: 100) {{
  nodes {{ {CONNECTION_FIELDS} }} }} }}"""
ORGANIZATION_UPDATE = """mutation($input: OrganizationUpdateInput!) { organizationUpdate(input: $input) {
  organization { id autoMigrateEndOfLife } userErrors { code field message } } }"""


def uuid_of(global_id: str) -> UUID:
    decoded = decode_any(global_id)
    assert decoded is not None, global_id
    return decoded[1]


def at(days: float) -> str:
    """An ISO timestamp `days` from now (negative: in the past)."""
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


async def create_connection(client: GraphQLClient, organization_gid: str, **fields: Any) -> dict[str, Any]:
    values = {"organizationId": organization_gid, "name": "openai-prod", "provider": "OPENAI", **fields}
    payload = await client.mutate(CONNECTION_CREATE, values)
    assert payload["userErrors"] == [], payload["userErrors"]
    connection: dict[str, Any] = payload["connection"]
    return connection


async def create_system_prompt(
    client: GraphQLClient, name: str, *texts: str, organization_gid: str | None = None
) -> dict[str, Any]:
    values: dict[str, Any] = {"name": name, "particles": [{"kind": "ROLE", "text": t} for t in texts]}
    if organization_gid is not None:
        values["organizationId"] = organization_gid
    payload = await client.mutate(SYSTEM_PROMPT_CREATE, values)
    assert payload["userErrors"] == [], payload["userErrors"]
    prompt: dict[str, Any] = payload["systemPrompt"]
    return prompt


async def list_models(
    client: GraphQLClient, model_filter: dict[str, Any] | None = None, first: int = 100
) -> list[dict[str, Any]]:
    """Every model a `models` query returns (one page of up to 100)."""
    data = await client.data(MODELS, {"first": first, "filter": model_filter})
    assert data["models"]["pageInfo"]["hasNextPage"] is False
    nodes: list[dict[str, Any]] = data["models"]["nodes"]
    return nodes


async def model_names(client: GraphQLClient, model_filter: dict[str, Any] | None = None) -> list[str]:
    return [m["name"] for m in await list_models(client, model_filter)]


async def available_names(
    client: GraphQLClient, project_gid: str | None = None, group: str | None = None
) -> list[str]:
    data = await client.data(AVAILABLE, {"projectId": project_gid, "group": group})
    return [m["name"] for m in data["availableModels"]]


async def fetch_model(client: GraphQLClient, model_gid: str) -> dict[str, Any] | None:
    model: dict[str, Any] | None = (await client.data(MODEL, {"id": model_gid}))["model"]
    return model


async def add_project(services: Services, tenant: Tenant, name: str) -> str:
    """Another project of `tenant`'s organization; its global id."""
    project = await services.projects.create(OPERATOR, tenant.organization.id, name)
    return encode_id("Project", project.id)


async def stored_catalog(db: Database) -> list[list[dict[str, Any]]]:
    """Every stored row of the catalog tables, to prove that a refused change wrote nothing."""
    tables = ("models", "model_project_assignments", "model_fallbacks", "connections", "system_prompts")
    return [
        [dict(r) for r in await db.fetch(f"SELECT * FROM {table} ORDER BY 1, 2")]  # noqa: S608
        for table in tables
    ]
