"""Model health: consecutive failures, trips and recoveries shared by every instance, the trip
notification in the outbox, and both as GraphQL shows them (`Model.health`,
`Organization.notifications`)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import aiohttp
import pytest

from app.config import Settings
from app.db import Database
from app.domain.alert_events import TripAudience
from app.domain.auth import ROLE_PERMISSIONS, Principal, PrincipalKind, Role
from app.domain.gateway import HealthState, ModelHealth, TripPolicy
from app.domain.ids import encode_id
from app.domain.pagination import PageRequest
from app.repositories.health import Reset
from app.services.health import ModelHealthTracker
from tests.conftest import LiveServer, running_server
from tests.support.catalog import create_system_model, create_user_model, uuid_of
from tests.support.factories import Tenant, make_platform_admin_key
from tests.support.graphql import GraphQLClient, error_codes

EMAILS = ("ops@acme.test", "oncall@acme.test")
POLICY = TripPolicy(failed_requests=3, duration_minutes=5, notify_emails=EMAILS)
SHARED = TripAudience(None, "shared", (), ())

HEALTH = "query($id: ID!) { model(id: $id) { health { state consecutiveFailures trippedUntil } } }"
NOTIFICATIONS = """query($id: ID!, $first: Int, $after: String) { organization(id: $id) {
  notifications(first: $first, after: $after) {
    nodes { id kind recipients subject body payload createdAt sentAt }
    pageInfo { hasNextPage endCursor } } } }"""
NODE = "query($id: ID!) { node(id: $id) { id ... on Notification { subject } } }"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(server: LiveServer) -> Clock:
    clock = Clock()
    server.services.health.clock = clock
    return clock


@pytest.fixture
def health(server: LiveServer, clock: Clock) -> ModelHealthTracker:
    return server.services.health


@pytest.fixture
async def model(gql: GraphQLClient, tenant: Tenant) -> dict[str, Any]:
    """An organization's own model (health is tracked for any model; the primary of fallbacks is one)."""
    return await create_user_model(
        gql.with_key(tenant.admin_key),
        organizationId=tenant.organization_gid,
        name="support-bot",
        provider="OPENAI",
        providerModelId="gpt-4o",
    )


@pytest.fixture
def model_id(model: dict[str, Any]) -> UUID:
    return uuid_of(model["id"])


async def fail(
    health: ModelHealthTracker, model_id: UUID, tenant: Tenant, policy: TripPolicy = POLICY
) -> bool:
    audience = TripAudience(tenant.organization.id, "support-bot", policy.notify_emails, ("backup-bot",))
    return await health.record_failure(model_id, policy, "SERVER_ERROR", audience)


async def stored(db: Database, model_id: UUID) -> dict[str, Any] | None:
    """The model's health row with its row version (`xmin` changes with every write)."""
    row = await db.fetchrow("SELECT *, xmin::text AS version FROM model_health WHERE model_id = $1", model_id)
    return dict(row) if row else None


async def outbox(db: Database) -> list[dict[str, Any]]:
    return [dict(r) for r in await db.fetch("SELECT * FROM notification_outbox ORDER BY created_at, id")]


# ---- counting and tripping ----------------------------------------------------------------------------


async def test_failures_are_counted_and_the_model_trips_after_exactly_failed_requests(
    server: LiveServer, health: ModelHealthTracker, clock: Clock, tenant: Tenant, model_id: UUID
) -> None:
    assert await health.health(model_id) == ModelHealth(HealthState.HEALTHY, 0, None)
    assert [await fail(health, model_id, tenant) for _ in range(2)] == [False, False]
    assert await health.health(model_id) == ModelHealth(HealthState.DEGRADED, 2, None)
    assert not await health.is_tripped(model_id)

    assert await fail(health, model_id, tenant) is True
    until = clock.now + timedelta(minutes=5)
    assert await health.is_tripped(model_id)
    assert await health.health(model_id) == ModelHealth(HealthState.TRIPPED, 3, until)
    row = await stored(server.services.db, model_id)
    assert row is not None
    assert (row["consecutive_failures"], row["tripped_until"], row["last_failure_code"]) == (
        3,
        until,
        "SERVER_ERROR",
    )

    # Calls that were already under way fail too: counted, but the trip is not restarted.
    assert await fail(health, model_id, tenant) is False
    assert await health.health(model_id) == ModelHealth(HealthState.TRIPPED, 4, until)


async def test_one_notification_per_trip_with_the_emails(
    server: LiveServer, health: ModelHealthTracker, clock: Clock, tenant: Tenant, model_id: UUID
) -> None:
    for _ in range(5):
        await fail(health, model_id, tenant)
    (notification,) = await outbox(server.services.db)
    until = clock.now + timedelta(minutes=5)
    assert notification["organization_id"] == tenant.organization.id
    assert notification["kind"] == "MODEL_TRIPPED"
    assert notification["recipients"] == list(EMAILS)
    assert notification["sent_at"] is None
    assert "support-bot" in notification["subject"]
    assert until.isoformat(timespec="seconds") in notification["subject"]
    assert "3 times" in notification["body"]
    assert "SERVER_ERROR" in notification["body"]
    assert notification["payload"]["modelId"] == str(model_id)


async def test_concurrent_failures_trip_once(
    server: LiveServer, health: ModelHealthTracker, tenant: Tenant, model_id: UUID
) -> None:
    results = await asyncio.gather(*(fail(health, model_id, tenant) for _ in range(12)))
    assert results.count(True) == 1
    assert len(await outbox(server.services.db)) == 1
    assert (await health.health(model_id)).consecutive_failures == 12


async def test_a_trip_without_email_recipients_is_written_with_no_email_delivery(
    server: LiveServer, health: ModelHealthTracker, tenant: Tenant, model_id: UUID
) -> None:
    """The event is the organization's record of the trip (and its webhooks' to send)."""
    policy = TripPolicy(failed_requests=1, duration_minutes=5, notify_emails=())
    assert await fail(health, model_id, tenant, policy) is True
    (event,) = await outbox(server.services.db)
    assert event["recipients"] == []
    assert await server.services.db.fetch("SELECT * FROM notification_deliveries") == []


# ---- recovery and resets ------------------------------------------------------------------------------


async def test_a_trip_ends_when_the_clock_passes_tripped_until_without_a_write(
    server: LiveServer, health: ModelHealthTracker, clock: Clock, tenant: Tenant, model_id: UUID
) -> None:
    for _ in range(3):
        await fail(health, model_id, tenant)
    before = await stored(server.services.db, model_id)

    clock.advance(minutes=4, seconds=59)
    assert await health.is_tripped(model_id)
    clock.advance(seconds=1)
    assert not await health.is_tripped(model_id)
    assert await health.health(model_id) == ModelHealth(HealthState.DEGRADED, 3, None)
    assert await stored(server.services.db, model_id) == before

    # The first call after the trip is a trial: one more failure trips it again, with a new notice.
    assert await fail(health, model_id, tenant) is True
    assert await health.is_tripped(model_id)
    assert len(await outbox(server.services.db)) == 2


async def test_a_success_resets_the_count_and_costs_no_write_on_a_healthy_model(
    server: LiveServer,
    health: ModelHealthTracker,
    tenant: Tenant,
    model_id: UUID,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = server.services.db
    resets: list[UUID] = []
    reset = health.health_rows.reset

    async def counted(model_id: UUID, now: datetime) -> Reset | None:
        resets.append(model_id)
        return await reset(model_id, now)

    monkeypatch.setattr(health.health_rows, "reset", counted)

    assert await health.is_tripped(model_id) is False
    await health.record_success(model_id)
    assert (resets, await stored(db, model_id)) == ([], None)  # healthy: no statement, no row

    await fail(health, model_id, tenant)
    await fail(health, model_id, tenant)
    await health.record_success(model_id)
    assert resets == [model_id]
    assert await health.health(model_id) == ModelHealth(HealthState.HEALTHY, 0, None)
    after_reset = await stored(db, model_id)
    assert after_reset is not None
    assert after_reset["consecutive_failures"] == 0

    for _ in range(3):
        assert await health.is_tripped(model_id) is False
        await health.record_success(model_id)
    assert resets == [model_id]  # healthy again: successes cost nothing
    assert await stored(db, model_id) == after_reset  # same row version

    # The count starts again from zero: two more failures do not trip it.
    assert [await fail(health, model_id, tenant) for _ in range(2)] == [False, False]


# ---- several instances --------------------------------------------------------------------------------


async def eventually(check: Any, within: float = 1.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "not seen in time"
        await asyncio.sleep(0.02)


async def test_every_instance_sees_a_trip_and_a_reset_at_once(
    settings: Settings, http: aiohttp.ClientSession
) -> None:
    async with running_server(settings) as a, running_server(settings) as b:
        admin = GraphQLClient(http, a.url, await make_platform_admin_key(a.services))
        model_id = uuid_of((await create_system_model(admin, "shared"))["id"])
        tracker_a, tracker_b = a.services.health, b.services.health
        # B would not re-read on its own for an hour: only the change notification can tell it.
        tracker_b.refresh_interval = 3600
        assert not await tracker_b.is_tripped(model_id)
        policy = TripPolicy(failed_requests=2, duration_minutes=5, notify_emails=())

        await tracker_a.record_failure(model_id, policy, "TIMEOUT", SHARED)

        async def b_knows_it_fails() -> bool:
            return (await tracker_b.health(model_id)).state is HealthState.DEGRADED

        await eventually(b_knows_it_fails)
        # So a success on B resets what A counted: the failures are no longer consecutive.
        await tracker_b.record_success(model_id)

        async def a_sees_the_reset() -> bool:
            return (await tracker_a.health(model_id)).consecutive_failures == 0

        await eventually(a_sees_the_reset)
        assert await tracker_a.record_failure(model_id, policy, "TIMEOUT", SHARED) is False
        assert await tracker_a.record_failure(model_id, policy, "TIMEOUT", SHARED) is True
        assert await tracker_a.is_tripped(model_id)

        async def b_sees_the_trip() -> bool:
            return await tracker_b.is_tripped(model_id)

        await eventually(b_sees_the_trip)


async def test_an_instance_rereads_health_within_the_refresh_interval(
    server: LiveServer, health: ModelHealthTracker, tenant: Tenant, model_id: UUID
) -> None:
    """Counts that are not announced (the second failure onwards) still reach every instance."""
    assert (await health.health(model_id)).consecutive_failures == 0
    await server.services.db.execute(
        "INSERT INTO model_health (model_id, consecutive_failures) VALUES ($1, 2)", model_id
    )
    assert (await health.health(model_id)).consecutive_failures == 0  # from memory
    await asyncio.sleep(health.refresh_interval)
    assert (await health.health(model_id)).consecutive_failures == 2


async def test_concurrent_reads_share_one_query(
    server: LiveServer, health: ModelHealthTracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = health.health_rows
    queries: list[list[UUID]] = []
    read = rows.get_many

    async def counted(model_ids: list[UUID]) -> Any:
        queries.append(model_ids)
        return await read(model_ids)

    monkeypatch.setattr(rows, "get_many", counted)
    ids = [uuid.uuid4() for _ in range(5)]
    results = await asyncio.gather(*(health.is_tripped(i) for i in ids * 4))
    assert results == [False] * 20
    assert [sorted(q) for q in queries] == [sorted(ids)]
    await asyncio.gather(*(health.is_tripped(i) for i in ids))
    assert len(queries) == 1  # answered from memory


# ---- GraphQL ------------------------------------------------------------------------------------------


async def test_model_health_shows_each_state(
    gql: GraphQLClient, health: ModelHealthTracker, clock: Clock, tenant: Tenant, model: dict[str, Any]
) -> None:
    client = gql.with_key(tenant.keys[Role.VIEWER])
    model_id = uuid_of(model["id"])

    async def shown() -> dict[str, Any]:
        result: dict[str, Any] = (await client.data(HEALTH, {"id": model["id"]}))["model"]["health"]
        return result

    assert await shown() == {"state": "HEALTHY", "consecutiveFailures": 0, "trippedUntil": None}
    await fail(health, model_id, tenant)
    assert await shown() == {"state": "DEGRADED", "consecutiveFailures": 1, "trippedUntil": None}
    await fail(health, model_id, tenant)
    await fail(health, model_id, tenant)
    tripped = await shown()
    assert (tripped["state"], tripped["consecutiveFailures"]) == ("TRIPPED", 3)
    assert datetime.fromisoformat(tripped["trippedUntil"]) == clock.now + timedelta(minutes=5)
    clock.advance(minutes=5)
    assert await shown() == {"state": "DEGRADED", "consecutiveFailures": 3, "trippedUntil": None}
    await health.record_success(model_id)
    assert await shown() == {"state": "HEALTHY", "consecutiveFailures": 0, "trippedUntil": None}


async def test_organization_admins_read_trip_notifications_newest_first(
    gql: GraphQLClient, health: ModelHealthTracker, clock: Clock, tenant: Tenant, model_id: UUID
) -> None:
    for _ in range(3):
        await fail(health, model_id, tenant)
    clock.advance(minutes=6)
    await fail(health, model_id, tenant)  # trips again: a second notification

    admin = gql.with_key(tenant.admin_key)
    first = (await admin.data(NOTIFICATIONS, {"id": tenant.organization_gid, "first": 1}))["organization"]
    (newest,) = first["notifications"]["nodes"]
    assert first["notifications"]["pageInfo"]["hasNextPage"] is True
    assert newest["kind"] == "MODEL_TRIPPED"
    assert newest["recipients"] == list(EMAILS)
    assert newest["payload"]["consecutiveFailures"] == 4
    assert newest["sentAt"] is None
    assert "support-bot" in newest["subject"]

    after = first["notifications"]["pageInfo"]["endCursor"]
    rest = await admin.data(NOTIFICATIONS, {"id": tenant.organization_gid, "first": 1, "after": after})
    (oldest,) = rest["organization"]["notifications"]["nodes"]
    assert oldest["payload"]["consecutiveFailures"] == 3
    assert rest["organization"]["notifications"]["pageInfo"]["hasNextPage"] is False

    assert (await admin.data(NODE, {"id": newest["id"]}))["node"] == {
        "id": newest["id"],
        "subject": newest["subject"],
    }


async def test_notifications_are_for_organization_admins_of_that_organization_only(
    server: LiveServer,
    gql: GraphQLClient,
    health: ModelHealthTracker,
    tenant: Tenant,
    other_tenant: Tenant,
    model_id: UUID,
) -> None:
    for _ in range(3):
        await fail(health, model_id, tenant)
    admin = gql.with_key(tenant.admin_key)
    data = await admin.data(NOTIFICATIONS, {"id": tenant.organization_gid})
    (notification,) = data["organization"]["notifications"]["nodes"]

    developer = gql.with_key(tenant.keys[Role.DEVELOPER])
    assert error_codes(await developer.post(NOTIFICATIONS, {"id": tenant.organization_gid})) == ["FORBIDDEN"]
    assert (await developer.data(NODE, {"id": notification["id"]}))["node"] is None

    other = gql.with_key(other_tenant.admin_key)
    own = await other.data(NOTIFICATIONS, {"id": other_tenant.organization_gid})
    assert own["organization"]["notifications"]["nodes"] == []
    assert (await other.data(NOTIFICATIONS, {"id": tenant.organization_gid}))["organization"] is None
    assert (await other.data(NODE, {"id": notification["id"]}))["node"] is None
    missing = encode_id("Notification", uuid.uuid4())
    assert (await admin.data(NODE, {"id": missing}))["node"] is None

    # The service itself reads another organization's notifications as none.
    other_admin = Principal(
        kind=PrincipalKind.API_KEY,
        permissions=ROLE_PERMISSIONS[Role.ADMIN],
        organization_id=other_tenant.organization.id,
    )
    page = await health.notifications(other_admin, tenant.organization.id, PageRequest(first=10))
    assert (list(page.items), page.has_next_page) == ([], False)
