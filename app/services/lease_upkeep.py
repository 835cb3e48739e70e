"""The background work of a holder of PostgreSQL-backed leases (stream slots, quota credits): its
`maintain` runs periodically while the instance lives (heartbeats, renewals, idle hand-backs), and
its leases are handed back when it stops; if the hand-back fails they lapse after the lease
timeout, as a crashed instance's do."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from app.db import DatabaseUnavailable

log = logging.getLogger(__name__)


class LeaseUpkeep:
    def __init__(
        self,
        what: str,
        *,
        idle_after: timedelta,
        lease_timeout: timedelta,
        maintain: Callable[[], Awaitable[object]],
        release: Callable[[], Awaitable[object]],
    ) -> None:
        self.what = what
        # Three times per lease timeout at least; idle periods end within half a period.
        self.interval = min(idle_after / 2, lease_timeout / 3).total_seconds()
        self.maintain = maintain
        self.release = release
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._periodically(), name=f"{self.what} upkeep")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self.release()
        except Exception:
            log.exception("could not hand back %s; they lapse after the lease timeout", self.what)

    async def _periodically(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.maintain()
            except DatabaseUnavailable:
                log.warning("%s upkeep failed: the database did not answer; will retry", self.what)
            except Exception:
                log.exception("%s upkeep failed; will retry", self.what)
