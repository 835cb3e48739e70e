"""SQL for the periodic alert scan: models in use nearing their end of life, keys nearing expiry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from app.db import Database

# A model is in use by an organization that owns it, has a model inheriting from it, or called it
# within the last `$3` days. Disabled models are not announced (their calls already fail).
_ENDING_MODELS = """
SELECT m.id, m.name, m.end_of_life_at, m.deprecation_notice, r.name AS replacement_name,
       users.organization_id
FROM models m
LEFT JOIN models r ON r.id = m.replacement_model_id
CROSS JOIN LATERAL (
    SELECT m.organization_id WHERE m.organization_id IS NOT NULL
    UNION SELECT c.organization_id FROM models c WHERE c.parent_id = m.id
    UNION SELECT u.organization_id FROM usage_records u
          WHERE (u.requested_model_id = m.id OR u.served_model_id = m.id)
            AND u.created_at > $1::timestamptz - $3::integer * interval '1 day'
) users
WHERE m.enabled AND m.end_of_life_at > $1 AND m.end_of_life_at <= $2
ORDER BY m.end_of_life_at, m.id, users.organization_id
"""


@dataclass(frozen=True, slots=True)
class EndingModel:
    model_id: UUID
    model_name: str
    end_of_life_at: datetime
    deprecation_notice: str | None
    replacement_name: str | None
    organization_id: UUID


@dataclass(frozen=True, slots=True)
class ExpiringKey:
    key_id: UUID
    organization_id: UUID
    name: str
    prefix: str
    expires_at: datetime


class AlertScanRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def ending_models(
        self, now: datetime, within: timedelta, used_within_days: int
    ) -> list[EndingModel]:
        rows = await self.db.fetch(_ENDING_MODELS, now, now + within, used_within_days)
        return [
            EndingModel(
                model_id=r["id"],
                model_name=r["name"],
                end_of_life_at=r["end_of_life_at"],
                deprecation_notice=r["deprecation_notice"],
                replacement_name=r["replacement_name"],
                organization_id=r["organization_id"],
            )
            for r in rows
        ]

    async def expiring_keys(self, now: datetime, within: timedelta) -> list[ExpiringKey]:
        """Organization keys (not revoked) that expire within `within` of `now`."""
        rows = await self.db.fetch(
            """SELECT id, organization_id, name, prefix, expires_at FROM api_keys
               WHERE revoked_at IS NULL AND organization_id IS NOT NULL
                 AND expires_at > $1 AND expires_at <= $2
               ORDER BY expires_at, id""",
            now,
            now + within,
        )
        return [
            ExpiringKey(r["id"], r["organization_id"], r["name"], r["prefix"], r["expires_at"]) for r in rows
        ]
