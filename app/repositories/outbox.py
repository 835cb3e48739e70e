"""SQL for the notification outbox: events written once by their key, each with one delivery per
recipient (its email addresses and its organization's alert emails, and the organization's
webhooks that take its kind)."""

from __future__ import annotations

import uuid
from uuid import UUID

import asyncpg

from app.db import Database
from app.domain.notifications import (
    Delivery,
    DeliveryChannel,
    DeliveryState,
    NewNotification,
    Notification,
    NotificationKind,
)
from app.domain.pagination import CreatedKey, Page, PageRequest

# The event, then its deliveries, in one statement: nothing when the key was written already. Its
# email recipients are its own (a trip's notifyEmails), then its organization's alert emails, each
# address once whatever its case.
_INSERT = """
WITH recipients AS (
    SELECT coalesce(array_agg(email ORDER BY n), '{}') AS emails FROM (
        SELECT DISTINCT ON (lower(email)) email, n FROM (
            SELECT email, n FROM unnest($5::text[]) WITH ORDINALITY AS own (email, n)
            UNION ALL
            SELECT email, cardinality($5::text[]) + n
            FROM organizations o, unnest(o.alert_emails) WITH ORDINALITY AS org (email, n)
            WHERE o.id = $3
        ) listed
        ORDER BY lower(email), n
    ) once
), event AS (
    INSERT INTO notification_outbox
        (id, event_key, organization_id, kind, recipients, subject, body, html_body, payload)
    VALUES ($1, $2, $3, $4, (SELECT emails FROM recipients), $6, $7, $8, $9)
    ON CONFLICT (event_key) DO NOTHING
    RETURNING id, recipients
), emails AS (
    INSERT INTO notification_deliveries (id, notification_id, channel, email)
    SELECT gen_random_uuid(), event.id, 'EMAIL', e.email FROM event, unnest(event.recipients) AS e (email)
), hooks AS (
    INSERT INTO notification_deliveries (id, notification_id, channel, webhook_id)
    SELECT gen_random_uuid(), event.id, 'WEBHOOK', w.id
    FROM event JOIN webhooks w ON w.organization_id = $3
    WHERE w.enabled AND (cardinality(w.events) = 0 OR $4 = ANY (w.events))
)
SELECT id FROM event
"""

_COLUMNS = "id, organization_id, kind, recipients, subject, body, payload, created_at, sent_at"
_DELIVERY_COLUMNS = (
    "id, notification_id, channel, email, webhook_id, state, attempts, last_error, next_attempt_at, sent_at"
)


def _notification(row: asyncpg.Record) -> Notification:
    return Notification(
        id=row["id"],
        organization_id=row["organization_id"],
        kind=NotificationKind(row["kind"]),
        recipients=tuple(row["recipients"]),
        subject=row["subject"],
        body=row["body"],
        payload=dict(row["payload"]),
        created_at=row["created_at"],
        sent_at=row["sent_at"],
    )


def _delivery(row: asyncpg.Record) -> Delivery:
    return Delivery(
        id=row["id"],
        channel=DeliveryChannel(row["channel"]),
        email=row["email"],
        webhook_id=row["webhook_id"],
        state=DeliveryState(row["state"]),
        attempts=row["attempts"],
        last_error=row["last_error"],
        next_attempt_at=row["next_attempt_at"],
        sent_at=row["sent_at"],
    )


class OutboxRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, notification: NewNotification) -> UUID | None:
        """Writes the event and its deliveries; None (nothing written) if its key was written before."""
        message = notification.message
        return await self.db.fetchval(  # type: ignore[no-any-return]
            _INSERT,
            uuid.uuid4(),
            notification.key,
            notification.organization_id,
            notification.kind.value,
            list(notification.recipients),
            message.subject,
            message.text,
            message.html,
            notification.payload,
        )

    async def get(self, notification_id: UUID) -> Notification | None:
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} FROM notification_outbox WHERE id = $1", notification_id
        )
        return _notification(row) if row else None

    async def list_for_organization(
        self, organization_id: UUID, page: PageRequest[CreatedKey]
    ) -> Page[Notification]:
        """Newest first: `page.after` is the last row seen, the next rows are older."""
        after_created, after_id = (page.after.created_at, page.after.id) if page.after else (None, None)
        rows = await self.db.fetch(
            f"""SELECT {_COLUMNS} FROM notification_outbox
                WHERE organization_id = $1
                  AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
                ORDER BY created_at DESC, id DESC LIMIT $4""",
            organization_id,
            after_created,
            after_id,
            page.first + 1,
        )
        return Page.from_rows([_notification(r) for r in rows], page.first)

    async def deliveries(self, notification_ids: list[UUID]) -> dict[UUID, list[Delivery]]:
        """The deliveries of each event, oldest first (every id has an entry)."""
        rows = await self.db.fetch(
            f"""SELECT {_DELIVERY_COLUMNS} FROM notification_deliveries
                WHERE notification_id = ANY($1) ORDER BY created_at, id""",
            notification_ids,
        )
        found: dict[UUID, list[Delivery]] = {i: [] for i in notification_ids}
        for row in rows:
            found[row["notification_id"]].append(_delivery(row))
        return found
