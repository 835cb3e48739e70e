"""SQL for the relay: claiming due deliveries across instances, and recording how each went."""

from __future__ import annotations

from app.db import Database
from app.domain.notifications import ClaimedDelivery, DeliveryChannel, NotificationKind

# Due rows no live claim holds, oldest first. SKIP LOCKED: instances claiming at the same moment
# take different rows; the claim then lasts past the transaction until `claimed_until`.
_CLAIM = """
WITH due AS (
    SELECT d.id FROM notification_deliveries d
    WHERE d.state = 'PENDING' AND d.next_attempt_at <= now() AND d.channel = ANY($1::text[])
      AND (d.claimed_until IS NULL OR d.claimed_until <= now())
    ORDER BY d.next_attempt_at LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE notification_deliveries d
SET claimed_until = now() + $3 * interval '1 second', attempts = d.attempts + 1
FROM due, notification_outbox n
WHERE d.id = due.id AND n.id = d.notification_id
RETURNING d.id, d.channel, d.email, d.webhook_id, d.attempts, d.claimed_until,
          n.id AS notification_id, n.organization_id, n.kind, n.subject, n.body, n.html_body,
          n.payload, n.created_at
"""


class DeliveryRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def claim(
        self, channels: list[DeliveryChannel], limit: int, claim_seconds: float
    ) -> list[ClaimedDelivery]:
        rows = await self.db.fetch(_CLAIM, [c.value for c in channels], limit, claim_seconds)
        return [
            ClaimedDelivery(
                id=r["id"],
                channel=DeliveryChannel(r["channel"]),
                email=r["email"],
                webhook_id=r["webhook_id"],
                attempts=r["attempts"],
                claimed_until=r["claimed_until"],
                notification_id=r["notification_id"],
                organization_id=r["organization_id"],
                kind=NotificationKind(r["kind"]),
                subject=r["subject"],
                body=r["body"],
                html_body=r["html_body"],
                payload=dict(r["payload"]),
                created_at=r["created_at"],
            )
            for r in rows
        ]

    async def sent(self, delivery: ClaimedDelivery) -> None:
        """Marks it sent (and the event, once all its deliveries are), if this claim still holds it."""
        async with self.db.transaction():
            # One event's deliveries are recorded one at a time, so that the last one sees the others.
            await self.db.execute(
                "SELECT 1 FROM notification_outbox WHERE id = $1 FOR UPDATE", delivery.notification_id
            )
            status = await self.db.execute(
                """UPDATE notification_deliveries
                   SET state = 'SENT', sent_at = now(), claimed_until = NULL, last_error = NULL
                   WHERE id = $1 AND state = 'PENDING' AND attempts = $2""",
                delivery.id,
                delivery.attempts,
            )
            if status != "UPDATE 0":
                await self.db.execute(
                    """UPDATE notification_outbox SET sent_at = now() WHERE id = $1
                       AND NOT EXISTS (SELECT 1 FROM notification_deliveries
                                       WHERE notification_id = $1 AND state <> 'SENT')""",
                    delivery.notification_id,
                )

    async def failed(self, delivery: ClaimedDelivery, error: str, retry_in: float | None) -> None:
        """Records a failed try: due again in `retry_in` seconds, or FAILED for good (None)."""
        await self.db.execute(
            """UPDATE notification_deliveries
               SET state = CASE WHEN $3::float8 IS NULL THEN 'FAILED' ELSE 'PENDING' END,
                   next_attempt_at = now() + coalesce($3, 0) * interval '1 second',
                   claimed_until = NULL, last_error = $4
               WHERE id = $1 AND state = 'PENDING' AND attempts = $2""",
            delivery.id,
            delivery.attempts,
            retry_in,
            error[:1000],
        )
