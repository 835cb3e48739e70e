"""Lease arithmetic of the rate limiter and the stream-slot cap, with a fake clock and in-memory
repositories that behave like the SQL (what is granted, what counts)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from app.domain.auth import OPERATOR, Principal, PrincipalKind
from app.domain.gateway import GatewayError, GatewayErrorCode
from app.services.limits import (
    RateLimiter,
    StreamSlots,
    caller_id,
    lease_size,
    seconds_to_next_window,
)

START = datetime(2030, 1, 1, 12, 0, 15, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class MemoryWindows:
    """rate_limit_windows in memory, granting exactly as the SQL does."""

    def __init__(self) -> None:
        self.used: dict[tuple[UUID, datetime], int] = {}
        self.leases: list[tuple[int, int]] = []  # (wanted, granted) per call
        self.deleted_before: list[datetime] = []

    async def lease_requests(self, caller: UUID, window_start: datetime, wanted: int, limit: int) -> int:
        await asyncio.sleep(0)  # a real round trip lets other callers run meanwhile
        used = self.used.get((caller, window_start), 0)
        granted = max(0, min(wanted, limit - used))
        self.used[(caller, window_start)] = used + granted
        self.leases.append((wanted, granted))
        return granted

    async def delete_windows_before(self, window_start: datetime) -> None:
        self.deleted_before.append(window_start)
        self.used = {k: v for k, v in self.used.items() if k[1] >= window_start}


def key_principal(limit: int | None = None) -> Principal:
    return Principal(
        kind=PrincipalKind.API_KEY,
        permissions=frozenset(),
        organization_id=uuid.uuid4(),
        api_key_id=uuid.uuid4(),
        rate_limit_per_minute=limit,
    )


async def spend_until_refused(limiter: RateLimiter, principal: Principal) -> tuple[int, GatewayError]:
    allowed = 0
    while True:
        try:
            await limiter.acquire(principal)
        except GatewayError as error:
            return allowed, error
        allowed += 1


def test_lease_size_is_a_tenth_of_the_limit_and_at_least_one() -> None:
    assert [lease_size(n) for n in (1, 9, 10, 20, 25, 600)] == [1, 1, 1, 2, 2, 60]


@pytest.mark.parametrize(
    ("second", "expected"), [(0.0, 60.0), (15.0, 45.0), (15.2, 45.0), (59.9, 1.0), (59.9999, 1.0)]
)
def test_retry_after_is_the_whole_seconds_to_the_next_window(second: float, expected: float) -> None:
    now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC) + timedelta(seconds=second)
    assert seconds_to_next_window(now) == expected


async def test_a_key_gets_exactly_its_limit_leased_in_batches() -> None:
    windows, clock = MemoryWindows(), FakeClock()
    limiter = RateLimiter(windows, default_per_minute=600, clock=clock)  # type: ignore[arg-type]
    principal = key_principal(limit=25)
    allowed, error = await spend_until_refused(limiter, principal)
    assert allowed == 25
    # Twelve leases of 2, then the one token left, then a refusal from the database.
    assert windows.leases == [(2, 2)] * 12 + [(2, 1), (2, 0)]
    assert error.code is GatewayErrorCode.RATE_LIMITED
    assert error.retry_after == 45.0
    assert error.retryable
    # Once the window is known to be spent, refusals do not go back to the database.
    with pytest.raises(GatewayError):
        await limiter.acquire(principal)
    assert len(windows.leases) == 14


async def test_the_next_window_allows_again_and_leftover_tokens_are_dropped() -> None:
    windows, clock = MemoryWindows(), FakeClock()
    limiter = RateLimiter(windows, default_per_minute=600, clock=clock)  # type: ignore[arg-type]
    principal = key_principal(limit=20)
    await limiter.acquire(principal)  # leases 2, spends 1
    clock.advance(45)  # 12:01:00, a new window
    allowed, error = await spend_until_refused(limiter, principal)
    assert allowed == 20
    assert error.retry_after == 60.0
    assert sorted(windows.used.values()) == [2, 20]  # the unspent token stayed in the old window


async def test_the_default_applies_when_the_key_has_no_limit() -> None:
    windows = MemoryWindows()
    limiter = RateLimiter(windows, default_per_minute=30, clock=FakeClock())  # type: ignore[arg-type]
    allowed, _ = await spend_until_refused(limiter, key_principal())
    assert allowed == 30
    assert windows.leases[0] == (3, 3)


async def test_two_instances_never_exceed_the_limit_and_unspent_leases_only_make_it_stricter() -> None:
    windows, clock = MemoryWindows(), FakeClock()
    first = RateLimiter(windows, default_per_minute=600, clock=clock)  # type: ignore[arg-type]
    second = RateLimiter(windows, default_per_minute=600, clock=clock)  # type: ignore[arg-type]
    principal = key_principal(limit=20)
    await first.acquire(principal)  # leases 2, keeps 1 unspent
    allowed, _ = await spend_until_refused(second, principal)
    assert allowed == 18
    allowed, _ = await spend_until_refused(first, principal)
    assert allowed == 1
    assert sum(windows.used.values()) == 20


async def test_concurrent_callers_on_one_instance_share_one_lease() -> None:
    windows = MemoryWindows()
    limiter = RateLimiter(windows, default_per_minute=600, clock=FakeClock())  # type: ignore[arg-type]
    principal = key_principal(limit=50)
    await asyncio.gather(*(limiter.acquire(principal) for _ in range(5)))
    assert windows.leases == [(5, 5)]


def test_callers_are_keys_or_jwt_subjects_per_organization() -> None:
    key = key_principal()
    assert caller_id(key) == key.api_key_id
    organization = uuid.uuid4()

    def jwt(subject: str, org: UUID = organization) -> Principal:
        return Principal(
            kind=PrincipalKind.JWT, permissions=frozenset(), organization_id=org, label=f"jwt:{subject}"
        )

    assert caller_id(jwt("member-1")) == caller_id(jwt("member-1"))
    assert caller_id(jwt("member-1")) != caller_id(jwt("member-2"))
    assert caller_id(jwt("member-1")) != caller_id(jwt("member-1", uuid.uuid4()))
    assert caller_id(OPERATOR) is None


async def test_prune_forgets_past_windows_once_per_window() -> None:
    windows, clock = MemoryWindows(), FakeClock()
    limiter = RateLimiter(windows, default_per_minute=600, clock=clock)  # type: ignore[arg-type]
    await limiter.acquire(key_principal())
    await limiter.prune()
    await limiter.prune()
    clock.advance(60)
    await limiter.prune()
    assert windows.deleted_before == [
        datetime(2030, 1, 1, 11, 59, tzinfo=UTC),
        datetime(2030, 1, 1, 12, 0, tzinfo=UTC),
    ]
    assert limiter._tokens == {}


# ---- stream slots ------------------------------------------------------------------------------


class NoDatabase:
    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield None


class MemoryLeases:
    """stream_slot_leases (and organizations' caps) in memory, counting as the SQL does."""

    def __init__(self, caps: dict[UUID, int | None]) -> None:
        self.caps = caps
        self.rows: dict[tuple[UUID, UUID], tuple[int, datetime]] = {}  # (org, instance) -> (slots, beat)
        self.writes = 0

    async def lock_organization(self, organization_id: UUID, default_cap: int) -> int | None:
        if organization_id not in self.caps:
            return None
        return self.caps[organization_id] or default_cap

    async def held_elsewhere(self, org: UUID, instance: UUID, alive_since: datetime) -> int:
        return sum(
            slots
            for (o, i), (slots, beat) in self.rows.items()
            if o == org and i != instance and beat >= alive_since
        )

    async def record_lease(self, org: UUID, instance: UUID, slots: int, now: datetime) -> None:
        self.writes += 1
        self.rows[(org, instance)] = (slots, now)

    async def shrink_lease(self, org: UUID, instance: UUID, slots: int, now: datetime) -> None:
        self.writes += 1
        if slots:
            self.rows[(org, instance)] = (slots, now)
        else:
            del self.rows[(org, instance)]

    async def heartbeat(self, instance: UUID, now: datetime, forget_before: datetime) -> None:
        self.rows = {
            (o, i): (slots, now if i == instance else beat)
            for (o, i), (slots, beat) in self.rows.items()
            if i == instance or beat >= forget_before
        }

    async def release_instance(self, instance: UUID) -> None:
        self.rows = {k: v for k, v in self.rows.items() if k[1] != instance}

    def held_by(self, slots: StreamSlots, org: UUID) -> int:
        return self.rows.get((org, slots.instance_id), (0, START))[0]


def stream_slots(leases: MemoryLeases, clock: FakeClock) -> StreamSlots:
    return StreamSlots(
        NoDatabase(),  # type: ignore[arg-type]
        leases,  # type: ignore[arg-type]
        default_cap=50,
        lease_timeout=30,
        idle_after=5,
        clock=clock,
    )


async def test_slots_are_leased_a_tenth_of_the_cap_at_a_time() -> None:
    org = uuid.uuid4()
    leases, clock = MemoryLeases({org: None}), FakeClock()
    slots = stream_slots(leases, clock)
    async with slots.acquire(org), slots.acquire(org), slots.acquire(org), slots.acquire(org):
        assert leases.held_by(slots, org) == 5  # the default cap of 50, one lease of 5
        assert leases.writes == 1


async def test_the_cap_holds_across_instances_and_released_slots_are_reused() -> None:
    org = uuid.uuid4()
    leases, clock = MemoryLeases({org: 3}), FakeClock()
    first, second = stream_slots(leases, clock), stream_slots(leases, clock)
    async with first.acquire(org), first.acquire(org):
        async with second.acquire(org):
            with pytest.raises(GatewayError) as refused:
                async with first.acquire(org):
                    pass
            assert refused.value.code is GatewayErrorCode.TOO_MANY_STREAMS
        # Released on the second instance: reusable there at once, elsewhere once handed back.
        async with second.acquire(org):
            pass
        with pytest.raises(GatewayError):
            async with first.acquire(org):
                pass
        for _ in range(2):  # used in the first idle period, unused for the whole second one
            clock.advance(5)
            await second.maintain()
        assert leases.held_by(second, org) == 0
        async with first.acquire(org):
            assert leases.held_by(first, org) == 3


async def test_a_cancelled_stream_releases_its_slot() -> None:
    org = uuid.uuid4()
    leases = MemoryLeases({org: 1})
    slots = stream_slots(leases, FakeClock())
    holding = asyncio.Event()

    async def stream() -> None:
        async with slots.acquire(org):
            holding.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(stream())
    await holding.wait()
    with pytest.raises(GatewayError):
        async with slots.acquire(org):
            pass
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with slots.acquire(org):
        pass


async def test_only_slots_idle_for_a_whole_period_are_handed_back() -> None:
    org = uuid.uuid4()
    leases, clock = MemoryLeases({org: 100}), FakeClock()
    slots = stream_slots(leases, clock)
    async with slots.acquire(org):  # leases 10, uses 1
        clock.advance(5)
        await slots.maintain()
        assert leases.held_by(slots, org) == 10  # leased during this period: not idle all of it
        clock.advance(3)
        async with slots.acquire(org), slots.acquire(org):  # the fewest spare this period: 7
            pass
        clock.advance(2)
        await slots.maintain()
        assert leases.held_by(slots, org) == 3  # 7 handed back; 1 in use and 2 used this period
        clock.advance(5)
        await slots.maintain()
        assert leases.held_by(slots, org) == 1  # the one in use
    for _ in range(2):  # in use when this period began; unused for the whole next one
        clock.advance(5)
        await slots.maintain()
    assert (org, slots.instance_id) not in leases.rows


async def test_a_dead_instances_leases_stop_counting_after_the_timeout() -> None:
    org = uuid.uuid4()
    leases, clock = MemoryLeases({org: 2}), FakeClock()
    alive, dead = stream_slots(leases, clock), stream_slots(leases, clock)
    async with dead.acquire(org), dead.acquire(org):
        clock.advance(20)
        await dead.maintain()  # a heartbeat at +20 s keeps its leases counting
        clock.advance(20)
        with pytest.raises(GatewayError):
            async with alive.acquire(org):
                pass
        clock.advance(11)  # no heartbeat for 31 s: the instance is taken for dead
        async with alive.acquire(org):
            pass


async def test_an_unknown_organization_is_not_found() -> None:
    slots = stream_slots(MemoryLeases({}), FakeClock())
    with pytest.raises(GatewayError) as refused:
        async with slots.acquire(uuid.uuid4()):
            pass
    assert refused.value.code is GatewayErrorCode.NOT_FOUND
