"""Usage: metering off the hot path, and the usage report.

The gateway calls `UsageRecorder.record` after each call (success, failure or cancellation),
which writes nothing; `flush` writes what was recorded in one statement. The monthly credit limit
(app/services/quota.py) hears of every write, since written rows leave its leases.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Protocol
from uuid import UUID

from app.domain.auth import Permission, Principal
from app.domain.gateway import UsageEvent
from app.domain.usage import Metered, UsageQuery, UsageReport, check_report_range
from app.repositories.usage import TotalsHook
from app.services.permissions import require

log = logging.getLogger(__name__)

MAX_BUFFERED_EVENTS = 100_000


class UsageWriter(Protocol):
    async def insert_batch(
        self, records: Sequence[Metered], lease_holder: UUID, after_each: TotalsHook | None = None
    ) -> set[tuple[UUID, date]]: ...


class UsageReader(Protocol):
    async def report(self, query: UsageQuery) -> UsageReport: ...


class WriteListener(Protocol):
    """Holds the quota leases that written rows leave; told when rows reach the database, or
    never will."""

    @property
    def instance_id(self) -> UUID: ...

    def written(
        self, records: Sequence[Metered], lease_holder: UUID, leases: Collection[tuple[UUID, date]]
    ) -> None: ...

    def dropped(self, records: Sequence[Metered]) -> None: ...


class UsageRecorder:
    """Buffers usage events in memory; `flush` writes all of them in one statement.

    `Services` flushes every `flush_interval` seconds and once more on shutdown. A failed flush
    (or one cancelled by shutdown) keeps its events for the next; beyond `max_buffered` events
    (a long database outage) the oldest are dropped, with a warning, rather than exhausting memory.
    """

    def __init__(
        self,
        writer: UsageWriter,
        listener: WriteListener,
        *,
        max_buffered: int = MAX_BUFFERED_EVENTS,
        totals_written: TotalsHook | None = None,
    ) -> None:
        self.writer = writer
        # Told the monthly totals each write changed, in its transaction (the credit alerts).
        self.totals_written = totals_written
        self.listener = listener
        self.max_buffered = max_buffered
        self._buffer: deque[Metered] = deque()
        self._flushing = asyncio.Lock()
        self._dropped = 0

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def record(self, event: UsageEvent, *, reserved: bool = False) -> None:
        """Meters one call (`reserved`: see `QuotaReservations.settle`). In memory only: safe to
        call on the hot path."""
        self._buffer.append(Metered(uuid.uuid4(), event, reserved))
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
        lease_holder = self.listener.instance_id
        try:
            leases = await self.writer.insert_batch(batch, lease_holder, self.totals_written)
        except BaseException:  # cancellation too: shutdown cancels a flush and then flushes again
            # Older than anything recorded meanwhile: back to the front, in order.
            self._buffer.extendleft(reversed(batch))
            self._drop_beyond_limit()
            raise
        self.listener.written(batch, lease_holder, leases)

    def _drop_beyond_limit(self) -> None:
        excess = len(self._buffer) - self.max_buffered
        if excess > 0:
            self.listener.dropped([self._buffer.popleft() for _ in range(excess)])
            self._dropped += excess


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
