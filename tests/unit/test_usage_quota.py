"""QuotaTracker arithmetic: written total (cached) + unwritten local credits, against the limit."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest

from app.domain.enums import Plan
from app.domain.gateway import CallOperation, CallStatus, GatewayError, GatewayErrorCode, UsageEvent
from app.domain.tenancy import Organization
from app.services.usage import QuotaTracker, UsageRecorder

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
MARCH = date(2025, 3, 1)


class Clock:
    def __init__(self) -> None:
        self.monotonic = 1000.0
        self.wall = NOW

    def advance(self, seconds: float) -> None:
        self.monotonic += seconds
        self.wall += timedelta(seconds=seconds)


class StubDatabase:
    """The written monthly totals, shared by every tracker given it (like instances sharing one)."""

    def __init__(self) -> None:
        self.totals: dict[tuple[UUID, date], Decimal] = {}
        self.reads = 0
        self.during_read: list[Callable[[], None]] = []  # run while a read is in flight

    def add(self, organization_id: UUID, month: date, credits: str) -> None:
        key = (organization_id, month)
        self.totals[key] = self.totals.get(key, Decimal(0)) + Decimal(credits)

    async def monthly_credits(self, organization_id: UUID, month: date) -> Decimal:
        self.reads += 1
        result = self.totals.get((organization_id, month), Decimal(0))
        await asyncio.sleep(0)
        while self.during_read:
            self.during_read.pop(0)()
        return result


def organization(limit: str | None) -> Organization:
    return Organization(
        id=uuid.uuid4(),
        name="Acme",
        plan=Plan.PRO,
        monthly_credit_limit=Decimal(limit) if limit is not None else None,
        auto_migrate_end_of_life=False,
        external_id=None,
        max_concurrent_streams=None,
        created_at=NOW,
        updated_at=NOW,
    )


def event(org: Organization, credits: str, created_at: datetime = NOW) -> UsageEvent:
    return UsageEvent(
        organization_id=org.id,
        project_id=None,
        api_key_id=None,
        caller="key:test",
        operation=CallOperation.CHAT,
        requested_model_id=None,
        served_model_id=None,
        provider="ECHO",
        input_tokens=0,
        output_tokens=0,
        credits=Decimal(credits),
        latency_ms=1,
        time_to_first_token_ms=None,
        status=CallStatus.SUCCESS,
        error_code=None,
        request_id=uuid.uuid4().hex,
        created_at=created_at,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db() -> StubDatabase:
    return StubDatabase()


@pytest.fixture
def tracker(clock: Clock, db: StubDatabase) -> QuotaTracker:
    return QuotaTracker(db, refresh_seconds=2.0, clock=lambda: clock.monotonic, now=lambda: clock.wall)


async def refused(tracker: QuotaTracker, org: Organization) -> bool:
    error: GatewayError | None = None
    try:
        await tracker.check(org)
    except GatewayError as exc:
        error = exc
    if error is None:
        return False
    assert error.code is GatewayErrorCode.QUOTA_EXCEEDED
    return True


async def test_without_a_limit_nothing_is_read_or_refused(tracker: QuotaTracker, db: StubDatabase) -> None:
    org = organization(None)
    db.add(org.id, MARCH, "1000000")
    tracker.record(event(org, "5000"))
    assert not await refused(tracker, org)
    assert db.reads == 0


async def test_spent_is_the_written_total_plus_local_unwritten_credits(
    tracker: QuotaTracker, db: StubDatabase
) -> None:
    org = organization("10")
    db.add(org.id, MARCH, "6")
    tracker.record(event(org, "3.5"))
    assert await tracker.spent(org.id, MARCH) == Decimal("9.5")
    assert not await refused(tracker, org)
    tracker.record(event(org, "0.5"))  # exactly the limit: spent ≥ limit refuses
    assert await refused(tracker, org)
    assert db.reads == 1  # the local part needs no read


async def test_the_refusal_says_the_limit_and_when_it_renews(tracker: QuotaTracker) -> None:
    org = organization("2.500000")
    tracker.record(event(org, "3"))
    with pytest.raises(GatewayError) as caught:
        await tracker.check(org)
    assert caught.value.message == (
        "the organization has used its monthly limit of 2.5 credits; it renews on 2025-04-01 (UTC)"
    )


async def test_a_zero_limit_refuses_everything(tracker: QuotaTracker) -> None:
    assert await refused(tracker, organization("0"))


async def test_the_written_total_is_read_again_only_after_the_refresh_interval(
    tracker: QuotaTracker, db: StubDatabase, clock: Clock
) -> None:
    org = organization("10")
    assert not await refused(tracker, org)
    db.add(org.id, MARCH, "10")  # another instance wrote usage
    clock.advance(1.99)
    assert not await refused(tracker, org)  # still the cached total
    assert db.reads == 1
    clock.advance(0.01)
    assert await refused(tracker, org)
    assert db.reads == 2


async def test_written_usage_moves_from_the_local_part_to_the_total_counted_once(
    tracker: QuotaTracker, db: StubDatabase
) -> None:
    org = organization("10")
    assert await tracker.spent(org.id, MARCH) == 0
    written = event(org, "4")
    tracker.record(written)
    assert await tracker.spent(org.id, MARCH) == 4
    # The recorder writes it: the database has it, the local part no longer does, and the cached
    # total (read before the write) is read again although the refresh interval has not passed.
    db.add(org.id, MARCH, "4")
    tracker.written([written])
    assert await tracker.spent(org.id, MARCH) == 4
    assert db.reads == 2


async def test_a_write_completing_during_a_read_is_counted_once(
    tracker: QuotaTracker, db: StubDatabase
) -> None:
    org = organization("10")
    written = event(org, "4")
    tracker.record(written)

    def write() -> None:
        db.add(org.id, MARCH, "4")
        tracker.written([written])

    db.during_read.append(write)  # the read returns the total from before the write
    assert await tracker.spent(org.id, MARCH) == 4
    assert db.reads == 2  # so it read again


async def test_dropped_events_stop_counting(tracker: QuotaTracker) -> None:
    org = organization("10")
    kept, lost = event(org, "2"), event(org, "3")
    tracker.record(kept)
    tracker.record(lost)
    tracker.dropped([lost])
    assert await tracker.spent(org.id, MARCH) == 2
    tracker.dropped([lost])  # never below zero, whatever is reported
    tracker.dropped([kept])
    assert await tracker.spent(org.id, MARCH) == 0


async def test_months_are_utc_calendar_months(tracker: QuotaTracker, db: StubDatabase, clock: Clock) -> None:
    org = organization("8")
    clock.wall = datetime(2025, 3, 31, 23, 59, 59, tzinfo=UTC)
    db.add(org.id, MARCH, "5")
    # 00:30 on April 1st in UTC+1 is still March in UTC.
    tracker.record(event(org, "3", datetime(2025, 4, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))))
    assert await refused(tracker, org)

    clock.advance(1)  # April 1st, 00:00:00 UTC: a new month, nothing spent yet
    assert not await refused(tracker, org)
    assert await tracker.spent(org.id, date(2025, 4, 1)) == 0
    tracker.record(event(org, "8", clock.wall))
    assert await refused(tracker, org)


async def test_concurrent_checks_share_one_read(tracker: QuotaTracker, db: StubDatabase) -> None:
    org = organization("10")
    await asyncio.gather(*(tracker.check(org) for _ in range(50)))
    assert db.reads == 1


async def test_instances_sharing_a_database_see_each_other_after_a_write_and_a_refresh(
    clock: Clock, db: StubDatabase
) -> None:
    def instance() -> tuple[QuotaTracker, UsageRecorder]:
        quota = QuotaTracker(db, clock=lambda: clock.monotonic, now=lambda: clock.wall)
        return quota, UsageRecorder(Writer(db), quota)

    (quota_a, usage_a), (quota_b, _) = instance(), instance()
    org = organization("1")
    assert not await refused(quota_b, org)
    spend = event(org, "1.5")
    usage_a.record(spend)
    quota_a.record(spend)
    assert await refused(quota_a, org)  # at once on the instance that metered it
    await usage_a.flush()
    assert await refused(quota_a, org)
    assert not await refused(quota_b, org)  # B's cached total is from before the write
    clock.advance(2)
    assert await refused(quota_b, org)


class Writer:
    def __init__(self, db: StubDatabase, *, failing: bool = False) -> None:
        self.db = db
        self.failing = failing
        self.attempts: list[list[UUID]] = []  # the row ids of each batch it was given

    async def insert_batch(self, records: Sequence[tuple[UUID, UsageEvent]]) -> None:
        self.attempts.append([record_id for record_id, _ in records])
        if self.failing:
            raise ConnectionError("the database is unreachable")
        for _, e in records:
            self.db.add(e.organization_id, MARCH, str(e.credits))


async def test_the_recorder_keeps_failed_batches_within_its_bound(
    tracker: QuotaTracker, db: StubDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    org = organization("100")
    writer = Writer(db, failing=True)
    recorder = UsageRecorder(writer, tracker, max_buffered=3)
    events = [event(org, str(n)) for n in (1, 2, 3, 4)]
    for e in events[:2]:
        recorder.record(e)
        tracker.record(e)
    with pytest.raises(ConnectionError):
        await recorder.flush()
    for e in events[2:]:
        recorder.record(e)
        tracker.record(e)
    # Four events, room for three: the oldest went, and no longer counts towards the quota.
    assert recorder.buffered == 3
    assert await tracker.spent(org.id, MARCH) == 2 + 3 + 4

    writer.failing = False
    await recorder.flush()
    assert "dropped the oldest unwritten usage events" in caplog.text
    assert recorder.buffered == 0
    assert db.totals[(org.id, MARCH)] == 9
    assert await tracker.spent(org.id, MARCH) == 9
    # Row ids are fixed when recorded, so a batch written again cannot insert a row twice.
    failed, written = writer.attempts
    assert written[0] == failed[1]
    assert len(set(written)) == 3
