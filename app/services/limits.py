"""Per-caller rate limits and the per-organization cap on concurrent streams, across instances.

Both are counters in PostgreSQL that instances lease from in batches and then spend in memory, so
the hot path goes to the database once per batch, not once per request. A lease is taken only while
the shared total stays within the limit, so the limit holds exactly across instances; what an
instance leased and did not spend only makes it stricter for a while.

Rate limits: fixed one-minute windows in UTC (instances' clocks should agree to a second or so).
A caller is an API key (platform-admin keys included), limited by its own `rate_limit_per_minute`
or the server default; or a JWT caller, limited per (organization, subject) at the server default,
so that a leaked or looping session is bounded like a key. Tokens left unspent when a window ends
are simply lost.

Stream slots: each instance holds one lease row per organization with a heartbeat. It returns
slots that sat unused for `idle_after`; a row whose heartbeat is older than `lease_timeout` belongs
to a dead instance and no longer counts.

When PostgreSQL does not answer (DatabaseUnavailable, within the query timeout): what an instance
has leased is spent as usual. A caller that needs request tokens and cannot lease them gets, once
per window, one lease's worth granted by the instance on its own (so a database outage does not
refuse every caller at the next minute), and SERVICE_UNAVAILABLE once that is spent; across N
instances a window can then exceed its limit by at most N leases. A stream that needs a new slot
lease is refused with SERVICE_UNAVAILABLE: a concurrency cap cannot be checked from one instance.
After a lease failed for want of the database, the next try waits `DATABASE_RETRY_AFTER` seconds;
calls in between (and those queued behind the failed one) are refused at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from app.db import Database, DatabaseUnavailable
from app.domain.auth import Principal, PrincipalKind
from app.domain.gateway import GatewayError, GatewayErrorCode
from app.repositories.limits import RateLimitRepository, StreamSlotRepository
from app.services.lease_upkeep import LeaseUpkeep

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
WINDOW = timedelta(minutes=1)
# Lease a tenth of a limit at a time: about ten database writes per busy window or burst of streams,
# and at most a tenth of the limit stranded on an instance that stops using it.
LEASE_FRACTION = 10
# Lease rows of instances silent this many lease timeouts are deleted (they stopped counting long ago).
_FORGET_AFTER_TIMEOUTS = 10
# After a lease failed for want of the database, seconds before the next try (refused meanwhile).
DATABASE_RETRY_AFTER = 1.0
_JWT_CALLERS = uuid.UUID("2f0c6c1e-5d1a-4f3b-9a57-6b0d5a3c9e41")  # namespace for JWT caller ids


def utc_now() -> datetime:
    return datetime.now(UTC)


def lease_size(limit: int) -> int:
    return max(1, limit // LEASE_FRACTION)


def window_of(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


def seconds_to_next_window(now: datetime) -> float:
    """Whole seconds until the next window opens, at least 1."""
    return float(max(1, math.ceil((window_of(now) + WINDOW - now).total_seconds())))


def caller_id(principal: Principal) -> UUID | None:
    """Whose budget a call spends; None for the operator's own authority (never a request)."""
    if principal.api_key_id is not None:
        return principal.api_key_id
    if principal.kind is PrincipalKind.JWT and principal.organization_id is not None:
        return uuid.uuid5(_JWT_CALLERS, f"{principal.organization_id}/{principal.label}")
    return None


@dataclass(slots=True)
class _Tokens:
    """This instance's request tokens for one caller in one window."""

    window_start: datetime
    remaining: int = 0
    exhausted: bool = False  # the window has nothing left to lease: refuse without asking again
    granted_alone: bool = False  # a lease's worth granted without the database this window
    retry_at: float = 0.0  # monotonic: no lease is tried before this (the database did not answer)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class RateLimiter:
    def __init__(
        self, repository: RateLimitRepository, *, default_per_minute: int, clock: Clock = utc_now
    ) -> None:
        self.repository = repository
        self.default_per_minute = default_per_minute
        self.clock = clock
        self._tokens: dict[UUID, _Tokens] = {}
        self._pruned_window: datetime | None = None

    async def acquire(self, principal: Principal) -> None:
        """Spends one request of the caller's current window, or raises RATE_LIMITED."""
        caller = caller_id(principal)
        if caller is None:
            return
        limit = principal.rate_limit_per_minute or self.default_per_minute
        now = self.clock()
        window = window_of(now)
        tokens = self._tokens.get(caller)
        if tokens is None or tokens.window_start != window:
            tokens = self._tokens[caller] = _Tokens(window)
        if tokens.remaining == 0 and not tokens.exhausted:
            async with tokens.lock:  # one lease at a time per caller; the others wait and spend it
                if tokens.remaining == 0 and not tokens.exhausted:
                    tokens.remaining += await self._lease(caller, tokens, limit)
        if tokens.remaining == 0:
            retry_after = seconds_to_next_window(now)
            raise GatewayError(
                GatewayErrorCode.RATE_LIMITED,
                f"rate limit of {limit} requests per minute reached; retry in {retry_after:.0f} s",
                retryable=True,
                retry_after=retry_after,
            )
        tokens.remaining -= 1

    async def _lease(self, caller: UUID, tokens: _Tokens, limit: int) -> int:
        if time.monotonic() < tokens.retry_at:
            raise DatabaseUnavailable("the database did not answer a moment ago")
        try:
            granted = await self.repository.lease_requests(
                caller, tokens.window_start, lease_size(limit), limit
            )
        except DatabaseUnavailable:
            tokens.retry_at = time.monotonic() + DATABASE_RETRY_AFTER
            if tokens.granted_alone:
                raise
            tokens.granted_alone = True
            log.warning("the database did not answer; granting a caller one lease of requests alone")
            return lease_size(limit)
        tokens.exhausted = granted == 0
        return granted

    async def prune(self) -> None:
        """Forgets past windows: in memory at once, in the database once a window."""
        window = window_of(self.clock())
        self._tokens = {c: t for c, t in self._tokens.items() if t.window_start >= window}
        if self._pruned_window != window:
            # Keep the previous window: an instance whose clock lags a little may still lease from it.
            await self.repository.delete_windows_before(window - WINDOW)
            self._pruned_window = window


@dataclass(slots=True)
class _Slots:
    """This instance's stream slots for one organization."""

    period_start: datetime
    leased: int = 0  # what this instance's lease row says it holds
    in_use: int = 0
    fewest_spare: int = 0  # the fewest unused leased slots since period_start: that many sat idle
    retry_at: float = 0.0  # monotonic: no lease is tried before this (the database did not answer)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one lease or return at a time

    @property
    def spare(self) -> int:
        return self.leased - self.in_use


class StreamSlots:
    def __init__(
        self,
        db: Database,
        repository: StreamSlotRepository,
        *,
        default_cap: int,
        lease_timeout: float,
        idle_after: float,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.repository = repository
        self.default_cap = default_cap
        self.lease_timeout = timedelta(seconds=lease_timeout)
        self.idle_after = timedelta(seconds=idle_after)
        self.clock = clock
        self.instance_id = uuid.uuid4()
        # One small entry per organization that streamed here; never dropped, so that a stream
        # always releases into the entry it took from.
        self._slots: dict[UUID, _Slots] = {}
        self._upkeep = LeaseUpkeep(
            "stream slot leases",
            idle_after=self.idle_after,
            lease_timeout=self.lease_timeout,
            maintain=self.maintain,
            release=lambda: self.repository.release_instance(self.instance_id),
        )

    @asynccontextmanager
    async def acquire(self, organization_id: UUID) -> AsyncIterator[None]:
        """Holds one of the organization's stream slots for the block (released on any exit,
        cancellation included), or raises TOO_MANY_STREAMS."""
        slots = self._slots.get(organization_id)
        if slots is None:
            slots = self._slots[organization_id] = _Slots(self.clock())
        while slots.spare == 0:
            # Shielded: a caller cancelled mid-lease must not leave the row and memory disagreeing.
            await asyncio.shield(self._lease_more(organization_id, slots))
        slots.in_use += 1
        slots.fewest_spare = min(slots.fewest_spare, slots.spare)
        try:
            yield
        finally:
            slots.in_use -= 1  # no await: runs even in a task being cancelled

    async def _lease_more(self, organization_id: UUID, slots: _Slots) -> None:
        async with slots.lock:
            if slots.spare > 0:
                return  # another caller's lease arrived meanwhile
            if time.monotonic() < slots.retry_at:
                raise DatabaseUnavailable("the database did not answer a moment ago")
            now = self.clock()
            try:
                async with self.db.transaction():
                    cap = await self.repository.lock_organization(organization_id, self.default_cap)
                    if cap is None:
                        raise GatewayError(GatewayErrorCode.NOT_FOUND, "organization not found")
                    elsewhere = await self.repository.held_elsewhere(
                        organization_id, self.instance_id, now - self.lease_timeout
                    )
                    grant = max(0, min(lease_size(cap), cap - elsewhere - slots.leased))
                    if grant:
                        await self.repository.record_lease(
                            organization_id, self.instance_id, slots.leased + grant, now
                        )
            except DatabaseUnavailable:
                slots.retry_at = time.monotonic() + DATABASE_RETRY_AFTER
                raise
            if not grant:
                raise GatewayError(
                    GatewayErrorCode.TOO_MANY_STREAMS,
                    f"the organization already has its maximum of {cap} concurrent streams open",
                    retryable=True,
                )
            slots.leased += grant

    async def maintain(self) -> None:
        """Heartbeats this instance's leases, and hands back slots that sat unused a whole idle period."""
        now = self.clock()
        if any(s.leased for s in self._slots.values()):
            forget_before = now - self.lease_timeout * _FORGET_AFTER_TIMEOUTS
            await self.repository.heartbeat(self.instance_id, now, forget_before)
        for organization_id, slots in list(self._slots.items()):
            if now - slots.period_start < self.idle_after:
                continue
            async with slots.lock:
                idle = slots.fewest_spare  # never more than `spare`: a minimum that includes now
                if idle:
                    # Shrink in memory first: streams starting during the write must lease anew.
                    slots.leased -= idle
                    slots.fewest_spare -= idle
                    await self.repository.shrink_lease(organization_id, self.instance_id, slots.leased, now)
                slots.fewest_spare = slots.spare
                slots.period_start = now

    async def start(self) -> None:
        self._upkeep.start()

    async def stop(self) -> None:
        """Stops heartbeating and hands every lease back (the instance is going away)."""
        await self._upkeep.stop()
