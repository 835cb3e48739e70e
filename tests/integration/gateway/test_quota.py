"""The monthly credit limit by reservation, end to end on one instance: what a call reserves, that a
call that may not fit never reaches the upstream, that a call's reservation is released however it
ends (success, failure, cancellation), that free models and organizations without a limit never
reserve, and that a stalled database refuses only the calls that need a new lease."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import aiohttp
import asyncpg
import pytest

from app.config import Settings
from app.domain.auth import Role
from tests.conftest import LiveServer, make_settings
from tests.fakes.openai_server import FakeError, OpenAIFake
from tests.support.catalog import create_system_model, create_user_model
from tests.support.factories import Tenant
from tests.support.gateway import (
    CHAT,
    EMBED,
    GRAPHQL_TRANSPORT_WS,
    WsSubscription,
    stream_input,
    update_organization,
    usage_rows,
    user_says,
)
from tests.support.graphql import GraphQLClient

# 40 characters: the gateway estimates 10 tokens, plus 4 for the message; the fake counts 12.
QUESTION = user_says("What is the capital of France, in short?")
RESERVED = Decimal("1.125")  # (14 + 4 maxTokens) / 1000 * 62.5
COST = Decimal("1")  # (12 + 4) / 1000 * 62.5
LEASE_WAIT = 1.0


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, db_acquire_timeout=LEASE_WAIT)


@pytest.fixture
async def model(admin: GraphQLClient, fake_a: OpenAIFake) -> dict[str, Any]:
    return await create_system_model(admin, "alpha", modelUrl=f"{fake_a.url}/v1", creditMultiplier="62.5")


async def chat(client: GraphQLClient, model: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return await client.mutate(CHAT, {"messages": QUESTION, "model": model["id"], "maxTokens": 4, **fields})


def code(payload: dict[str, Any]) -> str | None:
    errors = payload["userErrors"]
    return errors[0]["code"] if errors else None


async def limit(admin: GraphQLClient, tenant: Tenant, credits: str | None) -> None:
    await update_organization(admin, tenant.organization_gid, monthlyCreditLimit=credits)


async def test_a_call_reserves_its_input_and_all_the_output_it_may_write_on_any_model_it_may_use(
    admin: GraphQLClient, org_admin: GraphQLClient, dev: GraphQLClient, tenant: Tenant,
    model: dict[str, Any], fake_a: OpenAIFake,
) -> None:  # fmt: skip
    await limit(admin, tenant, "0.5")

    async def refusal(on: dict[str, Any] = model, **fields: Any) -> str:
        (error,) = (await chat(dev, on, **fields))["userErrors"]
        assert error["code"] == "QUOTA_EXCEEDED"
        message: str = error["message"]
        return message.split(" credits,")[0].removeprefix("this call may cost up to ")

    assert await refusal() == "1.125"  # maxTokens 4
    assert await refusal(maxTokens=None) == "1000.875"  # the model's maxOutputTokens, 16000
    unbounded = await create_system_model(
        admin, "unbounded", modelUrl=f"{fake_a.url}/v1", maxOutputTokens=None
    )
    assert await refusal(unbounded, maxTokens=None) == "10.275"  # 4096 by default, at 2.5
    # A project model reserves for its dearest fallback too: its fallback may serve the call.
    variant = await create_user_model(
        org_admin,
        organizationId=tenant.organization_gid,
        scope="PROJECT",
        projectId=tenant.project_gid,
        name="variant",
        parentModelId=unbounded["id"],
        fallbacks=[{"modelId": model["id"]}],
    )
    assert await refusal(variant, projectId=tenant.project_gid) == "1.125"
    assert fake_a.requests == []  # nothing that may not fit reaches the upstream


async def test_a_reservation_is_released_for_what_the_call_cost(
    server: LiveServer, admin: GraphQLClient, dev: GraphQLClient, tenant: Tenant, model: dict[str, Any],
    fake_a: OpenAIFake,
) -> None:  # fmt: skip
    # Room for two calls (2 spent, 0.5 left) only if each gives back what it did not use.
    await limit(admin, tenant, "2.5")
    assert [code(await chat(dev, model)) for _ in range(3)] == [None, None, "QUOTA_EXCEEDED"]
    assert len(fake_a.requests) == 2
    rows = await usage_rows(server.services, 3)
    assert [r["credits"] for r in rows] == [COST, COST, 0]


async def test_a_failed_call_releases_its_reservation(
    server: LiveServer, admin: GraphQLClient, dev: GraphQLClient, tenant: Tenant, model: dict[str, Any],
    fake_a: OpenAIFake,
) -> None:  # fmt: skip
    await limit(admin, tenant, "1.2")  # room for one reservation at a time
    fake_a.error = FakeError.context_too_long()
    assert code(await chat(dev, model)) == "CONTEXT_TOO_LONG"
    fake_a.error = None
    assert code(await chat(dev, model)) is None
    assert code(await chat(dev, model)) == "QUOTA_EXCEEDED"
    rows = await usage_rows(server.services, 3)
    assert [(r["status"], r["credits"]) for r in rows] == [("ERROR", 0), ("SUCCESS", COST), ("ERROR", 0)]


async def test_a_stream_reserves_while_it_runs_and_a_cancelled_one_releases_its_reservation(
    server: LiveServer, http: aiohttp.ClientSession, admin: GraphQLClient, dev: GraphQLClient,
    tenant: Tenant, model: dict[str, Any], fake_a: OpenAIFake,
) -> None:  # fmt: skip
    await limit(admin, tenant, "2.2")  # room for one reservation at a time
    fake_a.stall_after, fake_a.stall_seconds = 2, 30  # one piece, then nothing
    variables = stream_input(QUESTION, model=model["id"], maxTokens=4)
    key = tenant.keys[Role.DEVELOPER]
    async with WsSubscription.open(http, server.url, key, variables, GRAPHQL_TRANSPORT_WS) as stream:
        assert [(await stream.next_event() or {}).get("__typename") for _ in range(2)] == [
            "ChatStreamStart",
            "ChatStreamDelta",
        ]
        assert code(await chat(dev, model)) == "QUOTA_EXCEEDED"  # the stream's reservation is held
        await stream.complete()
        rows = await usage_rows(server.services, 2)
    cancelled = rows[-1]
    assert cancelled["status"] == "CANCELLED"
    assert 0 < cancelled["credits"] < RESERVED  # the estimate of what was streamed
    fake_a.stall_after = None
    assert code(await chat(dev, model)) is None


async def test_free_models_and_organizations_without_a_limit_never_reserve(
    server: LiveServer, admin: GraphQLClient, dev: GraphQLClient, tenant: Tenant, model: dict[str, Any],
    fake_a: OpenAIFake,
) -> None:  # fmt: skip
    assert code(await chat(dev, model, maxTokens=None)) is None  # no limit: nothing reserved
    free = await create_system_model(admin, "free", modelUrl=f"{fake_a.url}/v1", creditMultiplier="0")
    await limit(admin, tenant, "0")
    assert code(await chat(dev, free, maxTokens=None)) is None
    embedder = await create_system_model(
        admin, "free-embedder", modelUrl=f"{fake_a.url}/v1", modelGroup="EMBEDDING", creditMultiplier="0",
        maxOutputTokens=None,
    )  # fmt: skip
    assert code(await dev.mutate(EMBED, {"texts": ["Hi"], "model": embedder["id"]})) is None
    assert code(await chat(dev, model)) == "QUOTA_EXCEEDED"  # a limit of 0 refuses every paid call
    db = server.services.db
    assert await db.fetchval("SELECT count(*) FROM quota_leases WHERE credits <> 0") == 0
    assert await db.fetchval("SELECT count(*) FROM quota_instances") == 0


async def test_calls_spend_a_leased_block_without_writing_per_call(
    server: LiveServer, admin: GraphQLClient, dev: GraphQLClient, tenant: Tenant, model: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    await limit(admin, tenant, "100")  # a tenth of it: room for 8 reservations of 1.125
    repository = server.services.quota.repository
    leases: list[Decimal] = []
    record = repository.change_lease

    async def counted(*args: Any) -> None:
        leases.append(args[3])  # (organization, month, instance, change, now)
        await record(*args)

    monkeypatch.setattr(repository, "change_lease", counted)
    assert [code(await chat(dev, model)) for _ in range(8)] == [None] * 8
    assert leases == [Decimal(10)]
    # Written usage has left the lease for the monthly total: together, still the one block.
    held_or_written = await server.services.db.fetchval(
        """SELECT (SELECT credits FROM quota_leases)
                  + coalesce((SELECT credits FROM organization_monthly_credits), 0)"""
    )
    assert held_or_written == 10


async def test_a_lower_limit_takes_effect_at_once_on_what_an_instance_holds(
    admin: GraphQLClient, dev: GraphQLClient, tenant: Tenant, model: dict[str, Any]
) -> None:
    await limit(admin, tenant, "100")
    assert code(await chat(dev, model)) is None  # this instance now holds 8.875 spare
    await limit(admin, tenant, "1.5")
    assert code(await chat(dev, model)) == "QUOTA_EXCEEDED"  # 1 spent, 0.5 left


async def test_a_stalled_database_refuses_only_calls_that_need_a_new_lease(
    server: LiveServer, database_url: str, admin: GraphQLClient, dev: GraphQLClient, tenant: Tenant,
    model: dict[str, Any],
) -> None:  # fmt: skip
    await limit(admin, tenant, "100")
    assert code(await chat(dev, model)) is None  # leases 10
    blocker = await asyncpg.connect(database_url)
    try:
        # A lock storm on the organization's row: leasing waits for it, as for a frozen database.
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute(
            "SELECT 1 FROM organizations WHERE id = $1 FOR NO KEY UPDATE", tenant.organization.id
        )
        assert code(await chat(dev, model)) is None  # inside the lease: no database needed
        started = time.monotonic()
        # (14 + 200) / 1000 * 62.5 = 13.375: more than the lease holds.
        assert code(await chat(dev, model, maxTokens=200)) == "SERVICE_UNAVAILABLE"
        assert time.monotonic() - started < LEASE_WAIT + 1
        await transaction.rollback()
    finally:
        await blocker.close()
    assert code(await chat(dev, model, maxTokens=200)) is None
