"""promptRun over real HTTP GraphQL: a run is a generate call through the gateway (usage, fallbacks,
lifecycle at run time), stored with its usage; bad variables call and store nothing; latestRun is
the run started last, also under concurrent runs; runs are listed newest first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from app.domain.auth import Role
from tests.conftest import LiveServer
from tests.fakes.openai_server import OpenAIFake, openai_fake_server
from tests.support.catalog import USER_UPDATE, add_project, create_system_model, create_user_model, uuid_of
from tests.support.factories import Tenant
from tests.support.gateway import credits, usage_rows
from tests.support.graphql import GraphQLClient
from tests.support.prompts import (
    RUN_FIELDS,
    RUNS,
    USER_ERRORS,
    create_echo_model,
    create_prompt,
    errors_of,
    run_prompt,
    stored_runs,
)

RUN_NODE = f"query($id: ID!) {{ node(id: $id) {{ id ... on PromptRun {{ {RUN_FIELDS} prompt {{ id }} }} }} }}"


@pytest.fixture
def admin(gql: GraphQLClient, admin_key: str) -> GraphQLClient:
    return gql.with_key(admin_key)


@pytest.fixture
def org_admin(gql: GraphQLClient, tenant: Tenant) -> GraphQLClient:
    return gql.with_key(tenant.keys[Role.ADMIN])


@pytest.fixture
def dev(gql: GraphQLClient, tenant: Tenant) -> GraphQLClient:
    return gql.with_key(tenant.keys[Role.DEVELOPER])


@pytest.fixture
async def echo(admin: GraphQLClient) -> dict[str, Any]:
    return await create_echo_model(admin)


@pytest.fixture
async def upstream() -> AsyncIterator[OpenAIFake]:
    """A provider that records every request, to prove that refused runs call nothing."""
    async with openai_fake_server(reply="Upstream answers.") as fake:
        yield fake


@pytest.fixture
async def gpt(admin: GraphQLClient, upstream: OpenAIFake) -> dict[str, Any]:
    return await create_system_model(
        admin, "gpt-small", modelUrl=f"{upstream.url}/v1", contextWindow=60, maxOutputTokens=10
    )


def at(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


def words(text: str) -> int:
    return len(text.split())


async def runs_of(
    client: GraphQLClient, prompt_gid: str, first: int = 100, after: str | None = None
) -> dict[str, Any]:
    node: dict[str, Any] = (await client.data(RUNS, {"id": prompt_gid, "first": first, "after": after}))[
        "node"
    ]
    return node


# ---- successful runs and their usage -------------------------------------------------------------


async def test_a_run_is_stored_with_the_usage_the_gateway_metered(
    server: LiveServer,
    gql: GraphQLClient,
    dev: GraphQLClient,
    tenant: Tenant,
    other_tenant: Tenant,
    echo: dict[str, Any],
) -> None:
    prompt = await create_prompt(
        dev,
        tenant.project_gid,
        template="Tweet about {{ message.content }} ({{n}} times, loud: {{ loud }}) "
        "with {{ tags }} for {{ who }}",
        modelId=echo["id"],
        systemPrompt="Be brief and kind.",
        maxTokens=500,
    )
    variables = {
        "message": {"content": "spring  in Paris"},
        "n": 3,
        "loud": True,
        "tags": ["a", "b"],
        "who": {"x": 1},
    }
    payload = await run_prompt(dev, prompt["id"], variables)
    assert payload["userErrors"] == []
    run = payload["run"]
    rendered = 'Tweet about spring  in Paris (3 times, loud: true) with ["a","b"] for {"x":1}'
    assert run["renderedPrompt"] == rendered
    assert run["variables"] == variables
    assert run["output"] == "Echo: " + " ".join(rendered.split())
    assert (run["status"], run["errorCode"], run["errorMessage"]) == ("SUCCESS", None, None)
    assert run["servedBy"] == {"id": echo["id"], "name": "echo"}
    assert at(run["startedAt"]) <= at(run["finishedAt"])
    assert run["requestId"] == payload["requestId"]
    # ECHO counts words: the system prompt and the prompt in, the answer out.
    usage = {"inputTokens": 4 + words(rendered), "outputTokens": words(run["output"])}
    usage["totalTokens"] = usage["inputTokens"] + usage["outputTokens"]
    expected_credits = credits(usage["inputTokens"], usage["outputTokens"], "1.5")
    assert {**run["usage"], "credits": Decimal(run["usage"]["credits"])} == {
        **usage,
        "credits": expected_credits,
    }

    (row,) = await usage_rows(server.services)
    assert (row["request_id"], row["operation"], row["status"]) == (run["requestId"], "GENERATE", "SUCCESS")
    assert (row["input_tokens"], row["output_tokens"], row["credits"]) == (
        usage["inputTokens"],
        usage["outputTokens"],
        expected_credits,
    )
    assert row["served_model_id"] == row["requested_model_id"] == uuid_of(echo["id"])
    assert row["project_id"] == tenant.project.id
    (stored,) = await stored_runs(server.services)
    assert (stored["input_tokens"], stored["output_tokens"], stored["credits"]) == (
        row["input_tokens"],
        row["output_tokens"],
        row["credits"],
    )

    assert (await runs_of(dev, prompt["id"]))["latestRun"]["id"] == run["id"]
    node = (await dev.data(RUN_NODE, {"id": run["id"]}))["node"]
    assert node == {**run, "prompt": {"id": prompt["id"]}}
    assert (await gql.with_key(other_tenant.keys[Role.ADMIN]).data(RUN_NODE, {"id": run["id"]}))[
        "node"
    ] is None


async def test_a_prompt_without_a_model_runs_on_the_project_default(
    server: LiveServer, org_admin: GraphQLClient, dev: GraphQLClient, tenant: Tenant, echo: dict[str, Any]
) -> None:
    prompt = await create_prompt(dev, tenant.project_gid)
    missing = await run_prompt(dev, prompt["id"], {"topic": "x"})
    assert errors_of(missing) == [("NO_DEFAULT_MODEL", ["input", "promptId"])]
    assert (missing["run"]["status"], missing["run"]["errorCode"]) == ("ERROR", "NO_DEFAULT_MODEL")
    default = await create_user_model(
        org_admin,
        organizationId=tenant.organization_gid,
        scope="PROJECT",
        projectId=tenant.project_gid,
        name="house echo",
        parentModelId=echo["id"],
        isDefault=True,
    )
    ran = await run_prompt(dev, prompt["id"], {"topic": "x"})
    assert ran["userErrors"] == []
    assert ran["run"]["servedBy"]["id"] == default["id"]


async def test_runs_fall_back_as_generate_does(
    org_admin: GraphQLClient, dev: GraphQLClient, tenant: Tenant, echo: dict[str, Any]
) -> None:
    failing = await create_user_model(
        org_admin,
        organizationId=tenant.organization_gid,
        scope="PROJECT",
        projectId=tenant.project_gid,
        name="overloaded",
        parentModelId=echo["id"],
        providerSettings={"failWith": "OVERLOADED"},
        fallbacks=[{"modelId": echo["id"]}],
    )
    prompt = await create_prompt(dev, tenant.project_gid, modelId=failing["id"])
    ran = await run_prompt(dev, prompt["id"], {"topic": "x"})
    assert ran["userErrors"] == []
    assert ran["run"]["servedBy"]["id"] == echo["id"]
    assert [w["code"] for w in ran["warnings"]] == ["FALLBACK_USED"]


async def test_a_provider_failure_is_stored_as_a_failed_run(
    server: LiveServer, admin: GraphQLClient, dev: GraphQLClient, tenant: Tenant
) -> None:
    broken = await create_echo_model(admin, "broken", providerSettings={"failWith": "AUTH_FAILED"})
    prompt = await create_prompt(dev, tenant.project_gid, modelId=broken["id"])
    payload = await run_prompt(dev, prompt["id"], {"topic": "x"})
    assert errors_of(payload) == [("PROVIDER_ERROR", None)]
    run = payload["run"]
    assert (run["status"], run["errorCode"], run["output"], run["servedBy"]) == (
        "ERROR",
        "PROVIDER_ERROR",
        None,
        None,
    )
    assert "AUTH_FAILED" in run["errorMessage"]
    assert {**run["usage"], "credits": Decimal(run["usage"]["credits"])} == {
        "inputTokens": 0,
        "outputTokens": 0,
        "totalTokens": 0,
        "credits": 0,
    }
    (row,) = await usage_rows(server.services)
    assert (row["request_id"], row["status"], row["error_code"]) == (
        run["requestId"],
        "ERROR",
        "PROVIDER_ERROR",
    )
    assert (await runs_of(dev, prompt["id"]))["latestRun"]["id"] == run["id"]


# ---- bad input: nothing is called, nothing is stored ---------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (
            {"message": {"role": "user"}, "tone": None},
            [
                ("MISSING_VARIABLE", ["input", "variables", "message", "content"]),
                ("MISSING_VARIABLE", ["input", "variables", "tone"]),
                ("MISSING_VARIABLE", ["input", "variables", "items", "0"]),
            ],
        ),
        (
            None,
            [
                ("MISSING_VARIABLE", ["input", "variables", "message", "content"]),
                ("MISSING_VARIABLE", ["input", "variables", "tone"]),
                ("MISSING_VARIABLE", ["input", "variables", "items", "0"]),
            ],
        ),
        (
            {"message": {"content": "x"}, "tone": "dry", "items": []},
            [("MISSING_VARIABLE", ["input", "variables", "items", "0"])],
        ),
        (
            {"message": {"content": "  "}, "tone": " ", "items": ["\n"]},
            [("REQUIRED", ["input", "variables"])],
        ),
        ([{"message": {"content": "x"}}], [("INVALID", ["input", "variables"])]),
        ("message.content=x", [("INVALID", ["input", "variables"])]),
        (42, [("INVALID", ["input", "variables"])]),
    ],
    ids=[
        "missing-paths",
        "null-variables",
        "index-past-the-end",
        "blank-rendering",
        "list",
        "string",
        "number",
    ],
)
async def test_bad_variables_call_nothing_and_store_nothing(
    server: LiveServer, dev: GraphQLClient, tenant: Tenant, gpt: dict[str, Any], upstream: OpenAIFake,
    variables: Any, expected: list[tuple[str, list[str]]],
) -> None:  # fmt: skip
    prompt = await create_prompt(
        dev, tenant.project_gid, template="{{message.content}}{{ tone }}{{items.0}}", modelId=gpt["id"]
    )
    payload = await run_prompt(dev, prompt["id"], variables)
    assert (payload["run"], errors_of(payload)) == (None, expected)
    if expected[0][0] == "MISSING_VARIABLE":
        assert payload["userErrors"][0]["message"] == f"no value for {{{{{'.'.join(expected[0][1][2:])}}}}}"
    assert upstream.requests == []
    assert await usage_rows(server.services) == []
    assert await stored_runs(server.services) == []


async def test_an_integer_beyond_64_bits_is_refused_in_the_document_and_read_as_a_double_in_json(
    server: LiveServer, dev: GraphQLClient, tenant: Tenant, gpt: dict[str, Any], upstream: OpenAIFake
) -> None:
    prompt = await create_prompt(dev, tenant.project_gid, template="{{ n }}", modelId=gpt["id"])
    # A literal in the document keeps its exact value, which the stored run could not hold.
    literal = f"""mutation {{ promptRun(input: {{promptId: "{prompt["id"]}", variables: {{n: {2**70}}}}}) {{
      run {{ id }} {USER_ERRORS} }} }}"""
    payload = (await dev.data(literal))["promptRun"]
    assert (payload["run"], errors_of(payload)) == (None, [("INVALID", ["input", "variables", "n"])])
    assert upstream.requests == []
    assert await stored_runs(server.services) == []
    # JSON variables are read as JavaScript reads them: past 64 bits, a number is a double.
    payload = await run_prompt(dev, prompt["id"], {"n": 2**70})
    assert payload["run"]["variables"] == {"n": float(2**70)}


async def test_a_rendered_prompt_over_the_context_window_is_refused_before_the_provider(
    server: LiveServer, dev: GraphQLClient, tenant: Tenant, gpt: dict[str, Any], upstream: OpenAIFake
) -> None:
    prompt = await create_prompt(dev, tenant.project_gid, template="Summarise: {{ text }}", modelId=gpt["id"])
    payload = await run_prompt(dev, prompt["id"], {"text": "word " * 100})  # ~130 tokens; the window is 60
    assert errors_of(payload) == [("CONTEXT_TOO_LONG", ["input", "variables"])]
    assert upstream.requests == []
    # The gateway refused the call: the run is kept as failed, and metered (no tokens) as generate's is.
    assert (payload["run"]["status"], payload["run"]["errorCode"]) == ("ERROR", "CONTEXT_TOO_LONG")
    (row,) = await usage_rows(server.services)
    assert (row["error_code"], row["input_tokens"], row["output_tokens"]) == ("CONTEXT_TOO_LONG", 0, 0)
    assert (await run_prompt(dev, prompt["id"], {"text": "short"}))["run"]["output"] == "Upstream answers."


async def test_a_model_the_project_can_no_longer_use_is_reported_at_run_time(
    server: LiveServer, org_admin: GraphQLClient, dev: GraphQLClient, tenant: Tenant, gpt: dict[str, Any],
    upstream: OpenAIFake,
) -> None:  # fmt: skip
    variant = await create_user_model(
        org_admin,
        organizationId=tenant.organization_gid,
        scope="PROJECT",
        projectId=tenant.project_gid,
        name="house gpt",
        parentModelId=gpt["id"],
    )
    shared = await create_user_model(
        org_admin, organizationId=tenant.organization_gid, name="shared gpt", parentModelId=gpt["id"]
    )
    disabled_prompt = await create_prompt(dev, tenant.project_gid, name="a", modelId=variant["id"])
    moved_prompt = await create_prompt(dev, tenant.project_gid, name="b", modelId=shared["id"])
    disabled = await org_admin.mutate(USER_UPDATE, {"id": variant["id"], "enabled": False})
    assert disabled["userErrors"] == []
    other_project = await add_project(server.services, tenant, "Elsewhere")
    moved = await org_admin.mutate(USER_UPDATE, {"id": shared["id"], "assignedProjectIds": [other_project]})
    assert moved["userErrors"] == []

    payload = await run_prompt(dev, disabled_prompt["id"], {"topic": "x"})
    assert errors_of(payload) == [("MODEL_DISABLED", ["input", "promptId"])]
    assert payload["userErrors"][0]["message"] == "house gpt is disabled"
    assert (payload["run"]["status"], payload["run"]["errorCode"]) == ("ERROR", "MODEL_DISABLED")
    payload = await run_prompt(dev, moved_prompt["id"], {"topic": "x"})
    assert errors_of(payload) == [("NOT_FOUND", ["input", "promptId"])]
    assert upstream.requests == []


# ---- latestRun and the runs connection -------------------------------------------------------------------


async def test_latest_run_is_the_run_started_last_even_when_an_earlier_run_finishes_later(
    server: LiveServer,
    admin: GraphQLClient,
    dev: GraphQLClient,
    tenant: Tenant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow_echo = await create_echo_model(admin, "slow echo", providerSettings={"wordDelayMs": "25"})
    prompt = await create_prompt(dev, tenant.project_gid, template="{{ text }}", modelId=slow_echo["id"])
    # The runner reads its clock when a run starts: that says when the slow run is under way.
    runner = server.services.prompt_runs
    started = asyncio.Event()

    def clock() -> datetime:
        started.set()
        return datetime.now(UTC)

    monkeypatch.setattr(runner, "clock", clock)
    slow = asyncio.create_task(run_prompt(dev, prompt["id"], {"text": "word " * 60}))  # ~1.5 s
    await asyncio.wait_for(started.wait(), 10)
    fast = (await run_prompt(dev, prompt["id"], {"text": "quick"}))["run"]  # ~25 ms
    slow_run = (await slow)["run"]
    assert at(slow_run["startedAt"]) < at(fast["startedAt"])
    assert at(fast["finishedAt"]) < at(slow_run["finishedAt"])  # so the slow run was written last
    listed = await runs_of(dev, prompt["id"])
    assert listed["latestRun"]["id"] == fast["id"]
    assert [r["id"] for r in listed["runs"]["nodes"]] == [fast["id"], slow_run["id"]]


async def test_concurrent_runs_are_all_kept_newest_first(
    admin: GraphQLClient, dev: GraphQLClient, tenant: Tenant
) -> None:
    slow_echo = await create_echo_model(admin, "slow echo", providerSettings={"wordDelayMs": "5"})
    prompt = await create_prompt(
        dev, tenant.project_gid, template="Run {{ index }}: {{ text }}", modelId=slow_echo["id"]
    )
    # Longer texts first: the runs finish in roughly the opposite order to the one they started in.
    payloads = await asyncio.gather(
        *(run_prompt(dev, prompt["id"], {"index": i, "text": "w " * (40 - 5 * i)}) for i in range(8))
    )
    runs = [p["run"] for p in payloads]
    for index, run in enumerate(runs):
        assert run["status"] == "SUCCESS"
        assert run["output"].startswith(f"Echo: Run {index}:")  # each run kept its own variables
    newest_first = sorted(runs, key=lambda r: (at(r["startedAt"]), uuid_of(r["id"])), reverse=True)
    listed = await runs_of(dev, prompt["id"])
    assert listed["latestRun"]["id"] == newest_first[0]["id"]
    assert [r["id"] for r in listed["runs"]["nodes"]] == [r["id"] for r in newest_first]
    assert listed["runs"]["pageInfo"]["hasNextPage"] is False

    first_page = await runs_of(dev, prompt["id"], first=3)
    assert [r["id"] for r in first_page["runs"]["nodes"]] == [r["id"] for r in newest_first[:3]]
    assert first_page["runs"]["pageInfo"]["hasNextPage"] is True
    rest = await runs_of(dev, prompt["id"], first=10, after=first_page["runs"]["pageInfo"]["endCursor"])
    assert [r["id"] for r in rest["runs"]["nodes"]] == [r["id"] for r in newest_first[3:]]
    assert rest["runs"]["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "endCursor": rest["runs"]["pageInfo"]["endCursor"],
    }
