"""The periodic alert scan: events caused by time passing rather than by a write. Every instance
runs it (from the relay's loop); each event's key makes it once-only, however many instances see it
and however often: a model in use is announced 30, 7 and 1 days before its end of life (only the
latest notice that is due, when the scan first sees it late), an API key 7 days before it expires."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from app.domain.alert_events import (
    END_OF_LIFE_NOTICE_DAYS,
    KEY_EXPIRY_NOTICE_DAYS,
    api_key_expiring,
    end_of_life_soon,
    notice_due,
)
from app.domain.notifications import NewNotification
from app.repositories.alert_scans import AlertScanRepository
from app.repositories.outbox import OutboxRepository

log = logging.getLogger(__name__)

_DAY = timedelta(days=1)


class AlertScan:
    def __init__(
        self,
        scans: AlertScanRepository,
        outbox: OutboxRepository,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.scans = scans
        self.outbox = outbox
        self.clock = clock

    async def run(self) -> int:
        """Writes the events that are due; returns how many were new."""
        now = self.clock()
        events: list[NewNotification] = []
        longest = max(END_OF_LIFE_NOTICE_DAYS)
        for ending in await self.scans.ending_models(now, longest * _DAY, longest):
            days = notice_due((ending.end_of_life_at - now) / _DAY, END_OF_LIFE_NOTICE_DAYS)
            if days is not None:
                events.append(
                    end_of_life_soon(
                        organization_id=ending.organization_id,
                        model_id=ending.model_id,
                        model_name=ending.model_name,
                        end_of_life_at=ending.end_of_life_at,
                        notice_days=days,
                        replacement_name=ending.replacement_name,
                        deprecation_notice=ending.deprecation_notice,
                    )
                )
        for key in await self.scans.expiring_keys(now, KEY_EXPIRY_NOTICE_DAYS * _DAY):
            events.append(
                api_key_expiring(
                    organization_id=key.organization_id,
                    key_id=key.key_id,
                    key_name=key.name,
                    prefix=key.prefix,
                    expires_at=key.expires_at,
                )
            )
        written = 0
        for event in events:
            if await self.outbox.insert(event) is not None:
                written += 1
        if written:
            log.info("the alert scan wrote events", extra={"events": written})
        return written
