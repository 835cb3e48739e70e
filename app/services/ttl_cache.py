"""An in-memory cache for values that change rarely and announce their changes.

Entries live `ttl` seconds (a safety net); `clear()` is what keeps them fresh, called when a change
is announced. A load that raced with a clear is returned but not stored, so a stale value cannot
outlive the change that made it stale. Concurrent misses of one key share one load.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar
from uuid import UUID

T = TypeVar("T")


class TtlCache(Generic[T]):
    def __init__(
        self,
        load: Callable[[UUID], Awaitable[T | None]],
        *,
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[UUID, tuple[T | None, float]] = {}
        self._loading: dict[UUID, asyncio.Future[T | None]] = {}
        self._generation = 0

    async def get(self, key: UUID) -> T | None:
        entry = self._entries.get(key)
        if entry is not None and self._clock() - entry[1] < self._ttl:
            return entry[0]
        # One load per key however many callers miss at once (a burst of calls on a cold cache
        # would otherwise take every database connection).
        loading = self._loading.get(key)
        if loading is None:
            loading = self._loading[key] = asyncio.ensure_future(self._load_and_keep(key, self._generation))
            loading.add_done_callback(lambda _: self._loading.pop(key, None))
        return await asyncio.shield(loading)

    async def _load_and_keep(self, key: UUID, generation: int) -> T | None:
        value = await self._load(key)
        if generation == self._generation:
            self._entries[key] = (value, self._clock())
        return value

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()
