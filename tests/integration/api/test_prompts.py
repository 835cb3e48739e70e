"""Prompts over real HTTP GraphQL: create, read, update, delete, the rules checked when a prompt is
saved (template syntax with positions, limits, the model), permissions, isolation, and the README's
example. Runs are in test_prompt_runs.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from app.domain.auth import Role
from app.services.container import Services
from tests.conftest import LiveServer
from tests.support.catalog import (
    MODEL_DELETE,
    SYSTEM_UPDATE,
    add_project,
    create_system_model,
    create_user_model,
)
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient, error_codes
from tests.support.prompts import (
    PROMPT_CREATE,
    PROMPT_DELETE,
    PROMPT_NODE,
    PROMPT_RUN,
    PROMPT_UPDATE,
    PROMPTS,
    create_echo_model,
    create_prompt,
    errors_of,
    run_prompt,
    stored_prompts,
    stored_runs,
)

README = Path(__file__).resolve().parents[3] / "README.md"
TEMPLATE = "Generate a tweet about: {{message.content}} in a {{ tone }} tone. {{ message.content }}!"


@pytest.fixture
def admin(gql: GraphQLClient, admin_key: str) -> GraphQLClient:
    return gql.with_key(admin_key)


@pytest.fixture
def dev(gql: GraphQLClient, tenant: Tenant) -> GraphQLClient:
    return gql.with_key(tenant.keys[Role.DEVELOPER])


@pytest.fixture
async def echo(admin: GraphQLClient) -> dict[str, Any]:
    return await create_echo_model(admin)


async def read(client: GraphQLClient, prompt_gid: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = (await client.data(PROMPT_NODE, {"id": prompt_gid}))["node"]
    return node


async def names(client: GraphQLClient, project_gid: str) -> list[str]:
    data = await client.data(PROMPTS, {"project": project_gid, "first": 100})
    return [p["name"] for p in data["prompts"]["nodes"]]


# ---- create, read, update, delete -------------------------------------------------------------------


async def test_a_developer_creates_reads_updates_and_deletes_a_prompt(
    dev: GraphQLClient, tenant: Tenant, echo: dict[str, Any]
) -> None:
    created = await create_prompt(
        dev,
        tenant.project_gid,
        name="  Tweet  ",
        template=TEMPLATE,
        modelId=echo["id"],
        systemPrompt="You write tweets.",
        temperature=0.7,
        maxTokens=60,
    )
    assert created["name"] == "Tweet"
    assert created["template"] == TEMPLATE
    assert created["model"] == {"id": echo["id"], "name": "echo"}
    assert (created["systemPrompt"], created["temperature"], created["maxTokens"]) == (
        "You write tweets.",
        0.7,
        60,
    )
    assert created["variables"] == ["message.content", "tone"]
    assert created["project"] == {"id": tenant.project_gid}
    assert created["latestRun"] is None
    assert created["createdAt"] == created["updatedAt"]
    assert await read(dev, created["id"]) == created
    assert await names(dev, tenant.project_gid) == ["Tweet"]

    changes = {"id": created["id"], "template": "Summarise {{ text }}", "modelId": None, "temperature": None}
    updated = (await dev.mutate(PROMPT_UPDATE, {**changes, "expectedUpdatedAt": created["updatedAt"]}))[
        "prompt"
    ]
    assert (updated["template"], updated["variables"], updated["model"]) == (
        "Summarise {{ text }}",
        ["text"],
        None,
    )
    assert (updated["temperature"], updated["systemPrompt"], updated["maxTokens"]) == (
        None,
        "You write tweets.",
        60,
    )
    assert updated["updatedAt"] > created["updatedAt"]

    # An update made from a stale read is refused and writes nothing.
    stale = await dev.mutate(
        PROMPT_UPDATE, {"id": created["id"], "name": "x", "expectedUpdatedAt": created["updatedAt"]}
    )
    assert (stale["prompt"], errors_of(stale)) == (None, [("CONFLICT", ["input", "expectedUpdatedAt"])])
    assert await read(dev, created["id"]) == updated

    deleted = await dev.mutate(PROMPT_DELETE, {"id": created["id"]})
    assert deleted == {"deletedPromptId": created["id"], "userErrors": []}
    assert await read(dev, created["id"]) is None
    again = await dev.mutate(PROMPT_DELETE, {"id": created["id"]})
    assert errors_of(again) == [("NOT_FOUND", ["input", "id"])]


async def test_names_are_unique_per_project_ignoring_case(
    server: LiveServer, dev: GraphQLClient, tenant: Tenant
) -> None:
    await create_prompt(dev, tenant.project_gid, name="Tweet")
    payload = await dev.mutate(
        PROMPT_CREATE, {"projectId": tenant.project_gid, "name": "TWEET", "template": "x"}
    )
    assert errors_of(payload) == [("DUPLICATE", ["input", "name"])]
    other = await create_prompt(dev, await add_project(server.services, tenant, "Second"), name="tweet")
    renamed = await dev.mutate(PROMPT_UPDATE, {"id": other["id"], "name": "Tweet "})
    assert renamed["userErrors"] == []


async def test_the_list_pages_oldest_first(dev: GraphQLClient, tenant: Tenant) -> None:
    for index in range(5):
        await create_prompt(dev, tenant.project_gid, name=f"p{index}")
    first = (await dev.data(PROMPTS, {"project": tenant.project_gid, "first": 2}))["prompts"]
    assert [p["name"] for p in first["nodes"]] == ["p0", "p1"]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = await dev.data(
        PROMPTS, {"project": tenant.project_gid, "first": 10, "after": first["pageInfo"]["endCursor"]}
    )
    assert [p["name"] for p in rest["prompts"]["nodes"]] == ["p2", "p3", "p4"]


async def test_deleting_a_prompt_deletes_its_runs_and_deleting_its_model_leaves_it_on_the_default(
    server: LiveServer, admin: GraphQLClient, dev: GraphQLClient, tenant: Tenant
) -> None:
    model = await create_echo_model(admin, "short-lived")
    prompt = await create_prompt(dev, tenant.project_gid, modelId=model["id"])
    assert (await run_prompt(dev, prompt["id"], {"topic": "x"}))["userErrors"] == []
    assert (await admin.mutate(MODEL_DELETE, {"id": model["id"]}))["userErrors"] == []
    reread = await read(dev, prompt["id"])
    assert reread is not None
    assert reread["model"] is None
    assert reread["latestRun"]["servedBy"] is None  # the run outlives the model that served it
    await dev.mutate(PROMPT_DELETE, {"id": prompt["id"]})
    assert await stored_runs(server.services) == []


# ---- rules checked when a prompt is saved -------------------------------------------------------------


async def test_every_bad_field_is_a_user_error_and_nothing_is_written(
    server: LiveServer, dev: GraphQLClient, tenant: Tenant
) -> None:
    payload = await dev.mutate(
        PROMPT_CREATE,
        {
            "projectId": tenant.project_gid,
            "name": " ",
            "template": "Hello {{ first name }}\n  and {{ title",
            "systemPrompt": "x" * 50_001,
            "temperature": 2.5,
            "maxTokens": 0,
        },
    )
    assert payload["prompt"] is None
    assert errors_of(payload) == [
        ("REQUIRED", ["input", "name"]),
        ("INVALID_TEMPLATE", ["input", "template"]),
        ("INVALID_TEMPLATE", ["input", "template"]),
        ("TOO_LONG", ["input", "systemPrompt"]),
        ("OUT_OF_RANGE", ["input", "temperature"]),
        ("OUT_OF_RANGE", ["input", "maxTokens"]),
    ]
    messages = [e["message"] for e in payload["userErrors"] if e["code"] == "INVALID_TEMPLATE"]
    assert messages[0].startswith("line 1, column 15: unexpected ' ' in a path")
    assert messages[1] == "line 2, column 7: `{{` is not closed by `}}`"
    assert await stored_prompts(server.services) == []


@pytest.mark.parametrize(
    ("template", "code"),
    [
        ("", "REQUIRED"),
        (" \n\t", "REQUIRED"),
        ("x" * 100_001, "TOO_LONG"),
        ("{{ a }}" + "x" * 99_994, "TOO_LONG"),
    ],
    ids=["empty", "blank", "100001-characters", "100001-with-a-placeholder"],
)
async def test_templates_must_have_text_and_at_most_100000_characters(
    server: LiveServer, dev: GraphQLClient, tenant: Tenant, template: str, code: str
) -> None:
    payload = await dev.mutate(
        PROMPT_CREATE, {"projectId": tenant.project_gid, "name": "p", "template": template}
    )
    assert errors_of(payload) == [(code, ["input", "template"])]
    assert await stored_prompts(server.services) == []


async def test_a_template_of_exactly_100000_characters_is_accepted(
    dev: GraphQLClient, tenant: Tenant
) -> None:
    placeholder = "{{ a.b.0 }}"
    template = "x" * (100_000 - len(placeholder)) + placeholder
    created = await create_prompt(dev, tenant.project_gid, template=template)
    assert created["variables"] == ["a.b.0"]


async def test_an_update_checks_what_it_changes(dev: GraphQLClient, tenant: Tenant) -> None:
    prompt = await create_prompt(dev, tenant.project_gid)
    payload = await dev.mutate(PROMPT_UPDATE, {"id": prompt["id"], "template": "{{ }}", "name": None})
    assert errors_of(payload) == [("REQUIRED", ["input", "name"])]  # null is refused before the rest
    payload = await dev.mutate(PROMPT_UPDATE, {"id": prompt["id"], "template": "oops {{ }}"})
    assert errors_of(payload) == [("INVALID_TEMPLATE", ["input", "template"])]
    assert payload["userErrors"][0]["message"].startswith("line 1, column 6: empty placeholder")
    assert await read(dev, prompt["id"]) == prompt


async def test_the_model_must_be_one_the_project_can_call(
    server: LiveServer, admin: GraphQLClient, dev: GraphQLClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    org_admin = dev.with_key(tenant.keys[Role.ADMIN])
    other_admin = dev.with_key(other_tenant.keys[Role.ADMIN])
    echo = await create_echo_model(admin, maxOutputTokens=100)
    disabled = await create_echo_model(admin, "echo-off", enabled=False)
    hidden = await create_echo_model(admin, "echo-hidden", isVisible=False)
    embedder = await create_system_model(admin, "embedder", modelGroup="EMBEDDING", maxOutputTokens=None)
    theirs = await create_user_model(
        other_admin, organizationId=other_tenant.organization_gid, name="theirs", parentModelId=echo["id"]
    )
    elsewhere = await create_user_model(
        org_admin,
        organizationId=tenant.organization_gid,
        name="elsewhere",
        parentModelId=echo["id"],
        assignedProjectIds=[await add_project(server.services, tenant, "Other")],
    )
    cases = [
        ({"modelId": theirs["id"]}, "NOT_FOUND", ["input", "modelId"]),
        ({"modelId": elsewhere["id"]}, "NOT_FOUND", ["input", "modelId"]),
        ({"modelId": hidden["id"]}, "NOT_FOUND", ["input", "modelId"]),
        ({"modelId": "not-an-id"}, "NOT_FOUND", ["input", "modelId"]),
        ({"modelId": tenant.project_gid}, "NOT_FOUND", ["input", "modelId"]),
        ({"modelId": embedder["id"]}, "MODEL_GROUP_MISMATCH", ["input", "modelId"]),
        ({"modelId": disabled["id"]}, "MODEL_DISABLED", ["input", "modelId"]),
        ({"modelId": echo["id"], "maxTokens": 101}, "MAX_TOKENS_TOO_LARGE", ["input", "maxTokens"]),
    ]
    for fields, code, field in cases:
        payload = await dev.mutate(
            PROMPT_CREATE, {"projectId": tenant.project_gid, "name": "p", "template": "x", **fields}
        )
        assert errors_of(payload) == [(code, field)], fields
    assert await stored_prompts(server.services) == []
    created = await create_prompt(dev, tenant.project_gid, modelId=echo["id"], maxTokens=100)
    # Once saved, what happens to the model is the run's business: other changes still save.
    await admin.mutate(SYSTEM_UPDATE, {"id": echo["id"], "enabled": False})
    assert (await dev.mutate(PROMPT_UPDATE, {"id": created["id"], "name": "renamed"}))["userErrors"] == []
    switched = await dev.mutate(PROMPT_UPDATE, {"id": created["id"], "modelId": disabled["id"]})
    assert errors_of(switched) == [("MODEL_DISABLED", ["input", "modelId"])]


# ---- permissions and isolation --------------------------------------------------------------------------


async def test_viewers_read_developers_change_and_run_anonymous_callers_do_nothing(
    gql: GraphQLClient, dev: GraphQLClient, tenant: Tenant, echo: dict[str, Any]
) -> None:
    prompt = await create_prompt(dev, tenant.project_gid, modelId=echo["id"])
    viewer = gql.with_key(tenant.keys[Role.VIEWER])
    assert (await read(viewer, prompt["id"]) or {}).get("name") == "tweet"
    assert await names(viewer, tenant.project_gid) == ["tweet"]
    create = {"projectId": tenant.project_gid, "name": "v", "template": "x"}
    for document, values in (
        (PROMPT_CREATE, create),
        (PROMPT_UPDATE, {"id": prompt["id"], "name": "v"}),
        (PROMPT_DELETE, {"id": prompt["id"]}),
        (PROMPT_RUN, {"promptId": prompt["id"], "variables": {"topic": "x"}}),
    ):
        assert error_codes(await viewer.post(document, {"input": values})) == ["FORBIDDEN"]
        assert error_codes(await gql.post(document, {"input": values})) == ["UNAUTHENTICATED"]
    assert error_codes(await gql.post(PROMPTS, {"project": tenant.project_gid})) == ["UNAUTHENTICATED"]
    assert (await run_prompt(dev, prompt["id"], {"topic": "x"}))["userErrors"] == []


async def test_another_organizations_prompt_reads_as_missing(
    server: LiveServer,
    gql: GraphQLClient,
    dev: GraphQLClient,
    tenant: Tenant,
    other_tenant: Tenant,
    echo: dict[str, Any],
) -> None:
    prompt = await create_prompt(dev, tenant.project_gid, modelId=echo["id"])
    other = gql.with_key(other_tenant.keys[Role.ADMIN])
    assert await read(other, prompt["id"]) is None
    assert await names(other, tenant.project_gid) == []
    assert errors_of(await other.mutate(PROMPT_UPDATE, {"id": prompt["id"], "name": "mine"})) == [
        ("NOT_FOUND", ["input", "id"])
    ]
    assert errors_of(await other.mutate(PROMPT_DELETE, {"id": prompt["id"]})) == [
        ("NOT_FOUND", ["input", "id"])
    ]
    assert errors_of(await run_prompt(other, prompt["id"], {"topic": "x"})) == [
        ("NOT_FOUND", ["input", "promptId"])
    ]
    created = await other.mutate(
        PROMPT_CREATE, {"projectId": tenant.project_gid, "name": "p", "template": "x"}
    )
    assert errors_of(created) == [("NOT_FOUND", ["input", "projectId"])]
    assert await read(dev, prompt["id"]) is not None
    assert await stored_runs(server.services) == []


async def test_a_project_key_sees_only_its_projects_prompts(
    server: LiveServer, gql: GraphQLClient, dev: GraphQLClient, tenant: Tenant, echo: dict[str, Any]
) -> None:
    services: Services = server.services
    second_gid = await add_project(services, tenant, "Second")
    mine = await create_prompt(dev, tenant.project_gid, modelId=echo["id"])
    theirs = await create_prompt(dev, second_gid, modelId=echo["id"])
    _, secret = await services.api_keys.create_unchecked(
        name="project key",
        organization_id=tenant.organization.id,
        project_id=tenant.project.id,
        role=Role.DEVELOPER,
    )
    project_key = gql.with_key(secret)
    assert (await read(project_key, mine["id"]) or {}).get("id") == mine["id"]
    assert await read(project_key, theirs["id"]) is None
    assert await names(project_key, second_gid) == []
    assert errors_of(await run_prompt(project_key, theirs["id"], {"topic": "x"})) == [
        ("NOT_FOUND", ["input", "promptId"])
    ]
    refused = await project_key.mutate(PROMPT_CREATE, {"projectId": second_gid, "name": "p", "template": "x"})
    assert errors_of(refused) == [("NOT_FOUND", ["input", "projectId"])]
    ran = await run_prompt(project_key, mine["id"], {"topic": "x"})
    assert ran["run"]["output"] == "Echo: About: x"


async def test_a_platform_admin_reads_every_prompt_but_runs_none(
    admin: GraphQLClient, dev: GraphQLClient, tenant: Tenant, echo: dict[str, Any]
) -> None:
    prompt = await create_prompt(dev, tenant.project_gid, modelId=echo["id"])
    assert await read(admin, prompt["id"]) is not None
    payload = await run_prompt(admin, prompt["id"], {"topic": "x"})
    assert (payload["run"], errors_of(payload)) == (None, [("INVALID", None)])


# ---- the README's example --------------------------------------------------------------------------------


def readme_operations() -> list[str]:
    section = README.read_text().split("## Prompts\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```graphql\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the README's Prompts section has no GraphQL example"
    return [op.strip() for op in block.group(1).split("\n\n") if op.strip()]


async def test_the_readme_example_works(
    gql: GraphQLClient, admin: GraphQLClient, tenant: Tenant, echo: dict[str, Any]
) -> None:
    await create_user_model(
        gql.with_key(tenant.keys[Role.ADMIN]),
        organizationId=tenant.organization_gid,
        scope="PROJECT",
        projectId=tenant.project_gid,
        name="demo echo",
        parentModelId=echo["id"],
        isDefault=True,
    )
    create, run, listing = readme_operations()
    client = gql.with_key(tenant.keys[Role.DEVELOPER])
    created = (await client.data(create, {"project": tenant.project_gid}))["promptCreate"]
    assert created["userErrors"] == []
    assert created["prompt"]["variables"] == ["message.content"]
    assert created["prompt"]["model"] is None  # the project's default at run time
    ran = (await client.data(run, {"prompt": created["prompt"]["id"]}))["promptRun"]
    assert ran["userErrors"] == []
    assert ran["run"]["status"] == "SUCCESS"
    assert ran["run"]["output"] == "Echo: Generate a tweet about: our new release"
    assert ran["run"]["servedBy"] == {"name": "demo echo"}
    (prompt,) = (await client.data(listing, {"project": tenant.project_gid}))["prompts"]["nodes"]
    assert prompt["latestRun"]["output"] == ran["run"]["output"]
    assert [r["renderedPrompt"] for r in prompt["runs"]["nodes"]] == [
        "Generate a tweet about: our new release"
    ]
