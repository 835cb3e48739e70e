"""Rate limits and stream slots while PostgreSQL does not answer: what was leased is spent, a caller
gets one lease's worth of requests per window without the database, streams that need a new lease
are refused, and callers queued behind a lease that timed out are refused at once, not in turn."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest

from app.db import DatabaseUnavailable
from app.domain.gateway import GatewayError
from app.services import limits
from app.services.limits import RateLimiter, lease_size
from tests.unit.test_limits import FakeClock, MemoryLeases, MemoryWindows, key_principal, stream_slots

DATABASE_WAIT = 0.2  # how long a lease waits for the database before DatabaseUnavailable


class FlakyWindows(MemoryWindows):
    """rate_limit_windows behind a database that can stop answering."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.attempts = 0

    async def lease_requests(self, caller: UUID, window_start: datetime, wanted: int, limit: int) -> int:
        self.attempts += 1
        if self.down:
            await asyncio.sleep(DATABASE_WAIT)
            raise DatabaseUnavailable("no answer")
        return await super().lease_requests(caller, window_start, wanted, limit)


async def spend(limiter: RateLimiter, principal: Any, times: int) -> None:
    for _ in range(times):
        await limiter.acquire(principal)


async def test_a_caller_gets_one_lease_per_window_without_the_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "DATABASE_RETRY_AFTER", 0.0)
    windows, clock = FlakyWindows(), FakeClock()
    limiter = RateLimiter(windows, default_per_minute=100, clock=clock)  # type: ignore[arg-type]
    principal = key_principal()
    await spend(limiter, principal, 5)  # leased from the database: 10 tokens
    windows.down = True
    await spend(limiter, principal, 5 + lease_size(100))  # the rest of the lease, then one granted alone
    with pytest.raises(DatabaseUnavailable):
        await limiter.acquire(principal)  # one lease alone per window, no more

    clock.advance(60)  # a new window: one more lease alone
    await spend(limiter, principal, lease_size(100))
    with pytest.raises(DatabaseUnavailable):
        await limiter.acquire(principal)

    windows.down = False  # back: leases come from the database again, and the limit holds there
    clock.advance(60)
    await spend(limiter, principal, 100)
    with pytest.raises(GatewayError):
        await limiter.acquire(principal)


async def test_callers_queued_behind_a_lease_that_timed_out_are_refused_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "DATABASE_RETRY_AFTER", 0.5)
    windows = FlakyWindows()
    limiter = RateLimiter(windows, default_per_minute=100, clock=FakeClock())  # type: ignore[arg-type]
    principal = key_principal()
    windows.down = True
    await spend(limiter, principal, lease_size(100))  # the one lease granted alone
    with pytest.raises(DatabaseUnavailable):
        await limiter.acquire(principal)  # right after a lease timed out: refused without asking
    assert windows.attempts == 1
    await asyncio.sleep(limits.DATABASE_RETRY_AFTER)
    attempts = windows.attempts

    started = time.monotonic()
    results = await asyncio.gather(*(limiter.acquire(principal) for _ in range(10)), return_exceptions=True)
    assert all(isinstance(r, DatabaseUnavailable) for r in results)
    assert time.monotonic() - started < 2 * DATABASE_WAIT  # one wait, not ten in turn
    assert windows.attempts == attempts + 1
    with pytest.raises(DatabaseUnavailable):
        await limiter.acquire(principal)  # and for a moment after, without asking again
    assert windows.attempts == attempts + 1


class FlakyLeases(MemoryLeases):
    def __init__(self, caps: dict[UUID, int | None]) -> None:
        super().__init__(caps)
        self.down = False
        self.attempts = 0

    async def lock_organization(self, organization_id: UUID, default_cap: int) -> int | None:
        self.attempts += 1
        if self.down:
            await asyncio.sleep(DATABASE_WAIT)
            raise DatabaseUnavailable("no answer")
        return await super().lock_organization(organization_id, default_cap)


async def test_streams_use_leased_slots_and_fail_fast_when_they_need_a_lease(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "DATABASE_RETRY_AFTER", 0.1)
    org = uuid.uuid4()
    leases = FlakyLeases({org: 20})  # leased two at a time
    slots = stream_slots(leases, FakeClock())
    async with slots.acquire(org):
        leases.down = True
        async with slots.acquire(org):  # the second slot of the lease: no database needed
            started = time.monotonic()
            results = await asyncio.gather(*(enter(slots, org) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, DatabaseUnavailable) for r in results)
    assert time.monotonic() - started < 2 * DATABASE_WAIT
    assert leases.attempts == 2  # the first lease, and one that timed out for all five

    leases.down = False
    await asyncio.sleep(limits.DATABASE_RETRY_AFTER)
    async with slots.acquire(org), slots.acquire(org), slots.acquire(org):
        pass


async def enter(slots: limits.StreamSlots, org: UUID) -> None:
    async with slots.acquire(org):
        pass
