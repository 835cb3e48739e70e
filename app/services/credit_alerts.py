"""Credit alerts: when written usage takes an organization past 80 % or 100 % of its monthly
credit limit, the event is written in the same transaction as the usage (once a month each; a
write that crosses both writes both)."""

from __future__ import annotations

from app.domain.alert_events import credits_threshold, crossed_thresholds
from app.repositories.outbox import OutboxRepository
from app.repositories.usage import MonthTotal


class CreditAlerts:
    def __init__(self, outbox: OutboxRepository) -> None:
        self.outbox = outbox

    async def totals_written(self, totals: list[MonthTotal]) -> None:
        for total in totals:
            for threshold in crossed_thresholds(total.limit, total.before, total.after):
                await self.outbox.insert(
                    credits_threshold(
                        organization_id=total.organization_id,
                        month=total.month,
                        threshold=threshold,
                        limit=total.limit,
                        used=total.after,
                    )
                )
