"""SQL for webhooks. The secret's ciphertext is read only for sending (`secret_of`)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from app.db import Database
from app.domain.notifications import NotificationKind
from app.domain.pagination import CreatedKey, Page, PageRequest
from app.domain.webhooks import Webhook

_COLUMNS = "id, organization_id, url, events, enabled, created_at, updated_at"


def _webhook(row: asyncpg.Record) -> Webhook:
    return Webhook(
        id=row["id"],
        organization_id=row["organization_id"],
        url=row["url"],
        events=tuple(NotificationKind(e) for e in row["events"]),
        enabled=row["enabled"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class WebhookRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, webhook_id: UUID) -> Webhook | None:
        row = await self.db.fetchrow(f"SELECT {_COLUMNS} FROM webhooks WHERE id = $1", webhook_id)
        return _webhook(row) if row else None

    async def count_for_organization(self, organization_id: UUID) -> int:
        return await self.db.fetchval(  # type: ignore[no-any-return]
            "SELECT count(*) FROM webhooks WHERE organization_id = $1", organization_id
        )

    async def list_for_organization(
        self, organization_id: UUID, page: PageRequest[CreatedKey]
    ) -> Page[Webhook]:
        after_created, after_id = (page.after.created_at, page.after.id) if page.after else (None, None)
        rows = await self.db.fetch(
            f"""SELECT {_COLUMNS} FROM webhooks
                WHERE organization_id = $1
                  AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
                ORDER BY created_at, id LIMIT $4""",
            organization_id,
            after_created,
            after_id,
            page.first + 1,
        )
        return Page.from_rows([_webhook(r) for r in rows], page.first)

    async def insert(
        self,
        *,
        webhook_id: UUID,
        organization_id: UUID,
        url: str,
        events: tuple[NotificationKind, ...],
        enabled: bool,
        secret_ciphertext: bytes,
    ) -> Webhook:
        row = await self.db.fetchrow(
            f"""INSERT INTO webhooks (id, organization_id, url, events, enabled, secret_key_ciphertext)
                VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}""",
            webhook_id,
            organization_id,
            url,
            [e.value for e in events],
            enabled,
            secret_ciphertext,
        )
        assert row is not None
        return _webhook(row)

    async def update(
        self,
        webhook_id: UUID,
        *,
        url: str | None,
        events: tuple[NotificationKind, ...] | None,
        enabled: bool | None,
    ) -> Webhook | None:
        """Writes the fields given (None: unchanged, so a concurrent change of another field
        stands); None if it is gone."""
        row = await self.db.fetchrow(
            f"""UPDATE webhooks SET url = coalesce($2, url), events = coalesce($3, events),
                    enabled = coalesce($4, enabled), updated_at = now()
                WHERE id = $1 RETURNING {_COLUMNS}""",
            webhook_id,
            url,
            None if events is None else [e.value for e in events],
            enabled,
        )
        return _webhook(row) if row else None

    async def set_secret(self, webhook_id: UUID, secret_ciphertext: bytes) -> Webhook | None:
        row = await self.db.fetchrow(
            f"""UPDATE webhooks SET secret_key_ciphertext = $2, updated_at = now()
                WHERE id = $1 RETURNING {_COLUMNS}""",
            webhook_id,
            secret_ciphertext,
        )
        return _webhook(row) if row else None

    async def delete(self, webhook_id: UUID) -> bool:
        return await self.db.execute("DELETE FROM webhooks WHERE id = $1", webhook_id) != "DELETE 0"

    async def secret_of(self, webhook_id: UUID) -> tuple[Webhook, bytes] | None:
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS}, secret_key_ciphertext FROM webhooks WHERE id = $1", webhook_id
        )
        return (_webhook(row), bytes(row["secret_key_ciphertext"])) if row else None
