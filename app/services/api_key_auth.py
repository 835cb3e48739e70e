"""Authenticating API keys without a database round trip or write per request.

Keys are cached by prefix for `ttl` seconds and dropped at once when a key changes (revocation
publishes a change that every instance hears); while the database does not answer, a cached key is
served up to `stale_for` seconds longer (see TtlCache). Last use is buffered in memory and written
in one batched statement every few seconds, and on shutdown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from app.domain.auth import ApiKey, Principal, secret_matches, split_api_key
from app.domain.errors import Unauthenticated
from app.repositories.api_keys import ApiKeyRepository
from app.services.ttl_cache import TtlCache

_MAX_CACHED_KEYS = 10_000


class ApiKeyAuthenticator:
    def __init__(
        self,
        repository: ApiKeyRepository,
        *,
        ttl: float = 60.0,
        stale_for: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repository = repository
        # Unknown prefixes are cached too (no database round trip per bad key), so a flood of
        # random keys must not grow the cache without bound: the oldest entries make room.
        self._keys: TtlCache[str, ApiKey] = TtlCache(
            repository.get_by_prefix, ttl=ttl, stale_for=stale_for, max_entries=_MAX_CACHED_KEYS, clock=clock
        )
        self._last_use: dict[UUID, datetime] = {}

    async def authenticate(self, raw_key: str) -> Principal:
        parts = split_api_key(raw_key)
        if parts is None:
            raise Unauthenticated()
        prefix, secret = parts
        key = await self._keys.get(prefix)
        now = datetime.now(UTC)
        if key is None or not secret_matches(secret, key.secret_hash) or not key.is_usable(now):
            raise Unauthenticated()
        self._last_use[key.id] = now
        return key.principal()

    def invalidate(self, prefix: str | None) -> None:
        if prefix is None:
            self._keys.clear()
        else:
            self._keys.discard(prefix)

    async def flush_last_use(self) -> None:
        uses, self._last_use = self._last_use, {}
        try:
            await self.repository.record_last_use(uses)
        except Exception:
            # Keep the newest times for the next flush rather than lose them.
            for key_id, used_at in uses.items():
                self._last_use.setdefault(key_id, used_at)
            raise
