"""Every alert event kind: written by its cause (in the cause's transaction where there is one),
once per key however often or on however many instances the cause is seen, with what it says."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import aiohttp
import pytest

from app.config import Settings
from app.domain.alert_events import TripAudience
from app.domain.auth import OPERATOR
from app.domain.gateway import TripPolicy, UsageEvent
from app.domain.ids import encode_id
from app.services.container import Services
from tests.conftest import LiveServer, make_settings, running_server
from tests.support.catalog import create_system_model, create_user_model, uuid_of
from tests.support.factories import Tenant, make_platform_admin_key
from tests.support.graphql import GraphQLClient
from tests.support.usage_events import paid_call

POLICY = TripPolicy(failed_requests=2, duration_minutes=5, notify_emails=("ops@acme.test",))
REVOKE = "mutation($input: ApiKeyRevokeInput!) { apiKeyRevoke(input: $input) { userErrors { code } } }"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, allow_private_webhooks=True)


@pytest.fixture
def clock(server: LiveServer) -> Clock:
    clock = Clock()
    server.services.health.clock = clock
    server.services.alert_scan.clock = clock
    return clock


async def events(services: Services, kind: str | None = None) -> list[dict[str, Any]]:
    rows = await services.db.fetch(
        "SELECT * FROM notification_outbox WHERE $1::text IS NULL OR kind = $1 ORDER BY created_at, id", kind
    )
    return [dict(r) for r in rows]


async def own_model(gql: GraphQLClient, tenant: Tenant, name: str = "support-bot") -> UUID:
    model = await create_user_model(
        gql.with_key(tenant.admin_key),
        organizationId=tenant.organization_gid,
        name=name,
        provider="OPENAI",
        providerModelId="gpt-4o",
    )
    return uuid_of(model["id"])


def audience(tenant: Tenant) -> TripAudience:
    return TripAudience(tenant.organization.id, "support-bot", POLICY.notify_emails, ("backup-bot",))


# ---- trips and recoveries -------------------------------------------------------------------------


async def test_a_trip_and_its_recovery_are_written_once_each(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant, clock: Clock
) -> None:
    health = server.services.health
    model_id = await own_model(gql, tenant)
    for _ in range(4):
        await health.record_failure(model_id, POLICY, "TIMEOUT", audience(tenant))
    (tripped,) = await events(server.services)
    assert tripped["kind"] == "MODEL_TRIPPED"
    assert tripped["payload"]["fallbacks"] == ["backup-bot"]
    assert tripped["payload"]["errorCode"] == "TIMEOUT"
    assert "What Modelgate did: Until" in tripped["body"]
    assert "backup-bot" in tripped["body"]

    # A call that began before the trip succeeds while it runs: the count resets, the trip stays.
    await health.record_success(model_id, audience(tenant))
    assert await health.is_tripped(model_id)
    assert [e["kind"] for e in await events(server.services)] == ["MODEL_TRIPPED"]

    await health.record_failure(model_id, POLICY, "TIMEOUT", audience(tenant))
    clock.advance(minutes=6)  # the trip is over; the next call is a trial, and it succeeds
    await health.record_success(model_id, audience(tenant))
    await health.record_failure(model_id, POLICY, "TIMEOUT", audience(tenant))
    await health.record_success(model_id, audience(tenant))  # an ordinary reset: no trip ended
    recovered = await events(server.services, "MODEL_RECOVERED")
    assert len(recovered) == 1
    assert recovered[0]["payload"]["trippedUntil"] == tripped["payload"]["trippedUntil"]
    assert recovered[0]["recipients"] == ["ops@acme.test"]
    assert "support-bot" in recovered[0]["subject"]


async def test_two_instances_seeing_the_same_trip_write_one_event(
    settings: Settings, http: aiohttp.ClientSession
) -> None:
    async with running_server(settings) as a, running_server(settings) as b:
        admin = GraphQLClient(http, a.url, await make_platform_admin_key(a.services))
        model_id = uuid_of((await create_system_model(admin, "shared"))["id"])
        shared = TripAudience(None, "shared", ("ops@acme.test",), ())
        await asyncio.gather(
            *(
                tracker.record_failure(model_id, POLICY, "TIMEOUT", shared)
                for tracker in (a.services.health, b.services.health) * 6
            )
        )
        assert [e["kind"] for e in await events(a.services)] == ["MODEL_TRIPPED"]


# ---- credits ----------------------------------------------------------------------------------------


def usage(tenant: Tenant, credits: str, at: datetime | None = None) -> UsageEvent:
    return paid_call(tenant.organization.id, credits, at)


async def spend(services: Services, *events: UsageEvent) -> None:
    for event in events:
        services.usage.record(event)
    await services.usage.flush()


async def test_credits_at_80_and_100_percent_of_the_monthly_limit_are_written_once(
    server: LiveServer, tenant: Tenant
) -> None:
    services = server.services
    await services.db.execute(
        "UPDATE organizations SET monthly_credit_limit = 100 WHERE id = $1", tenant.organization.id
    )
    await spend(services, usage(tenant, "50"), usage(tenant, "29.5"))
    assert await events(services) == []
    await spend(services, usage(tenant, "0.5"))  # exactly 80 %
    (warning,) = await events(services)
    assert warning["kind"] == "CREDITS_WARNING"
    assert warning["organization_id"] == tenant.organization.id
    assert warning["payload"]["threshold"] == 80
    assert Decimal(warning["payload"]["used"]) == 80
    assert Decimal(warning["payload"]["limit"]) == 100
    assert "80 % of the monthly credit limit" in warning["subject"]

    await spend(services, usage(tenant, "10"))
    assert len(await events(services)) == 1
    await spend(services, usage(tenant, "15"), usage(tenant, "1"))
    assert [e["kind"] for e in await events(services)] == ["CREDITS_WARNING", "CREDITS_EXHAUSTED"]
    assert "refused with QUOTA_EXCEEDED" in (await events(services, "CREDITS_EXHAUSTED"))[0]["body"]
    await spend(services, usage(tenant, "30"))
    assert len(await events(services)) == 2


async def test_one_write_past_both_thresholds_writes_both_and_months_count_apart(
    server: LiveServer, tenant: Tenant
) -> None:
    services = server.services
    await services.db.execute(
        "UPDATE organizations SET monthly_credit_limit = 10 WHERE id = $1", tenant.organization.id
    )
    last_month = (datetime.now(UTC).replace(day=1) - timedelta(days=1)).replace(hour=12)
    await spend(services, usage(tenant, "12"), usage(tenant, "8.5", at=last_month))
    found = {(e["kind"], e["payload"]["month"]) for e in await events(services)}
    this_month = datetime.now(UTC).date().replace(day=1).isoformat()
    assert found == {
        ("CREDITS_WARNING", this_month),
        ("CREDITS_EXHAUSTED", this_month),
        ("CREDITS_WARNING", last_month.date().replace(day=1).isoformat()),
    }


async def test_an_organization_without_a_limit_gets_no_credit_events(
    server: LiveServer, tenant: Tenant
) -> None:
    await spend(server.services, usage(tenant, "1000000"))
    assert await events(server.services) == []


# ---- end of life ------------------------------------------------------------------------------------


async def test_a_model_in_use_is_announced_30_7_and_1_days_before_its_end_of_life(
    server: LiveServer, gql: GraphQLClient, admin_key: str, tenant: Tenant, other_tenant: Tenant, clock: Clock
) -> None:
    admin = gql.with_key(admin_key)
    replacement = await create_system_model(admin, "gpt-next")
    ending = await create_system_model(
        admin,
        "gpt-old",
        endOfLifeAt=(clock.now + timedelta(days=20)).isoformat(),
        deprecationNotice="gpt-old is retired by its provider.",
        replacementModelId=replacement["id"],
    )
    # The tenant uses it through a variant; the other tenant does not use it at all.
    await create_user_model(
        gql.with_key(tenant.admin_key),
        organizationId=tenant.organization_gid,
        name="my-old",
        parentModelId=ending["id"],
    )
    scan = server.services.alert_scan

    assert await scan.run() == 1
    assert await scan.run() == 0
    (notice,) = await events(server.services)
    assert notice["kind"] == "MODEL_END_OF_LIFE_SOON"
    assert notice["organization_id"] == tenant.organization.id
    assert notice["payload"]["daysBefore"] == 30
    assert notice["payload"]["replacementModelName"] == "gpt-next"
    assert "Move your calls to its replacement gpt-next" in notice["body"]
    assert "gpt-old is retired by its provider." in notice["body"]

    clock.advance(days=14)  # 6 days left
    assert await scan.run() == 1
    clock.advance(days=5, hours=12)  # half a day left
    assert await scan.run() == 1
    assert await scan.run() == 0
    clock.advance(days=1)  # past: its calls fail now, there is nothing left to announce
    assert await scan.run() == 0
    assert [e["payload"]["daysBefore"] for e in await events(server.services)] == [30, 7, 1]
    assert {e["organization_id"] for e in await events(server.services)} == {tenant.organization.id}


async def test_an_organization_that_called_a_model_lately_is_told_of_its_end(
    server: LiveServer, admin_key: str, gql: GraphQLClient, tenant: Tenant, clock: Clock
) -> None:
    ending = await create_system_model(
        gql.with_key(admin_key), "gpt-old", endOfLifeAt=(clock.now + timedelta(hours=12)).isoformat()
    )
    event = usage(tenant, "0")
    object.__setattr__(event, "requested_model_id", uuid_of(ending["id"]))
    await spend(server.services, event)
    assert await server.services.alert_scan.run() == 1
    (notice,) = await events(server.services)
    assert (notice["organization_id"], notice["payload"]["daysBefore"]) == (tenant.organization.id, 1)
    assert "the model you choose instead" in notice["body"]  # no replacement named


# ---- API keys ---------------------------------------------------------------------------------------


async def test_a_key_is_announced_once_within_7_days_of_its_expiry(
    server: LiveServer, tenant: Tenant, clock: Clock
) -> None:
    services = server.services
    soon, _ = await services.api_keys.create_unchecked(name="ci", organization_id=tenant.organization.id)
    later, _ = await services.api_keys.create_unchecked(name="later", organization_id=tenant.organization.id)
    gone, _ = await services.api_keys.create_unchecked(name="gone", organization_id=tenant.organization.id)
    for key, days in ((soon, 3), (later, 10), (gone, 2)):
        await services.db.execute(
            "UPDATE api_keys SET expires_at = $2 WHERE id = $1", key.id, clock.now + timedelta(days=days)
        )
    await services.db.execute("UPDATE api_keys SET revoked_at = now() WHERE id = $1", gone.id)

    assert await services.alert_scan.run() == 1
    assert await services.alert_scan.run() == 0
    (expiring,) = await events(services)
    assert expiring["kind"] == "API_KEY_EXPIRING"
    assert expiring["payload"]["apiKeyId"] == str(soon.id)
    assert f"{soon.prefix}…" in expiring["body"]
    clock.advance(days=4)  # `later` is within 7 days now
    assert await services.alert_scan.run() == 1


async def test_a_revoked_key_is_announced_in_the_revocation_once(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant
) -> None:
    key, _ = await server.services.api_keys.create_unchecked(
        name="leaked", organization_id=tenant.organization.id
    )
    admin = gql.with_key(tenant.admin_key)
    gid = encode_id("ApiKey", key.id)
    for _ in range(2):
        assert (await admin.mutate(REVOKE, {"id": gid}))["userErrors"] == []
    (revoked,) = await events(server.services)
    assert revoked["kind"] == "API_KEY_REVOKED"
    assert revoked["organization_id"] == tenant.organization.id
    assert revoked["payload"]["name"] == "leaked"
    assert "was revoked" in revoked["subject"]


# ---- who gets what ----------------------------------------------------------------------------------


async def test_a_webhook_gets_only_the_kinds_it_takes_and_only_its_organizations(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    create = """mutation($input: WebhookCreateInput!) { webhookCreate(input: $input) {
      webhook { id } userErrors { code } } }"""
    for owner, kinds in ((tenant, ["API_KEY_REVOKED"]), (tenant, []), (other_tenant, [])):
        payload = await gql.with_key(owner.admin_key).mutate(
            create,
            # Loopback's discard port: nothing listens, and nothing beyond this machine is contacted.
            {"organizationId": owner.organization_gid, "url": "http://127.0.0.1:9/hook", "events": kinds},
        )
        assert payload["userErrors"] == []
    await server.services.db.execute(
        "UPDATE organizations SET monthly_credit_limit = 1 WHERE id = $1", tenant.organization.id
    )
    await spend(server.services, usage(tenant, "0.9"))
    key, _ = await server.services.api_keys.create_unchecked(name="k", organization_id=tenant.organization.id)
    await server.services.api_keys.revoke(OPERATOR, key.id)
    rows = await server.services.db.fetch(
        """SELECT n.kind, count(*) AS webhooks FROM notification_deliveries d
           JOIN notification_outbox n ON n.id = d.notification_id GROUP BY n.kind ORDER BY n.kind"""
    )
    assert [(r["kind"], r["webhooks"]) for r in rows] == [("API_KEY_REVOKED", 2), ("CREDITS_WARNING", 1)]
