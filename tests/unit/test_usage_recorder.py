"""UsageRecorder: events kept in memory, written in batches, kept across failed writes within a
bound; the quota hears which rows were written (and off whose leases) or dropped."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime
from uuid import UUID

import pytest

from app.domain.gateway import UsageEvent
from app.domain.usage import Metered
from app.services.usage import UsageRecorder
from tests.support.usage_events import paid_call

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
ORGANIZATION = uuid.uuid4()
LEASE = (ORGANIZATION, date(2025, 3, 1))


def event(credits: str) -> UsageEvent:
    return paid_call(ORGANIZATION, credits, NOW)


class Writer:
    def __init__(self, *, failing: bool = False) -> None:
        self.failing = failing
        self.attempts: list[tuple[list[Metered], UUID]] = []  # each batch it was given, and the holder

    async def insert_batch(
        self, records: Sequence[Metered], lease_holder: UUID, after_each: object = None
    ) -> set[tuple[UUID, date]]:
        self.attempts.append((list(records), lease_holder))
        if self.failing:
            raise ConnectionError("the database is unreachable")
        return {LEASE}


class Quota:
    """What the recorder tells the quota."""

    def __init__(self) -> None:
        self.instance_id = uuid.uuid4()
        self.writes: list[tuple[list[Metered], UUID, Collection[tuple[UUID, date]]]] = []
        self.drops: list[Metered] = []

    def written(
        self, records: Sequence[Metered], lease_holder: UUID, leases: Collection[tuple[UUID, date]]
    ) -> None:
        self.writes.append((list(records), lease_holder, leases))

    def dropped(self, records: Sequence[Metered]) -> None:
        self.drops.extend(records)


async def test_a_flush_writes_everything_recorded_in_one_batch_and_says_so() -> None:
    writer, quota = Writer(), Quota()
    recorder = UsageRecorder(writer, quota)
    first, second = event("1"), event("2")
    recorder.record(first, reserved=True)
    recorder.record(second)
    await recorder.flush()
    ((batch, holder),) = writer.attempts
    assert [(r.event, r.reserved) for r in batch] == [(first, True), (second, False)]
    # Written off this instance's leases: the quota is told which rows, and off which leases.
    assert holder == quota.instance_id
    assert quota.writes == [(batch, holder, {LEASE})]
    await recorder.flush()
    assert len(writer.attempts) == 1  # nothing left to write


async def test_the_recorder_keeps_failed_batches_within_its_bound(caplog: pytest.LogCaptureFixture) -> None:
    writer, quota = Writer(failing=True), Quota()
    recorder = UsageRecorder(writer, quota, max_buffered=3)
    events = [event(str(n)) for n in (1, 2, 3, 4)]
    for e in events[:2]:
        recorder.record(e, reserved=True)
    with pytest.raises(ConnectionError):
        await recorder.flush()
    assert quota.writes == []
    for e in events[2:]:
        recorder.record(e, reserved=True)
    # Four events, room for three: the oldest went, and the quota stops counting it.
    assert recorder.buffered == 3
    assert [r.event for r in quota.drops] == events[:1]

    writer.failing = False
    await recorder.flush()
    assert "dropped the oldest unwritten usage events" in caplog.text
    assert recorder.buffered == 0
    ((written, _, _),) = quota.writes
    assert [r.event for r in written] == events[1:]
    # Row ids are fixed when recorded, so a batch written again cannot insert a row twice.
    (failed, _), (succeeded, _) = writer.attempts
    assert succeeded[0].id == failed[1].id
    assert len({r.id for r in succeeded}) == 3
