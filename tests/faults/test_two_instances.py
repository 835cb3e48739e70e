"""Two instances on one PostgreSQL: the monthly credit limit under bursts split across both (and
across an instance that crashes), trips counted by both, and changes made through one taking
effect on the other. (Rate limits and the stream cap across two instances are in
tests/integration/gateway/test_limits_across_instances.py; each cache's invalidation on its own in
tests/integration/test_model_cache.py and test_model_health.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from app.config import Settings
from app.domain.auth import Role
from app.domain.ids import encode_id
from app.services.quota import REFUSAL_MEMORY
from tests.conftest import LiveServer, make_settings, running_server
from tests.fakes.openai_server import FakeError, OpenAIFake, openai_fake_server
from tests.support.catalog import SYSTEM_UPDATE, create_system_model, create_user_model, uuid_of
from tests.support.factories import Tenant, make_platform_admin_key, make_tenant
from tests.support.gateway import (
    CHAT,
    api_key_id,
    create_key,
    stream_events,
    stream_input,
    update_organization,
    user_says,
    ws_url,
)
from tests.support.graphql import GraphQLClient, error_codes
from tests.support.process import ServerProcess, server_process

# 40 characters: the gateway estimates 10 tokens, plus 4 for the message.
QUESTION = user_says("What is the capital of France, in short?")
MAX_TOKENS = 4
MULTIPLIER = "62.5"
RESERVED = Decimal("1.125")  # (14 + 4) / 1000 * 62.5: what each call reserves
COST = Decimal("1")  # the fake counts 12 input tokens and writes 4: (12 + 4) / 1000 * 62.5
LIMIT = Decimal(50)
IDLE = 0.2  # seconds before an instance hands back leased credits it left unused
LEASE_TIMEOUT = 1.0
REVOKE = """mutation($input: ApiKeyRevokeInput!) { apiKeyRevoke(input: $input) {
  apiKey { revokedAt } userErrors { code field message } } }"""


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, quota_lease_idle=IDLE, quota_lease_timeout=LEASE_TIMEOUT)


@dataclass
class Pair:
    a: LiveServer
    b: LiveServer
    admin: GraphQLClient  # a platform admin, through instance A
    tenant: Tenant
    http: aiohttp.ClientSession

    async def chat(
        self, instance: LiveServer | ServerProcess, model: dict[str, Any], **fields: Any
    ) -> str | None:
        """One chat on `instance`; its user error code, None when answered."""
        variables = {"messages": QUESTION, "model": model["id"], "maxTokens": MAX_TOKENS, **fields}
        client = GraphQLClient(self.http, instance.url, self.tenant.keys[Role.DEVELOPER])
        errors = (await client.mutate(CHAT, variables))["userErrors"]
        return errors[0]["code"] if errors else None

    async def spent(self) -> Decimal:
        """The organization's credits in the usage rows, once both instances have written theirs."""
        for instance in (self.a, self.b):
            await instance.services.flush()
        credits: Decimal = await self.a.services.db.fetchval(
            "SELECT coalesce(sum(credits), 0) FROM usage_records"
        )
        return credits


@pytest.fixture
async def pair(settings: Settings, http: aiohttp.ClientSession) -> AsyncIterator[Pair]:
    async with running_server(settings) as a, running_server(settings) as b:
        admin = GraphQLClient(http, a.url, await make_platform_admin_key(a.services))
        tenant = await make_tenant(a.services, "Acme")
        await update_organization(admin, tenant.organization_gid, monthlyCreditLimit=str(LIMIT))
        yield Pair(a, b, admin, tenant, http)


@pytest.fixture
async def fake() -> AsyncIterator[OpenAIFake]:
    # Slow enough that a burst's calls are all in flight together.
    async with openai_fake_server(reply="Paris, of course.", chunks=MAX_TOKENS, delay=0.3) as fake:
        yield fake


@pytest.fixture
async def model(pair: Pair, fake: OpenAIFake) -> dict[str, Any]:
    return await create_system_model(
        pair.admin, "alpha", modelUrl=f"{fake.url}/v1", creditMultiplier=MULTIPLIER
    )


async def burst(pair: Pair, model: dict[str, Any], calls: int) -> list[str | None]:
    return await asyncio.gather(*(pair.chat((pair.a, pair.b)[i % 2], model) for i in range(calls)))


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 1.0) -> float:
    """Seconds until `check` holds; fails after `within`."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < within, "not seen in time"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def has_requests(fake: OpenAIFake) -> bool:
    return bool(fake.requests)


# ---- the monthly credit limit ---------------------------------------------------------------------


async def test_a_burst_split_across_two_instances_never_spends_past_the_limit(
    pair: Pair, model: dict[str, Any], fake: OpenAIFake
) -> None:
    outcomes = await burst(pair, model, 100)
    answered = outcomes.count(None)
    assert outcomes.count("QUOTA_EXCEEDED") == 100 - answered
    assert len(fake.requests) == answered  # a refused call never reaches the upstream
    spent = await pair.spent()
    assert spent == answered * COST
    # The bound: what was reserved. Every call costs less than it reserved here, so no overshoot.
    assert spent <= LIMIT
    # Little is stranded: each instance may keep less than one call's reservation unused.
    assert answered * RESERVED > LIMIT - 3 * RESERVED

    # What either instance leased and left unused goes back: one instance alone spends the rest,
    # to within one call's reservation, and then both refuse.
    fake.delay = 0
    await asyncio.sleep(REFUSAL_MEMORY.total_seconds() + 3 * IDLE)
    for _ in range(20):
        if await pair.chat(pair.a, model) is not None:
            break
    assert await pair.chat(pair.b, model) == "QUOTA_EXCEEDED"
    assert LIMIT - RESERVED < await pair.spent() <= LIMIT


async def test_calls_that_cost_more_than_they_reserved_are_the_only_overshoot(
    pair: Pair, model: dict[str, Any], fake: OpenAIFake
) -> None:
    fake.prompt_tokens = 40  # the provider counts far more input tokens than the gateway estimated
    cost = Decimal("2.75")  # (40 + 4) / 1000 * 62.5, against 1.125 reserved
    outcomes = await burst(pair, model, 60)
    answered = outcomes.count(None)
    spent = await pair.spent()
    assert spent == answered * cost
    assert spent <= LIMIT + answered * (cost - RESERVED)
    # The excess is owed: the next lease covers it first, and here nothing is left after it.
    await asyncio.sleep(REFUSAL_MEMORY.total_seconds())
    assert [await pair.chat(instance, model) for instance in (pair.a, pair.b)] == ["QUOTA_EXCEEDED"] * 2


async def test_an_instance_that_never_called_refuses_once_the_other_spent_the_limit(
    pair: Pair, model: dict[str, Any], fake: OpenAIFake
) -> None:
    fake.delay = 0
    await update_organization(pair.admin, pair.tenant.organization_gid, monthlyCreditLimit="3")
    assert [await pair.chat(pair.a, model) for _ in range(3)] == [None, None, "QUOTA_EXCEEDED"]
    assert await pair.chat(pair.b, model) == "QUOTA_EXCEEDED"
    for instance in (pair.a, pair.b):  # streams too
        variables = stream_input(QUESTION, model=model["id"], maxTokens=MAX_TOKENS)
        events = await stream_events(ws_url(instance.url), pair.tenant.keys[Role.DEVELOPER], variables)
        assert [(e["__typename"], e.get("code")) for e in events] == [("ChatStreamError", "QUOTA_EXCEEDED")]
    assert await pair.spent() == 2 * COST


async def test_a_crashed_instances_reservations_stop_counting_after_the_lease_timeout(
    pair: Pair, model: dict[str, Any], fake: OpenAIFake, database_url: str
) -> None:
    await update_organization(pair.admin, pair.tenant.organization_gid, monthlyCreditLimit="3")
    env = {"MODELGATE_QUOTA_LEASE_TIMEOUT": str(LEASE_TIMEOUT), "MODELGATE_QUOTA_LEASE_IDLE": "60"}
    async with server_process(database_url, env=env) as doomed:
        fake.delay = 60
        # Reserves (14 + 20) / 1000 * 62.5 = 2.125 of the 3 credits, and hangs upstream.
        hanging = asyncio.create_task(pair.chat(doomed, model, maxTokens=20))
        await eventually(lambda: has_requests(fake), within=5)
        doomed.process.kill()
        await doomed.wait(10)
    with contextlib.suppress(aiohttp.ClientError):
        await hanging
    fake.delay = 0
    crashed_at = time.monotonic()
    assert await pair.chat(pair.a, model) == "QUOTA_EXCEEDED"  # 1.125 does not fit beside 2.125
    while await pair.chat(pair.a, model) is not None:
        assert time.monotonic() - crashed_at < LEASE_TIMEOUT + REFUSAL_MEMORY.total_seconds() + 2
        await asyncio.sleep(0.1)
    assert await pair.spent() == COST  # the crashed call wrote nothing: it cost nothing


# ---- trips and caches -----------------------------------------------------------------------------


async def test_failures_on_either_instance_count_towards_one_trip(pair: Pair, fake: OpenAIFake) -> None:
    async with openai_fake_server(reply="Beta answers.", chunks=2) as fallback:
        alpha = await create_system_model(pair.admin, "alpha", modelUrl=f"{fake.url}/v1")
        beta = await create_system_model(pair.admin, "beta", modelUrl=f"{fallback.url}/v1")
        org_admin = pair.admin.with_key(pair.tenant.admin_key)
        primary = await create_user_model(
            org_admin,
            organizationId=pair.tenant.organization_gid,
            scope="PROJECT",
            projectId=pair.tenant.project_gid,
            name="primary",
            parentModelId=alpha["id"],
            fallbacks=[{"modelId": beta["id"], "failedRequests": 2, "durationMinutes": 5}],
        )
        fake.delay, fake.error = 0, FakeError.server_error()
        # One failed call on each instance (each tried twice, then served by the fallback).
        project = pair.tenant.project_gid
        assert [await pair.chat(i, primary, projectId=project) for i in (pair.a, pair.b)] == [None, None]
        assert len(fake.requests) == 4

        async def both_skip_the_primary() -> bool:
            for instance in (pair.a, pair.b):
                if not await instance.services.health.is_tripped(uuid_of(primary["id"])):
                    return False
            return True

        await eventually(both_skip_the_primary)
        assert [await pair.chat(i, primary, projectId=project) for i in (pair.a, pair.b)] == [None, None]
        assert len(fake.requests) == 4  # tripped on both: straight to the fallback
        assert len(fallback.requests) == 4


async def test_changes_through_one_instance_take_effect_on_the_other_within_a_second(
    pair: Pair, model: dict[str, Any], fake: OpenAIFake
) -> None:
    fake.delay = 0
    key = await create_key(pair.admin.with_key(pair.tenant.admin_key), pair.tenant.organization_gid)
    on_b = GraphQLClient(pair.http, pair.b.url, key)
    call = {"messages": QUESTION, "model": model["id"], "maxTokens": MAX_TOKENS}
    assert await pair.chat(pair.b, model) is None  # B has the model, the key and the organization cached
    assert (await on_b.mutate(CHAT, call))["userErrors"] == []

    # A lower monthly limit: B's lease no longer covers a call (it trades its spare in at once).
    await update_organization(pair.admin, pair.tenant.organization_gid, monthlyCreditLimit="1")

    async def limit_lowered() -> bool:
        return await pair.chat(pair.b, model) == "QUOTA_EXCEEDED"

    await eventually(limit_lowered)
    await update_organization(pair.admin, pair.tenant.organization_gid, monthlyCreditLimit=None)

    # A revoked key.
    revoked = await pair.admin.mutate(
        REVOKE, {"id": encode_id("ApiKey", await api_key_id(pair.a.services, key))}
    )
    assert revoked["userErrors"] == []

    async def key_refused() -> bool:
        return error_codes(
            await on_b.post(CHAT, {"input": {"messages": QUESTION, "model": model["id"]}})
        ) == ["UNAUTHENTICATED"]

    await eventually(key_refused)

    # A disabled model.
    payload = await pair.admin.mutate(SYSTEM_UPDATE, {"id": model["id"], "enabled": False})
    assert payload["userErrors"] == []

    async def model_disabled() -> bool:
        return await pair.chat(pair.b, model) == "MODEL_DISABLED"

    await eventually(model_disabled)
