"""SQL for model health: consecutive failures and trips."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from app.db import Database


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

    async def reset(self, model_id: UUID, now: datetime) -> Reset | None:
        """Clears the failure count, and a trip that has ended (not one still running: a call that
        began before it may succeed). None when there was nothing to clear."""
        row = await self.db.fetchrow(
            """UPDATE model_health h SET
                   consecutive_failures = 0,
                   tripped_until = CASE WHEN old.tripped_until <= $2 THEN NULL ELSE old.tripped_until END,
                   updated_at = now()
               FROM (SELECT model_id, tripped_until FROM model_health WHERE model_id = $1 FOR UPDATE) old
               WHERE h.model_id = old.model_id
                 AND (h.consecutive_failures > 0 OR old.tripped_until <= $2)
               RETURNING old.tripped_until""",
            model_id,
            now,
        )
        if row is None:
            return None
        ended = row["tripped_until"]
        return Reset(ended if ended is not None and ended <= now else None)


@dataclass(frozen=True, slots=True)
class Reset:
    """A cleared failure count; `ended_trip`: the end of the trip it closed (a recovery), if any."""

    ended_trip: datetime | None
