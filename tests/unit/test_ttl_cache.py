"""The in-memory cache of the gateway's hot path."""

import asyncio
import uuid

import pytest

from app.services.ttl_cache import REFRESH_BACKOFF, TtlCache


async def test_concurrent_misses_share_one_load() -> None:
    loads = 0
    release = asyncio.Event()

    async def load(key: uuid.UUID) -> str:
        nonlocal loads
        loads += 1
        await release.wait()
        return str(key)

    cache: TtlCache[uuid.UUID, str] = TtlCache(load)
    key = uuid.uuid4()
    waiters = [asyncio.create_task(cache.get(key)) for _ in range(100)]
    await asyncio.sleep(0)
    release.set()
    assert set(await asyncio.gather(*waiters)) == {str(key)}
    assert loads == 1
    assert await cache.get(key) == str(key)
    assert loads == 1


async def test_a_load_that_raced_with_a_change_is_not_kept() -> None:
    values = iter(["old", "new"])
    release = asyncio.Event()

    async def load(_key: uuid.UUID) -> str:
        await release.wait()
        return next(values)

    cache: TtlCache[uuid.UUID, str] = TtlCache(load)
    key = uuid.uuid4()
    first = asyncio.create_task(cache.get(key))
    await asyncio.sleep(0)
    cache.clear()  # a change is announced while the load runs
    release.set()
    assert await first == "old"
    assert await cache.get(key) == "new"


async def test_a_failed_load_is_not_cached() -> None:
    calls = 0

    async def load(_key: uuid.UUID) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("database gone")
        return "fine"

    cache: TtlCache[uuid.UUID, str] = TtlCache(load)
    key = uuid.uuid4()
    with pytest.raises(OSError, match="database gone"):
        await cache.get(key)
    assert await cache.get(key) == "fine"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Source:
    """A loader whose answers (or failures) the test sets."""

    def __init__(self) -> None:
        self.value = "v1"
        self.failing = False
        self.loads = 0

    async def load(self, _key: uuid.UUID) -> str:
        self.loads += 1
        await asyncio.sleep(0)
        if self.failing:
            raise OSError("database gone")
        return self.value


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_an_expired_entry_is_served_at_once_while_it_reloads() -> None:
    source, clock = Source(), Clock()
    cache: TtlCache[uuid.UUID, str] = TtlCache(source.load, ttl=60, stale_for=300, clock=clock)
    key = uuid.uuid4()
    assert await cache.get(key) == "v1"
    source.value = "v2"
    clock.now += 61
    assert await cache.get(key) == "v1"  # served as it was; the reload runs in the background
    await settle()
    assert await cache.get(key) == "v2"
    assert source.loads == 2


async def test_a_failing_reload_serves_the_last_value_for_a_bounded_time() -> None:
    source, clock = Source(), Clock()
    cache: TtlCache[uuid.UUID, str] = TtlCache(source.load, ttl=60, stale_for=300, clock=clock)
    key = uuid.uuid4()
    assert await cache.get(key) == "v1"
    source.failing = True
    clock.now += 61
    for _ in range(3):
        assert await cache.get(key) == "v1"
        await settle()
    assert source.loads == 2  # one failed reload; the next waits for the backoff
    clock.now += REFRESH_BACKOFF
    assert await cache.get(key) == "v1"
    await settle()
    assert source.loads == 3

    clock.now = 1000 + 60 + 300  # past ttl + stale_for: the caller waits for the load, and fails
    with pytest.raises(OSError, match="database gone"):
        await cache.get(key)
    source.failing = False
    assert await cache.get(key) == "v1"


async def test_an_announced_change_is_never_served_stale() -> None:
    source, clock = Source(), Clock()
    cache: TtlCache[uuid.UUID, str] = TtlCache(source.load, ttl=60, stale_for=300, clock=clock)
    first, second = uuid.uuid4(), uuid.uuid4()
    assert await cache.get(first) == await cache.get(second) == "v1"
    source.failing = True
    cache.discard(first)
    with pytest.raises(OSError, match="database gone"):
        await cache.get(first)
    assert await cache.get(second) == "v1"  # still fresh
    cache.clear()
    with pytest.raises(OSError, match="database gone"):
        await cache.get(second)


async def test_the_oldest_entries_make_room_beyond_the_size_limit() -> None:
    source = Source()
    cache: TtlCache[uuid.UUID, str] = TtlCache(source.load, max_entries=2)
    keys = [uuid.uuid4() for _ in range(3)]
    for key in keys:
        await cache.get(key)
    assert source.loads == 3
    await cache.get(keys[2])
    await cache.get(keys[1])
    assert source.loads == 3
    await cache.get(keys[0])  # made room for the third
    assert source.loads == 4
