"""An in-memory cache for values that change rarely and announce their changes.

Entries are fresh for `ttl` seconds (a safety net); `clear()` and `discard()` are what keep them
right, called when a change is announced. A load that raced with a change is returned but not
stored, so a stale value cannot outlive the change that made it stale. Concurrent misses of one key
share one load.

An entry past its `ttl` is still served for up to `stale_for` seconds more while it is reloaded in
the background, so that a database that stops answering does not hold the calls it would answer
(a failed reload is tried again at most once per `REFRESH_BACKOFF` seconds). Only a change that
was announced drops an entry at once; past `ttl + stale_for` the caller waits for the load, and its
failure is the caller's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

REFRESH_BACKOFF = 1.0


@dataclass(slots=True)
class _Entry(Generic[T]):
    value: T | None
    loaded_at: float
    refresh_after: float  # no background reload before this (pushed back when one fails)


class TtlCache(Generic[K, T]):
    def __init__(
        self,
        load: Callable[[K], Awaitable[T | None]],
        *,
        ttl: float = 300.0,
        stale_for: float = 0.0,
        max_entries: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._ttl = ttl
        self._stale_for = stale_for
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[K, _Entry[T]] = {}
        self._loading: dict[K, asyncio.Future[T | None]] = {}
        self._generation = 0

    async def get(self, key: K) -> T | None:
        entry = self._entries.get(key)
        if entry is not None:
            age = self._clock() - entry.loaded_at
            if age < self._ttl:
                return entry.value
            if age < self._ttl + self._stale_for:
                if self._clock() >= entry.refresh_after:
                    self._refresh_in_background(key, entry)
                return entry.value
        # Shielded: a cancelled caller must not cancel the load other callers wait for.
        return await asyncio.shield(self._load_once(key))

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()

    def discard(self, key: K) -> None:
        self._generation += 1
        self._entries.pop(key, None)

    def _load_once(self, key: K) -> asyncio.Future[T | None]:
        # One load per key however many callers miss at once (a burst of calls on a cold cache
        # would otherwise take every database connection).
        loading = self._loading.get(key)
        if loading is None:
            loading = self._loading[key] = asyncio.ensure_future(self._load_and_keep(key, self._generation))
            loading.add_done_callback(lambda _: self._loading.pop(key, None))
        return loading

    def _refresh_in_background(self, key: K, entry: _Entry[T]) -> None:
        if key in self._loading:
            return

        def after(loading: asyncio.Future[T | None]) -> None:
            if loading.cancelled() or loading.exception() is not None:  # retrieved: no warning
                entry.refresh_after = self._clock() + REFRESH_BACKOFF

        self._load_once(key).add_done_callback(after)

    async def _load_and_keep(self, key: K, generation: int) -> T | None:
        value = await self._load(key)
        if generation == self._generation:
            self._entries.pop(key, None)  # re-inserted last: the oldest entries come first
            if self._max_entries is not None and len(self._entries) >= self._max_entries:
                self._entries.pop(next(iter(self._entries)))
            now = self._clock()
            self._entries[key] = _Entry(value, now, now)
        return value
