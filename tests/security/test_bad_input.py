"""Input that no column can store is refused with a clear error on its field, never a 500.

The cases found by hand (issue 12, item 6): a NUL character in strings that reach PostgreSQL, a
creditMultiplier of "NaN", decimals far below the column's precision ("1e-1000000" failed, "1e-400"
was stored as 0), and an expiresAt without a UTC offset. test_input_fuzz.py tries every input field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.domain.auth import Role
from tests.conftest import LiveServer
from tests.support.catalog import MODELS, SYSTEM_CREATE, USER_CREATE
from tests.support.factories import Tenant
from tests.support.gateway import stream_events, ws_url
from tests.support.graphql import GraphQLClient, error_codes
from tests.support.prompts import PROMPT_CREATE, PROMPT_RUN, create_echo_model, create_prompt
from tests.support.stored_rows import stored_rows

ERRORS = "userErrors { code field message }"
ORGANIZATION_CREATE = f"""mutation($input: OrganizationCreateInput!) {{
  organizationCreate(input: $input) {{ organization {{ id monthlyCreditLimit }} {ERRORS} }} }}"""
PROJECT_CREATE = f"""mutation($input: ProjectCreateInput!) {{
  projectCreate(input: $input) {{ project {{ id }} {ERRORS} }} }}"""
API_KEY_CREATE = f"""mutation($input: ApiKeyCreateInput!) {{
  apiKeyCreate(input: $input) {{ apiKey {{ id expiresAt }} {ERRORS} }} }}"""
CONNECTION_CREATE = f"""mutation($input: ConnectionCreateInput!) {{
  connectionCreate(input: $input) {{ connection {{ id }} {ERRORS} }} }}"""
SYSTEM_PROMPT_CREATE = f"""mutation($input: SystemPromptCreateInput!) {{
  systemPromptCreate(input: $input) {{ systemPrompt {{ id }} {ERRORS} }} }}"""

NUL = "\x00"


@dataclass
class World:
    admin: GraphQLClient
    org_admin: GraphQLClient
    tenant: Tenant
    echo: dict[str, Any]
    prompt: dict[str, Any]


@pytest.fixture
async def world(gql: GraphQLClient, admin_key: str, tenant: Tenant) -> World:
    admin = gql.with_key(admin_key)
    org_admin = gql.with_key(tenant.keys[Role.ADMIN])
    echo = await create_echo_model(admin)
    prompt = await create_prompt(org_admin, tenant.project_gid, template="About: {{ topic }}")
    return World(admin, org_admin, tenant, echo, prompt)


@dataclass(frozen=True)
class Case:
    """One mutation whose input carries one bad value at `field`."""

    document: str
    make_input: Callable[[World], dict[str, Any]]
    field: list[str]
    as_admin: bool = False


def org(world: World) -> str:
    return world.tenant.organization_gid


def user_model(world: World, **fields: Any) -> dict[str, Any]:
    return {"organizationId": org(world), "name": "variant", "parentModelId": world.echo["id"], **fields}


NUL_CASES = {
    "organization name": Case(
        ORGANIZATION_CREATE, lambda w: {"name": f"Initech{NUL}"}, ["input", "name"], as_admin=True
    ),
    "organization externalId": Case(
        ORGANIZATION_CREATE,
        lambda w: {"name": "Initech", "externalId": f"ext{NUL}"},
        ["input", "externalId"],
        as_admin=True,
    ),
    "project name": Case(
        PROJECT_CREATE, lambda w: {"organizationId": org(w), "name": f"p{NUL}"}, ["input", "name"]
    ),
    "API key name": Case(
        API_KEY_CREATE, lambda w: {"organizationId": org(w), "name": f"ci{NUL}"}, ["input", "name"]
    ),
    "connection description": Case(
        CONNECTION_CREATE,
        lambda w: {"organizationId": org(w), "name": "c", "provider": "OPENAI", "description": NUL},
        ["input", "description"],
    ),
    "model name": Case(USER_CREATE, lambda w: user_model(w, name=f"v{NUL}"), ["input", "name"]),
    "model description": Case(
        USER_CREATE, lambda w: user_model(w, description=f"d{NUL}"), ["input", "description"]
    ),
    "model system prompt override": Case(
        USER_CREATE,
        lambda w: user_model(w, systemPromptOverride=f"Be brief.{NUL}"),
        ["input", "systemPromptOverride"],
    ),
    "model provider setting (jsonb)": Case(
        USER_CREATE,
        lambda w: user_model(w, providerSettings={"wordDelayMs": f"1{NUL}"}),
        ["input", "providerSettings", "wordDelayMs"],
    ),
    "system prompt particle": Case(
        SYSTEM_PROMPT_CREATE,
        lambda w: {"organizationId": org(w), "name": "sp", "particles": [{"kind": "ROLE", "text": NUL}]},
        ["input", "particles", "0", "text"],
    ),
    "prompt template": Case(
        PROMPT_CREATE,
        lambda w: {"projectId": w.tenant.project_gid, "name": "t2", "template": f"About{NUL}"},
        ["input", "template"],
    ),
    "template variable (jsonb)": Case(
        PROMPT_RUN,
        lambda w: {"promptId": w.prompt["id"], "variables": {"topic": f"cats{NUL}"}},
        ["input", "variables", "topic"],
    ),
}


async def refused_on(case: Case, world: World, server: LiveServer, code: str) -> dict[str, Any]:
    """Sends the case; asserts that the field is refused with `code` and that nothing was stored."""
    client = world.admin if case.as_admin else world.org_admin
    before = await stored_rows(server.services.db)
    body = await client.post(case.document, {"input": case.make_input(world)})
    assert body["_status"] == 200, body
    assert "errors" not in body, body["errors"]
    (payload,) = body["data"].values()
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, case.field)]
    assert await stored_rows(server.services.db) == before
    result: dict[str, Any] = payload
    return result


@pytest.mark.parametrize("name", NUL_CASES)
async def test_a_nul_character_is_refused_on_its_field(name: str, world: World, server: LiveServer) -> None:
    payload = await refused_on(NUL_CASES[name], world, server, "INVALID")
    assert "NUL" in payload["userErrors"][0]["message"]


async def test_a_nul_character_in_a_streamed_chat_is_an_error_event(world: World, server: LiveServer) -> None:
    key = world.tenant.keys[Role.DEVELOPER]
    messages = [{"role": "USER", "content": "Hi"}, {"role": "USER", "content": f"there{NUL}"}]
    events = await stream_events(
        ws_url(server.url), key, {"input": {"model": world.echo["id"], "messages": messages}}
    )
    assert [(e["__typename"], e["code"]) for e in events] == [("ChatStreamError", "INVALID")]
    assert "messages.1.content" in events[0]["message"]


async def test_a_nul_character_in_a_search_filter_is_a_bad_user_input(world: World) -> None:
    body = await world.org_admin.post(MODELS, {"filter": {"search": f"echo{NUL}"}})
    assert body["_status"] == 200
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "filter.search" in body["errors"][0]["message"]


def system_model(**fields: Any) -> dict[str, Any]:
    return {"name": "gpt-x", "provider": "ECHO", "providerModelId": "echo-1", **fields}


@pytest.mark.parametrize("value", ["NaN", "1e-1000000", "1e-400", "0.0000001"])
async def test_a_credit_multiplier_the_column_cannot_hold_exactly_is_refused(
    value: str, world: World, server: LiveServer
) -> None:
    case = Case(
        SYSTEM_CREATE,
        lambda w: system_model(creditMultiplier=value),
        ["input", "creditMultiplier"],
        as_admin=True,
    )
    await refused_on(case, world, server, "OUT_OF_RANGE")


@pytest.mark.parametrize("value", ["1e-1000000", "1e-400", "0.0000001"])
async def test_a_credit_limit_the_column_cannot_hold_exactly_is_refused(
    value: str, world: World, server: LiveServer
) -> None:
    case = Case(
        ORGANIZATION_CREATE,
        lambda w: {"name": "Initech", "monthlyCreditLimit": value},
        ["input", "monthlyCreditLimit"],
        as_admin=True,
    )
    await refused_on(case, world, server, "OUT_OF_RANGE")


async def test_decimals_the_columns_hold_are_stored_exactly(world: World) -> None:
    payload = await world.admin.mutate(SYSTEM_CREATE, system_model(creditMultiplier="0.000001"))
    assert payload["model"]["creditMultiplier"] == "0.000001"
    payload = await world.admin.mutate(
        ORGANIZATION_CREATE, {"name": "Initech", "monthlyCreditLimit": "99999999999999.999999"}
    )
    assert payload["organization"]["monthlyCreditLimit"] == "99999999999999.999999"


async def test_an_expiry_without_an_offset_is_read_as_utc(world: World) -> None:
    moment = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    naive = moment.replace(tzinfo=None).isoformat()
    payload = await world.org_admin.mutate(
        API_KEY_CREATE, {"organizationId": org(world), "name": "ci", "expiresAt": naive}
    )
    assert payload["userErrors"] == []
    assert datetime.fromisoformat(payload["apiKey"]["expiresAt"]) == moment


async def test_a_datetime_that_leaves_the_calendar_in_utc_names_the_field(
    world: World, server: LiveServer
) -> None:
    before = await stored_rows(server.services.db)
    body = await world.org_admin.post(
        API_KEY_CREATE,
        {"input": {"organizationId": org(world), "name": "ci", "expiresAt": "9999-12-31T23:59:59-05:00"}},
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "$input" in body["errors"][0]["message"]
    assert ".expiresAt" in body["errors"][0]["message"]
    assert await stored_rows(server.services.db) == before
