"""Per-key rate limits and the per-organization stream cap, across two app instances on one
database, with a clock both instances share; and the GraphQL fields that configure them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from app.config import Settings
from app.domain.auth import Principal
from app.domain.gateway import GatewayError, GatewayErrorCode
from app.services.container import Services
from app.services.limits import StreamSlots
from tests.conftest import LiveServer, make_settings, running_server
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient

CREATE_KEY = """mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) {
  secret apiKey { id rateLimitPerMinute } userErrors { code field message } } }"""
UPDATE_ORGANIZATION = """mutation($input: OrganizationUpdateInput!) { organizationUpdate(input: $input) {
  organization { id maxConcurrentStreams } userErrors { code field message } } }"""
START = datetime(2030, 1, 1, 12, 0, 15, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Idle time and lease timeout far beyond the test's run, so that the background upkeep never
    # runs on its own: the test drives it, and the shared fake clock decides what is idle or dead.
    return make_settings(database_url, stream_lease_idle=1000, stream_lease_timeout=3000)


@pytest.fixture
def clock(server: LiveServer) -> FakeClock:
    clock = FakeClock()
    use_clock(server.services, clock)
    return clock


@pytest.fixture
async def second(settings: Settings, clock: FakeClock) -> AsyncIterator[LiveServer]:
    """Another instance on the same database."""
    async with running_server(settings) as live:
        use_clock(live.services, clock)
        yield live


def use_clock(services: Services, clock: FakeClock) -> None:
    services.rate_limiter.clock = clock
    services.stream_slots.clock = clock


async def create_key(client: GraphQLClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    values = {"organizationId": tenant.organization_gid, "name": "limited", **fields}
    payload: dict[str, Any] = await client.mutate(CREATE_KEY, values)
    return payload


def count_leases(services: Services) -> list[int]:
    """Wraps the instance's one database write for rate limits; the list collects what each granted."""
    granted: list[int] = []
    lease = services.rate_limiter.repository.lease_requests

    async def counted(*args: Any) -> int:
        result = await lease(*args)
        granted.append(result)
        return result

    services.rate_limiter.repository.lease_requests = counted  # type: ignore[method-assign]
    return granted


async def window_used(services: Services, principal: Principal, window_start: datetime) -> int | None:
    used: int | None = await services.db.fetchval(
        "SELECT used FROM rate_limit_windows WHERE caller_id = $1 AND window_start = $2",
        principal.api_key_id,
        window_start,
    )
    return used


# ---- rate limits ---------------------------------------------------------------------------------


async def test_a_keys_limit_holds_exactly_across_two_instances_with_batched_writes(
    server: LiveServer, second: LiveServer, gql: GraphQLClient, tenant: Tenant, clock: FakeClock
) -> None:
    payload = await create_key(gql.with_key(tenant.admin_key), tenant, rateLimitPerMinute=20)
    assert payload["userErrors"] == []
    assert payload["apiKey"]["rateLimitPerMinute"] == 20
    first, other = server.services, second.services
    # Each instance authenticates the key itself: the limit travels with the key.
    principal = await first.key_auth.authenticate(payload["secret"])
    assert principal == await other.key_auth.authenticate(payload["secret"])
    assert principal.rate_limit_per_minute == 20
    leases = count_leases(first), count_leases(other)

    for _ in range(10):
        await first.rate_limiter.acquire(principal)
        await other.rate_limiter.acquire(principal)
    for instance in (first, other):
        with pytest.raises(GatewayError) as refused:
            await instance.rate_limiter.acquire(principal)
        assert refused.value.code is GatewayErrorCode.RATE_LIMITED
        assert refused.value.retry_after == 45.0  # the clock reads 12:00:15
    # Ten leases of 2 (a tenth of 20) granted the 20, and one refusal each; nothing else was written.
    assert [g for g in leases[0] + leases[1] if g] == [2] * 10
    assert leases[0].count(0) == leases[1].count(0) == 1
    assert await window_used(first, principal, START.replace(second=0)) == 20

    clock.advance(45)  # 12:01:00, the next window
    await first.rate_limiter.acquire(principal)
    await other.rate_limiter.acquire(principal)
    assert await window_used(first, principal, START.replace(minute=1, second=0)) == 4


async def test_a_busy_key_writes_once_per_tenth_of_its_default_limit(
    server: LiveServer, second: LiveServer, tenant: Tenant, clock: FakeClock
) -> None:
    first, other = server.services, second.services
    principal = await first.key_auth.authenticate(tenant.admin_key)
    assert principal.rate_limit_per_minute is None  # the server default, 600
    leases = count_leases(first), count_leases(other)
    for _ in range(300):
        await first.rate_limiter.acquire(principal)
        await other.rate_limiter.acquire(principal)
    with pytest.raises(GatewayError):
        await first.rate_limiter.acquire(principal)
    assert len(leases[0]) + len(leases[1]) == 11  # 600 calls: ten leases of 60, one refusal
    assert await window_used(first, principal, START.replace(second=0)) == 600


async def test_a_keys_rate_limit_is_validated(
    gql: GraphQLClient, admin_key: str, tenant: Tenant, subtests: pytest.Subtests
) -> None:
    org_admin, platform_admin = gql.with_key(tenant.admin_key), gql.with_key(admin_key)
    field = ["input", "rateLimitPerMinute"]
    for value in (0, -5, 100_001):
        with subtests.test(value=value):
            payload = await create_key(org_admin, tenant, rateLimitPerMinute=value)
            assert payload["apiKey"] is None
            assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("OUT_OF_RANGE", field)]
    with subtests.test("above the server default: platform admins only"):
        payload = await create_key(org_admin, tenant, rateLimitPerMinute=601)
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("PERMISSION_DENIED", field)]
        payload = await create_key(platform_admin, tenant, rateLimitPerMinute=100_000)
        assert payload["apiKey"]["rateLimitPerMinute"] == 100_000
    with subtests.test("left out: the server default"):
        payload = await create_key(org_admin, tenant)
        assert payload["apiKey"]["rateLimitPerMinute"] is None


# ---- concurrent streams --------------------------------------------------------------------------


async def hold_stream(slots: StreamSlots, organization_id: UUID) -> asyncio.Task[None]:
    """A task holding one stream slot until it is cancelled."""
    holding = asyncio.Event()

    async def stream() -> None:
        async with slots.acquire(organization_id):
            holding.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(stream())
    waiter = asyncio.create_task(holding.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task.done():
        task.result()  # raises what refused the slot
    return task


async def cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def too_many(slots: StreamSlots, organization_id: UUID) -> None:
    with pytest.raises(GatewayError) as refused:
        async with slots.acquire(organization_id):
            pass
    assert refused.value.code is GatewayErrorCode.TOO_MANY_STREAMS


async def set_stream_cap(client: GraphQLClient, tenant: Tenant, cap: int | None) -> dict[str, Any]:
    payload: dict[str, Any] = await client.mutate(
        UPDATE_ORGANIZATION, {"id": tenant.organization_gid, "maxConcurrentStreams": cap}
    )
    return payload


async def test_the_stream_cap_holds_across_instances_and_freed_slots_return(
    server: LiveServer,
    second: LiveServer,
    gql: GraphQLClient,
    admin_key: str,
    tenant: Tenant,
    clock: FakeClock,
) -> None:
    payload = await set_stream_cap(gql.with_key(admin_key), tenant, 3)
    assert payload["organization"]["maxConcurrentStreams"] == 3
    first, other = server.services.stream_slots, second.services.stream_slots
    org = tenant.organization.id

    held = [await hold_stream(first, org), await hold_stream(first, org), await hold_stream(other, org)]
    await too_many(first, org)
    await too_many(other, org)

    # A cancelled stream frees its slot at once on its own instance...
    await cancel(held.pop(0))
    held.append(await hold_stream(first, org))
    await too_many(other, org)
    # ...and for the other instances once it has sat unused for a whole idle period.
    await cancel(held.pop(0))
    await too_many(other, org)
    for _ in range(2):
        clock.advance(1000)
        await first.maintain()
        await other.maintain()
    held.append(await hold_stream(other, org))
    await too_many(first, org)
    for task in held:
        await cancel(task)


async def test_a_dead_instances_slots_stop_counting_after_the_lease_timeout(
    settings: Settings,
    server: LiveServer,
    gql: GraphQLClient,
    admin_key: str,
    tenant: Tenant,
    clock: FakeClock,
) -> None:
    await set_stream_cap(gql.with_key(admin_key), tenant, 3)
    org = tenant.organization.id
    survivor = server.services.stream_slots
    async with running_server(settings) as doomed:
        use_clock(doomed.services, clock)
        slots = doomed.services.stream_slots
        held = [await hold_stream(slots, org) for _ in range(3)]

        async def crash_without_handing_back(_instance_id: UUID) -> None:
            pass

        slots.repository.release_instance = crash_without_handing_back  # type: ignore[method-assign]
    await too_many(survivor, org)
    clock.advance(2999)
    await too_many(survivor, org)  # not yet dead
    clock.advance(2)
    survivors = [await hold_stream(survivor, org) for _ in range(3)]
    await too_many(survivor, org)
    for task in held + survivors:
        await cancel(task)


async def test_the_stream_cap_is_for_platform_admins_to_set(
    gql: GraphQLClient, admin_key: str, tenant: Tenant
) -> None:
    field = ["input", "maxConcurrentStreams"]
    payload = await set_stream_cap(gql.with_key(tenant.admin_key), tenant, 100)
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("PERMISSION_DENIED", field)]
    platform_admin = gql.with_key(admin_key)
    for value in (0, 10_001):
        payload = await set_stream_cap(platform_admin, tenant, value)
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("OUT_OF_RANGE", field)]
    assert (await set_stream_cap(platform_admin, tenant, 7))["organization"]["maxConcurrentStreams"] == 7
    assert (await set_stream_cap(platform_admin, tenant, None))["organization"][
        "maxConcurrentStreams"
    ] is None
