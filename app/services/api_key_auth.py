"""Authenticating API keys without a database round trip or write per request.

Keys are cached by prefix for `ttl` seconds and dropped at once when a key changes (revocation
publishes a change that every instance hears). Last use is buffered in memory and written in one
batched statement every few seconds, and on shutdown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from app.domain.auth import ApiKey, Principal, secret_matches, split_api_key
from app.domain.errors import Unauthenticated
from app.repositories.api_keys import ApiKeyRepository

_MAX_CACHED_KEYS = 10_000


class ApiKeyAuthenticator:
    def __init__(
        self,
        repository: ApiKeyRepository,
        *,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repository = repository
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, tuple[ApiKey | None, float]] = {}
        self._last_use: dict[UUID, datetime] = {}

    async def authenticate(self, raw_key: str) -> Principal:
        parts = split_api_key(raw_key)
        if parts is None:
            raise Unauthenticated()
        prefix, secret = parts
        key = await self._lookup(prefix)
        now = datetime.now(UTC)
        if key is None or not secret_matches(secret, key.secret_hash) or not key.is_usable(now):
            raise Unauthenticated()
        self._last_use[key.id] = now
        return key.principal()

    async def _lookup(self, prefix: str) -> ApiKey | None:
        cached = self._cache.get(prefix)
        if cached is not None and self.clock() - cached[1] < self.ttl:
            return cached[0]
        key = await self.repository.get_by_prefix(prefix)
        if len(self._cache) >= _MAX_CACHED_KEYS:
            # Unknown prefixes are cached too (no database round trip per bad key), so a flood of
            # random keys must not grow the cache without bound: drop the oldest entry.
            self._cache.pop(next(iter(self._cache)))
        self._cache.pop(prefix, None)
        self._cache[prefix] = (key, self.clock())
        return key

    def invalidate(self, prefix: str | None) -> None:
        if prefix is None:
            self._cache.clear()
        else:
            self._cache.pop(prefix, None)

    async def flush_last_use(self) -> None:
        uses, self._last_use = self._last_use, {}
        try:
            await self.repository.record_last_use(uses)
        except Exception:
            # Keep the newest times for the next flush rather than lose them.
            for key_id, used_at in uses.items():
                self._last_use.setdefault(key_id, used_at)
            raise
