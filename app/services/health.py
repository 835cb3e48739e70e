"""Model health: consecutive failures and trips, shared by every instance through PostgreSQL.

The gateway asks `is_tripped` before every call and reports each outcome, so the hot path must not
touch the database: each instance answers from memory, re-reading a model's row at most every
`refresh_interval` seconds (reads of many models at once are batched into one query). Changes other
instances act on (a model starts failing, trips, or is reset) are published on the "model_health"
topic so that every instance drops its copy at once. A trip ends by itself when the clock passes
`tripped_until`; nothing is written for that.

After a trip ends the failure count stays where it was: the next call is a trial, and one more
failure trips the model again at once, while a success resets the count.

Health bookkeeping never fails a call, and never holds one for a read: a call whose model's row is
due for a re-read goes on with what this instance last knew while the row is read in the
background. When the database cannot be reached, the tracker goes on with what it last knew (no
failures, for a model it never read) for as long as the outage lasts, tries again every
`refresh_interval`, and logs it. A wrong belief costs at most a call on a tripped model, or a
fallback taken once more than needed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

from app.db import Database, DatabaseUnavailable
from app.domain.alert_events import TripAudience, model_recovered, model_tripped
from app.domain.auth import Permission, Principal
from app.domain.gateway import HealthState, ModelHealth, TripPolicy
from app.domain.notifications import Delivery, Notification
from app.domain.pagination import CreatedKey, Page, PageRequest
from app.repositories.health import NEVER_FAILED, HealthRepository, HealthRow
from app.repositories.outbox import OutboxRepository
from app.services.notifications import MODEL_HEALTH_TOPIC, Notifications
from app.services.permissions import require

log = logging.getLogger(__name__)


def is_tripped_at(row: HealthRow, now: datetime) -> bool:
    return row.tripped_until is not None and row.tripped_until > now


def should_trip(row: HealthRow, policy: TripPolicy, now: datetime) -> bool:
    """Whether a failure that left the model in `row` trips it (once per trip: not while tripped)."""
    return row.consecutive_failures >= policy.failed_requests and not is_tripped_at(row, now)


def health_at(row: HealthRow, now: datetime) -> ModelHealth:
    if is_tripped_at(row, now):
        return ModelHealth(HealthState.TRIPPED, row.consecutive_failures, row.tripped_until)
    state = HealthState.DEGRADED if row.consecutive_failures > 0 else HealthState.HEALTHY
    return ModelHealth(state, row.consecutive_failures, None)


_DUE = float("-inf")  # a `fetched_at` that makes a row due for a re-read


@dataclass(frozen=True, slots=True)
class _Known:
    row: HealthRow
    fetched_at: float  # monotonic


class ModelHealthTracker:
    def __init__(
        self,
        db: Database,
        health_rows: HealthRepository,
        outbox: OutboxRepository,
        hub: Notifications,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        refresh_interval: float = 1.0,
    ) -> None:
        self.db = db
        self.health_rows = health_rows
        self.outbox = outbox
        self.hub = hub  # publishes health changes to every instance
        self.clock = clock
        self.refresh_interval = refresh_interval
        self._known: dict[UUID, _Known] = {}
        # Rows wanted by callers since the last batch started; one task reads them all.
        self._wanted: dict[UUID, asyncio.Future[HealthRow | None]] = {}
        # Rows being read: wanted again meanwhile, they wait for that read rather than start one.
        self._reading: dict[UUID, asyncio.Future[HealthRow | None]] = {}
        self._loaders: set[asyncio.Task[None]] = set()
        # Bumped by every invalidation: a read that raced with one is not kept.
        self._generation = 0

    # ---- the gateway's hot path -------------------------------------------------------------

    async def is_tripped(self, model_id: UUID) -> bool:
        """Whether calls should skip this model for its fallbacks. Answered from memory."""
        return is_tripped_at(await self._row(model_id, wait_for_reread=False), self.clock())

    async def record_success(self, model_id: UUID, audience: TripAudience | None = None) -> None:
        """Resets the failure count, writing only when this instance believes there are failures.
        A success after a trip ended is a recovery: announced to `audience` (the primary's)."""
        known = self._known.get(model_id)
        if known is None or known.row.consecutive_failures == 0:
            return
        # Believed at once, so that concurrent successes do not write the same reset again.
        self._remember(model_id, replace(known.row, consecutive_failures=0))
        now = self.clock()
        try:
            async with self.db.transaction():
                reset = await self.health_rows.reset(model_id, now)
                if reset is not None and reset.ended_trip is not None and audience is not None:
                    await self.outbox.insert(
                        model_recovered(audience, model_id=model_id, tripped_until=reset.ended_trip)
                    )
            if reset is not None:
                await self._publish(model_id)
        except DatabaseUnavailable:
            log.warning("could not reset the failure count of model %s", model_id)
            # Believed still, but read again when next asked: the reset may not have been written.
            self._known[model_id] = _Known(replace(known.row, consecutive_failures=0), _DUE)

    # ---- the failure path -------------------------------------------------------------------

    async def record_failure(
        self,
        model_id: UUID,
        policy: TripPolicy,
        error_code: str,
        audience: TripAudience,
    ) -> bool:
        """Counts a failure of `model_id`; trips it after `policy.failed_requests` in a row, writing
        the trip's event (for `audience`) with it. True if this call tripped it."""
        now = self.clock()
        began = time.monotonic()
        try:
            async with self.db.transaction():
                row = await self.health_rows.add_failure(model_id, error_code, now)
                tripped = should_trip(row, policy, now)
                if tripped:
                    until = now + timedelta(minutes=policy.duration_minutes)
                    row = replace(row, tripped_until=until)
                    await self.health_rows.trip(model_id, until)
                    event = model_tripped(
                        audience,
                        model_id=model_id,
                        consecutive_failures=row.consecutive_failures,
                        error_code=error_code,
                        tripped_until=until,
                    )
                    await self.outbox.insert(event)
        except DatabaseUnavailable:
            log.warning("could not record a failure of model %s", model_id)
            return False
        # Further failures change nothing another instance decides on; the first one does (its
        # successes must now reset the count), and so does a trip.
        if tripped or row.consecutive_failures == 1:
            await self._publish(model_id)
        self._remember_failure(model_id, row, began)
        return tripped

    # ---- display ----------------------------------------------------------------------------

    async def health(self, model_id: UUID) -> ModelHealth:
        """The model's state now. A failure count recorded by another instance may lag by up to
        `refresh_interval`; starting to fail, trips and resets show at once."""
        return health_at(await self._row(model_id, wait_for_reread=True), self.clock())

    async def notifications(
        self, principal: Principal, organization_id: UUID, page: PageRequest[CreatedKey]
    ) -> Page[Notification]:
        """An organization's notifications, newest first. Another organization's read as none."""
        if not principal.can_access_organization(organization_id) or principal.project_id is not None:
            return Page([], False)
        require(principal, Permission.ORGANIZATION_MANAGE)
        return await self.outbox.list_for_organization(organization_id, page)

    async def deliveries(self, notification_ids: list[UUID]) -> dict[UUID, list[Delivery]]:
        """Of events the caller was shown (by `notifications` or `notification`)."""
        return await self.outbox.deliveries(notification_ids)

    async def notification(self, principal: Principal, notification_id: UUID) -> Notification | None:
        found = await self.outbox.get(notification_id)
        if (
            found is None
            or found.organization_id is None
            or not principal.can_access_organization(found.organization_id)
            or not principal.has(Permission.ORGANIZATION_MANAGE)
            or principal.project_id is not None
        ):
            return None
        return found

    # ---- the per-instance copy --------------------------------------------------------------

    def invalidate(self, key: str | None = None) -> None:
        """A model's health changed on some instance (`key` its id; None: maybe any model's)."""
        self._generation += 1
        # A read already running may predate the change: the next caller starts a new one.
        if key is None:
            self._known.clear()
            self._reading.clear()
        else:
            self._known.pop(UUID(key), None)
            self._reading.pop(UUID(key), None)

    async def _row(self, model_id: UUID, *, wait_for_reread: bool) -> HealthRow:
        known = self._known.get(model_id)
        if known is not None and time.monotonic() - known.fetched_at < self.refresh_interval:
            return known.row
        if known is not None and not wait_for_reread:
            self._want(model_id)  # read in the background
            return known.row
        # Shielded: a cancelled caller must not cancel the read other callers wait for.
        row = await asyncio.shield(self._want(model_id))
        if row is not None:
            return row
        return known.row if known is not None else NEVER_FAILED

    def _want(self, model_id: UUID) -> asyncio.Future[HealthRow | None]:
        future = self._wanted.get(model_id) or self._reading.get(model_id)
        if future is not None:
            return future
        if not self._wanted:
            # Runs after the callers already scheduled, so concurrent reads share one query.
            task = asyncio.create_task(self._read_wanted(), name="model-health-read")
            self._loaders.add(task)
            task.add_done_callback(self._loaders.discard)
        future = asyncio.get_running_loop().create_future()
        self._wanted[model_id] = future
        return future

    async def _read_wanted(self) -> None:
        """Reads every wanted row in one query; a waiter gets None when the read failed."""
        wanted, self._wanted = self._wanted, {}
        self._reading.update(wanted)
        generation = self._generation
        rows: dict[UUID, HealthRow] | None = None
        try:
            rows = await self.health_rows.get_many(list(wanted))
        except Exception as exc:
            unexpected = not isinstance(exc, DatabaseUnavailable)
            log.warning(
                "could not read model health; using what this instance last knew", exc_info=unexpected
            )
        finally:
            for model_id, future in wanted.items():
                if self._reading.get(model_id) is future:
                    del self._reading[model_id]
        fetched_at = time.monotonic()
        for model_id, future in wanted.items():
            row = None if rows is None else rows.get(model_id, NEVER_FAILED)
            if generation == self._generation:
                # After a failed read: what was known (or nothing known to be wrong) is kept for
                # another `refresh_interval` before the next try, so calls do not queue reads.
                known = self._known.get(model_id)
                kept = row if row is not None else known.row if known is not None else NEVER_FAILED
                self._known[model_id] = _Known(kept, fetched_at)
            if not future.done():
                future.set_result(row)

    def _remember(self, model_id: UUID, row: HealthRow) -> None:
        self._known[model_id] = _Known(row, time.monotonic())

    def _remember_failure(self, model_id: UUID, row: HealthRow, began: float) -> None:
        """Concurrent failures of one model get here in any order (each waits for its connection
        to be reset, and some for an announcement). A streak's count only grows: a row remembered
        since this failure began with a higher count is the later one, and stays."""
        known = self._known.get(model_id)
        if (
            known is not None
            and known.fetched_at >= began
            and known.row.consecutive_failures > row.consecutive_failures
        ):
            return
        self._remember(model_id, row)

    async def _publish(self, model_id: UUID) -> None:
        try:
            await self.hub.publish(MODEL_HEALTH_TOPIC, str(model_id))
        except DatabaseUnavailable:
            # Other instances catch up within `refresh_interval`.
            log.warning("could not announce a health change of model %s", model_id)
