"""SQL for model health (consecutive failures, trips) and the notification outbox."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from app.db import Database
from app.domain.notifications import NewNotification, Notification, NotificationKind
from app.domain.pagination import CreatedKey, Page, PageRequest


@dataclass(frozen=True, slots=True)
class HealthRow:
    """A model's stored health; a model without a row has never failed."""

    consecutive_failures: int = 0
    tripped_until: datetime | None = None


NEVER_FAILED = HealthRow()


class HealthRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get_many(self, model_ids: list[UUID]) -> dict[UUID, HealthRow]:
        """The stored rows of those models that have one."""
        rows = await self.db.fetch(
            "SELECT model_id, consecutive_failures, tripped_until FROM model_health WHERE model_id = ANY($1)",
            model_ids,
        )
        return {r["model_id"]: HealthRow(r["consecutive_failures"], r["tripped_until"]) for r in rows}

    async def add_failure(self, model_id: UUID, error_code: str, at: datetime) -> HealthRow:
        """Counts one more consecutive failure. The row stays locked until the transaction ends, so
        that concurrent failures on any instance see each other's trip."""
        row = await self.db.fetchrow(
            """INSERT INTO model_health AS h
                   (model_id, consecutive_failures, last_failure_code, last_failure_at, updated_at)
               VALUES ($1, 1, $2, $3, now())
               ON CONFLICT (model_id) DO UPDATE SET
                   consecutive_failures = h.consecutive_failures + 1,
                   last_failure_code = excluded.last_failure_code,
                   last_failure_at = excluded.last_failure_at,
                   updated_at = now()
               RETURNING consecutive_failures, tripped_until""",
            model_id,
            error_code,
            at,
        )
        assert row is not None  # an upsert returns its row
        return HealthRow(row["consecutive_failures"], row["tripped_until"])

    async def trip(self, model_id: UUID, until: datetime) -> None:
        await self.db.execute(
            "UPDATE model_health SET tripped_until = $2, updated_at = now() WHERE model_id = $1",
            model_id,
            until,
        )

    async def reset(self, model_id: UUID) -> bool:
        """Clears the failure count (not a trip); False when there was nothing to clear."""
        status = await self.db.execute(
            """UPDATE model_health SET consecutive_failures = 0, updated_at = now()
               WHERE model_id = $1 AND consecutive_failures > 0""",
            model_id,
        )
        return status != "UPDATE 0"


_NOTIFICATION_COLUMNS = "id, organization_id, kind, recipients, subject, body, payload, created_at, sent_at"


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


class OutboxRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, notification: NewNotification) -> None:
        await self.db.execute(
            """INSERT INTO notification_outbox (id, organization_id, kind, recipients, subject, body, payload)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            uuid.uuid4(),
            notification.organization_id,
            notification.kind.value,
            list(notification.recipients),
            notification.subject,
            notification.body,
            notification.payload,
        )

    async def get(self, notification_id: UUID) -> Notification | None:
        row = await self.db.fetchrow(
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notification_outbox WHERE id = $1", notification_id
        )
        return _notification(row) if row else None

    async def list_for_organization(
        self, organization_id: UUID, page: PageRequest[CreatedKey]
    ) -> Page[Notification]:
        """Newest first: `page.after` is the last row seen, the next rows are older."""
        after_created, after_id = (page.after.created_at, page.after.id) if page.after else (None, None)
        rows = await self.db.fetch(
            f"""SELECT {_NOTIFICATION_COLUMNS} FROM notification_outbox
                WHERE organization_id = $1
                  AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
                ORDER BY created_at DESC, id DESC LIMIT $4""",
            organization_id,
            after_created,
            after_id,
            page.first + 1,
        )
        return Page.from_rows([_notification(r) for r in rows], page.first)
