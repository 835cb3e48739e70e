"""Usage: metering off the hot path, the monthly credit limit, and the usage report.

The gateway calls `await QuotaTracker.check(organization)` before calling a provider, and after
each call (success or failure) both `UsageRecorder.record(event)` and `QuotaTracker.record(event)`.
None of them writes to the database; `check` reads it at most every `refresh_seconds` per
organization.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Protocol
from uuid import UUID

from app.domain.auth import Permission, Principal
from app.domain.gateway import GatewayError, GatewayErrorCode, UsageEvent
from app.domain.tenancy import Organization
from app.domain.usage import UsageQuery, UsageReport, check_report_range, month_of, next_month
from app.services.permissions import require

log = logging.getLogger(__name__)

MAX_BUFFERED_EVENTS = 100_000


class UsageWriter(Protocol):
    async def insert_batch(self, records: Sequence[tuple[UUID, UsageEvent]]) -> None: ...


class MonthlySpendReader(Protocol):
    async def monthly_credits(self, organization_id: UUID, month: date) -> Decimal: ...


class UsageReader(Protocol):
    async def report(self, query: UsageQuery) -> UsageReport: ...


class WriteListener(Protocol):
    """Told when recorded events reach the database, or never will."""

    def written(self, events: Sequence[UsageEvent]) -> None: ...

    def dropped(self, events: Sequence[UsageEvent]) -> None: ...


class UsageRecorder:
    """Buffers usage events in memory; `flush` writes all of them in one statement.

    `Services` flushes every `flush_interval` seconds and once more on shutdown. A failed flush
    (or one cancelled by shutdown) keeps its events for the next; beyond `max_buffered` events
    (a long database outage) the oldest are dropped, with a warning, rather than exhausting memory.
    """

    def __init__(
        self, writer: UsageWriter, listener: WriteListener, *, max_buffered: int = MAX_BUFFERED_EVENTS
    ) -> None:
        self.writer = writer
        self.listener = listener
        self.max_buffered = max_buffered
        # Row ids are assigned here so that writing a batch again cannot insert it twice.
        self._buffer: deque[tuple[UUID, UsageEvent]] = deque()
        self._flushing = asyncio.Lock()
        self._dropped = 0

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def record(self, event: UsageEvent) -> None:
        """Meters one call. In memory only: safe to call on the hot path."""
        self._buffer.append((uuid.uuid4(), event))
        self._drop_beyond_limit()

    async def flush(self) -> None:
        # One flush at a time: a caller's flush returns only once everything recorded before it,
        # including what a periodic flush already took, is written.
        async with self._flushing:
            await self._flush()

    async def _flush(self) -> None:
        if self._dropped:
            log.warning(
                "dropped the oldest unwritten usage events: the database was unreachable too long",
                extra={"dropped": self._dropped},
            )
            self._dropped = 0
        if not self._buffer:
            return
        batch = list(self._buffer)
        self._buffer.clear()
        try:
            await self.writer.insert_batch(batch)
        except BaseException:  # cancellation too: shutdown cancels a flush and then flushes again
            # Older than anything recorded meanwhile: back to the front, in order.
            self._buffer.extendleft(reversed(batch))
            self._drop_beyond_limit()
            raise
        self.listener.written([event for _, event in batch])

    def _drop_beyond_limit(self) -> None:
        excess = len(self._buffer) - self.max_buffered
        if excess > 0:
            self.listener.dropped([self._buffer.popleft()[1] for _ in range(excess)])
            self._dropped += excess


@dataclass(frozen=True, slots=True)
class _WrittenTotal:
    month: date
    credits: Decimal
    read_at: float  # monotonic, taken before the read
    writes_seen: int  # `QuotaTracker._writes` before the read


class QuotaTracker:
    """Enforces monthly credit limits across instances without a database query per call.

    spent = the organization's written total for the current UTC calendar month (one row of
    organization_monthly_credits, cached per organization and read again once `refresh_seconds`
    have passed or this instance has written usage) + the credits recorded here (`record`) and
    not yet written. `check` refuses with QUOTA_EXCEEDED while spent ≥ the organization's limit.
    Every event given to `UsageRecorder.record` must also be given to `record` here (the recorder
    reports back, as its `WriteListener`, when the event is written or dropped).

    This instance's own usage therefore always counts at once. Another instance's counts only once
    it has flushed (within `flush_interval`, plus the time the write takes) and this one has read
    the total again (within `refresh_seconds`). So once an organization's spend reaches its limit,
    every instance refuses it within flush_interval + refresh_seconds (+ one write), and the
    overshoot is bounded by:

      - the credits of calls started on the other instances during that window, plus
      - the credits of calls already running when the limit was reached, on any instance (a call
        is checked when it starts; what it costs is known only when it ends).

    A database read that fails propagates (the call fails rather than running unchecked); flushes
    that keep failing widen the window by as long as they fail.
    """

    def __init__(
        self,
        reader: MonthlySpendReader,
        *,
        refresh_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.reader = reader
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self.now = now
        self._unwritten: dict[tuple[UUID, date], Decimal] = {}
        # How many batches this instance has written: a total read before the latest may lack it.
        self._writes = 0
        self._written: dict[UUID, _WrittenTotal] = {}
        # One read per organization and month at a time, however many calls are waiting for it.
        self._reads: dict[tuple[UUID, date], asyncio.Task[Decimal]] = {}

    async def check(self, organization: Organization) -> None:
        limit = organization.monthly_credit_limit
        if limit is None:
            return
        month = month_of(self.now())
        if await self.spent(organization.id, month) >= limit:
            raise GatewayError(
                GatewayErrorCode.QUOTA_EXCEEDED,
                f"the organization has used its monthly limit of {limit.normalize():f} credits; "
                f"it renews on {next_month(month).isoformat()} (UTC)",
            )

    def record(self, event: UsageEvent) -> None:
        """Counts a metered call at once, until its row is written (or dropped)."""
        key = (event.organization_id, month_of(event.created_at))
        self._unwritten[key] = self._unwritten.get(key, Decimal(0)) + event.credits

    def written(self, events: Sequence[UsageEvent]) -> None:
        self._forget(events)
        self._writes += 1

    def dropped(self, events: Sequence[UsageEvent]) -> None:
        self._forget(events)

    async def spent(self, organization_id: UUID, month: date) -> Decimal:
        """The organization's credits in `month` (its first day, UTC), as this instance sees them."""
        written = await self._written_total(organization_id, month)
        return written + self._unwritten.get((organization_id, month), Decimal(0))

    def _forget(self, events: Sequence[UsageEvent]) -> None:
        for event in events:
            key = (event.organization_id, month_of(event.created_at))
            # Never below zero, even for an event that was not given to `record`.
            remaining = self._unwritten.get(key, Decimal(0)) - event.credits
            if remaining > 0:
                self._unwritten[key] = remaining
            else:
                self._unwritten.pop(key, None)

    async def _written_total(self, organization_id: UUID, month: date) -> Decimal:
        cached = self._written.get(organization_id)
        if (
            cached is not None
            and cached.month == month
            and cached.writes_seen == self._writes
            and self.clock() - cached.read_at < self.refresh_seconds
        ):
            return cached.credits
        read = self._reads.get((organization_id, month))
        if read is None:
            read = asyncio.create_task(self._read(organization_id, month))
            # Retrieved here so that a read whose waiters were all cancelled logs no warning.
            read.add_done_callback(lambda task: task.cancelled() or task.exception())
            self._reads[(organization_id, month)] = read
        # Shielded: one waiter being cancelled must not cancel the read the others wait for.
        return await asyncio.shield(read)

    async def _read(self, organization_id: UUID, month: date) -> Decimal:
        try:
            while True:
                writes, read_at = self._writes, self.clock()
                credits = await self.reader.monthly_credits(organization_id, month)
                # A batch written meanwhile may or may not be in `credits` while it has already
                # left the unwritten part: read again rather than count it zero times.
                if self._writes == writes:
                    break
            self._written[organization_id] = _WrittenTotal(month, credits, read_at, writes)
            return credits
        finally:
            del self._reads[(organization_id, month)]


class UsageReports:
    def __init__(self, usage: UsageReader) -> None:
        self.usage = usage

    async def report(
        self,
        principal: Principal,
        *,
        organization_id: UUID,
        project_id: UUID | None = None,
        model_id: UUID | None = None,
        since: datetime,
        until: datetime,
    ) -> UsageReport:
        """Calls created in [since, until): totals, by model and by UTC day. Another
        organization's usage (or another project's, for a project key) reads as none."""
        require(principal, Permission.USAGE_READ)
        check_report_range(since, until)
        empty = UsageReport.of((), ())
        if not principal.can_access_organization(organization_id):
            return empty
        if principal.project_id is not None:
            if project_id not in (None, principal.project_id):
                return empty
            project_id = principal.project_id
        return await self.usage.report(
            UsageQuery(organization_id, since, until, project_id=project_id, model_id=model_id)
        )
