"""Credit leases against a real PostgreSQL, with clocks the tests move: instances (QuotaReservations
objects on one database, as two servers would have) at the month boundary, cut off past the lease
timeout, idle, stopping, and under a limit that is removed."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from app.domain.auth import OPERATOR
from app.domain.gateway import GatewayError, GatewayErrorCode, UsageEvent
from app.domain.quota import Reservation
from app.domain.tenancy import Organization
from app.repositories.quota import QuotaLeaseRepository
from app.repositories.usage import UsageRepository
from app.services.quota import QuotaReservations
from app.services.tenancy import OrganizationChanges
from app.services.usage import UsageRecorder
from tests.conftest import LiveServer
from tests.support.factories import make_tenant
from tests.support.gateway import Clock
from tests.support.usage_events import paid_call

TIMEOUT = 30.0
IDLE = 5.0
MARCH = date(2025, 3, 1)
APRIL = date(2025, 4, 1)


@dataclass
class Instance:
    quota: QuotaReservations
    usage: UsageRecorder

    def settle(self, reservation: Reservation | None, credits: str, at: datetime) -> bool:
        """What the gateway does when a call ends."""
        event = spent(reservation, credits, at)
        reserved = self.quota.settle(reservation, event)
        self.usage.record(event, reserved=reserved)
        return reserved


def spent(reservation: Reservation | None, credits: str, at: datetime) -> UsageEvent:
    assert reservation is not None
    return paid_call(reservation.organization_id, credits, at)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2025, 3, 14, 12, 0, tzinfo=UTC))


def instance(server: LiveServer, clock: Clock) -> Instance:
    db = server.services.db
    quota = QuotaReservations(
        db,
        QuotaLeaseRepository(db),
        default_max_output_tokens=4096,
        lease_timeout=TIMEOUT,
        idle_after=IDLE,
        lease_wait=2.0,
        clock=clock,
    )
    return Instance(quota, UsageRecorder(UsageRepository(db), quota))


async def organization(server: LiveServer, limit: str | None) -> Organization:
    tenant = await make_tenant(server.services, f"org-{uuid.uuid4().hex[:6]}")
    changes = OrganizationChanges(monthly_credit_limit=Decimal(limit) if limit is not None else None)
    return await server.services.organizations.update(OPERATOR, tenant.organization.id, changes)


async def refused(quota: QuotaReservations, org: Organization, credits: str) -> bool:
    error: GatewayError | None = None
    try:
        await quota.reserve(org, Decimal(credits))
    except GatewayError as exc:
        error = exc
    if error is None:
        return False
    assert error.code is GatewayErrorCode.QUOTA_EXCEEDED, error.message
    return True


async def leases(server: LiveServer) -> dict[tuple[uuid.UUID, date], Decimal]:
    rows = await server.services.db.fetch("SELECT instance_id, month, credits FROM quota_leases")
    return {(r["instance_id"], r["month"]): r["credits"] for r in rows}


async def test_a_call_that_ends_in_the_next_month_counts_there_without_having_reserved(
    server: LiveServer, clock: Clock
) -> None:
    a = instance(server, clock)
    org = await organization(server, "10")
    clock.now = datetime(2025, 3, 31, 23, 59, 59, tzinfo=UTC)
    reservation = await a.quota.reserve(org, Decimal(4))
    assert reservation == Reservation(org.id, MARCH, Decimal(4))
    clock.advance(seconds=2)
    # Its usage row says April: April's written total counts it, no April lease held it.
    assert not a.settle(reservation, "3", clock.now)
    await a.usage.flush()
    assert await refused(a.quota, org, "7.5")  # 10 - 3 written this month
    assert not await refused(a.quota, org, "7")
    # March's lease goes once nothing in it is in flight or unwritten.
    assert (a.quota.instance_id, MARCH) in await leases(server)
    await a.quota.maintain()
    assert (a.quota.instance_id, MARCH) not in await leases(server)


async def test_an_instance_cut_off_past_the_lease_timeout_gives_its_leases_up(
    server: LiveServer, clock: Clock
) -> None:
    a, b = instance(server, clock), instance(server, clock)
    org = await organization(server, "100")
    in_flight = await a.quota.reserve(org, Decimal(1))  # A leases 10: 9 spare
    cut_off = a.quota.instance_id
    clock.advance(seconds=TIMEOUT + 1)  # A renewed nothing meanwhile: B no longer counts A's lease
    assert await b.quota.reserve(org, Decimal(99)) is not None
    # A does not spend what it held: it finds its leases lapsed and registers anew, owing the 1 its
    # call in flight reserved. 1 credit is left: not enough for both.
    assert await refused(a.quota, org, "1")
    assert a.quota.instance_id != cut_off
    # The call in flight ends; its cost is owed under the new registration, which holds no lease.
    assert a.settle(in_flight, "0.8", clock.now)
    await a.usage.flush()
    assert await leases(server) == {(cut_off, MARCH): Decimal(10), (b.quota.instance_id, MARCH): Decimal(99)}
    assert await refused(a.quota, org, "0.3")  # 100 - 99 held by B - 0.8 written
    clock.advance(seconds=2)  # (past the memory of the last refusal)
    assert not await refused(a.quota, org, "0.2")
    # The next renewal of any instance forgets registrations silent ten lease timeouts, and theirs.
    clock.advance(seconds=10 * TIMEOUT)
    await b.quota.maintain()
    assert (cut_off, MARCH) not in await leases(server)


async def test_credits_left_unused_for_an_idle_period_go_back_and_all_of_them_on_stop(
    server: LiveServer, clock: Clock
) -> None:
    a, b = instance(server, clock), instance(server, clock)
    org = await organization(server, "10")
    reservation = await a.quota.reserve(org, Decimal(1))  # A leases 1 and a tenth of 10: 1 (no extra)
    assert a.settle(reservation, "0.25", clock.now)
    assert await leases(server) == {(a.quota.instance_id, MARCH): Decimal(1)}
    assert await refused(b.quota, org, "9.5")
    clock.advance(seconds=IDLE)
    await a.quota.maintain()  # the first period ends: nothing sat unused all of it
    clock.advance(seconds=IDLE)
    await a.quota.maintain()  # 0.75 sat unused a whole period: handed back
    assert await leases(server) == {(a.quota.instance_id, MARCH): Decimal("0.25")}
    await a.usage.flush()  # the spent 0.25 moves to the written total
    assert await leases(server) == {(a.quota.instance_id, MARCH): Decimal(0)}
    clock.advance(seconds=2)
    assert await b.quota.reserve(org, Decimal("9.75")) is not None
    await b.quota.stop()
    assert (b.quota.instance_id, MARCH) not in await leases(server)


async def test_a_removed_limit_reserves_nothing_and_hands_the_spare_back(
    server: LiveServer, clock: Clock
) -> None:
    a = instance(server, clock)
    org = await organization(server, "100")
    first = await a.quota.reserve(org, Decimal(1))
    assert first is not None
    assert await leases(server) == {(a.quota.instance_id, MARCH): Decimal(10)}
    await server.services.organizations.update(
        OPERATOR, org.id, OrganizationChanges(monthly_credit_limit=None)
    )
    # This instance's copy of the organization still has the limit; the database says there is none.
    assert await a.quota.reserve(org, Decimal(20)) is None
    assert await leases(server) == {(a.quota.instance_id, MARCH): Decimal(1)}  # only the call in flight's
    # Once its copy says so too, nothing touches the database.
    assert await a.quota.reserve(dataclasses.replace(org, monthly_credit_limit=None), Decimal(5)) is None
