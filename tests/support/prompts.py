"""GraphQL documents and helpers for prompt tests."""

from __future__ import annotations

from typing import Any

from app.services.container import Services
from tests.support.catalog import create_system_model
from tests.support.graphql import GraphQLClient

RUN_FIELDS = """
  id renderedPrompt variables output usage { inputTokens outputTokens totalTokens credits }
  servedBy { id name } status errorCode errorMessage requestId startedAt finishedAt
"""
PROMPT_FIELDS = f"""
  id name template model {{ id name }} systemPrompt temperature maxTokens variables project {{ id }}
  createdAt updatedAt latestRun {{ {RUN_FIELDS} }}
"""
USER_ERRORS = "userErrors { code field message }"

PROMPT_CREATE = f"""mutation($input: PromptCreateInput!) {{ promptCreate(input: $input) {{
  prompt {{ {PROMPT_FIELDS} }} {USER_ERRORS} }} }}"""
PROMPT_UPDATE = f"""mutation($input: PromptUpdateInput!) {{ promptUpdate(input: $input) {{
  prompt {{ {PROMPT_FIELDS} }} {USER_ERRORS} }} }}"""
PROMPT_DELETE = f"""mutation($input: PromptDeleteInput!) {{ promptDelete(input: $input) {{
  deletedPromptId {USER_ERRORS} }} }}"""
PROMPT_RUN = f"""mutation($input: PromptRunInput!) {{ promptRun(input: $input) {{
  run {{ {RUN_FIELDS} }} warnings {{ code message }} requestId {USER_ERRORS} }} }}"""
PROMPTS = f"""query($project: ID!, $first: Int, $after: String) {{
  prompts(projectId: $project, first: $first, after: $after) {{
    nodes {{ {PROMPT_FIELDS} }} pageInfo {{ hasNextPage endCursor }} }} }}"""
PROMPT_NODE = f"query($id: ID!) {{ node(id: $id) {{ id ... on Prompt {{ {PROMPT_FIELDS} }} }} }}"
RUNS = f"""query($id: ID!, $first: Int, $after: String) {{ node(id: $id) {{ ... on Prompt {{
  latestRun {{ id startedAt finishedAt }}
  runs(first: $first, after: $after) {{
    nodes {{ {RUN_FIELDS} }} pageInfo {{ hasNextPage hasPreviousPage endCursor }} }} }} }} }}"""


def errors_of(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def create_echo_model(admin: GraphQLClient, name: str = "echo", **fields: Any) -> dict[str, Any]:
    """A system model on the offline ECHO provider: it answers "Echo: <prompt>", a token a word."""
    return await create_system_model(
        admin,
        name,
        provider="ECHO",
        providerModelId="echo-1",
        modelUrl=None,
        creditMultiplier="1.5",
        **fields,
    )


async def create_prompt(client: GraphQLClient, project_gid: str, **fields: Any) -> dict[str, Any]:
    values = {"projectId": project_gid, "name": "tweet", "template": "About: {{ topic }}", **fields}
    payload = await client.mutate(PROMPT_CREATE, values)
    assert payload["userErrors"] == [], payload["userErrors"]
    prompt: dict[str, Any] = payload["prompt"]
    return prompt


async def run_prompt(client: GraphQLClient, prompt_gid: str, variables: Any = None) -> dict[str, Any]:
    """promptRun's payload (successful or not)."""
    return await client.mutate(PROMPT_RUN, {"promptId": prompt_gid, "variables": variables})


async def stored_runs(services: Services) -> list[dict[str, Any]]:
    rows = await services.db.fetch("SELECT * FROM prompt_runs ORDER BY started_at, id")
    return [dict(r) for r in rows]


async def stored_prompts(services: Services) -> list[dict[str, Any]]:
    rows = await services.db.fetch("SELECT * FROM prompts ORDER BY created_at, id")
    return [dict(r) for r in rows]
