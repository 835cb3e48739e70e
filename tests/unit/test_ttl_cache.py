"""The in-memory cache of the gateway's hot path."""

import asyncio
import uuid

import pytest

from app.services.ttl_cache import TtlCache


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
