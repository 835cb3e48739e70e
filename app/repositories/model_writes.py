"""SQL for changing models; the caller runs them in one unit of work (`Database.transaction`)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from app.db import Database
from app.domain.credentials import CIPHERTEXT_COLUMNS
from app.domain.models import ModelRecord
from app.repositories.constraints import stored_facts

_WRITABLE = (
    "kind, organization_id, scope, project_id, parent_id, name, description, provider, provider_model_id, "
    "model_url, model_group, api_type, context_window, max_output_tokens, capabilities, credit_multiplier, "
    "access_tier, is_visible, is_recommended, enabled, end_of_life_at, deprecation_notice, "
    "replacement_model_id, system_prompt_id, system_prompt_override, provider_settings, connection_id, "
    "is_default, call_deadline_seconds"
)


def _values(record: ModelRecord) -> tuple[object, ...]:
    return (
        record.kind.value,
        record.organization_id,
        record.scope.value if record.scope else None,
        record.project_id,
        record.parent_id,
        record.name,
        record.description,
        record.provider.value if record.provider else None,
        record.provider_model_id,
        record.model_url,
        record.model_group.value,
        record.api_type.value,
        record.context_window,
        record.max_output_tokens,
        None if record.capabilities is None else sorted(c.value for c in record.capabilities),
        record.credit_multiplier,
        record.access_tier.value if record.access_tier else None,
        record.is_visible,
        record.is_recommended,
        record.enabled,
        record.end_of_life_at,
        record.deprecation_notice,
        record.replacement_model_id,
        record.system_prompt_id,
        record.system_prompt_override,
        record.provider_settings,
        record.connection_id,
        record.is_default,
        record.call_deadline_seconds,
    )


class ModelWriter:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, record: ModelRecord) -> datetime:
        placeholders = ", ".join(f"${i}" for i in range(2, 31))
        with stored_facts():
            updated_at: datetime = await self.db.fetchval(
                f"INSERT INTO models (id, {_WRITABLE}) VALUES ($1, {placeholders}) RETURNING updated_at",
                record.id,
                *_values(record),
            )
        return updated_at

    async def update(self, record: ModelRecord, expected_updated_at: datetime | None) -> bool:
        """Writes every field; False when `expected_updated_at` is given and stale (nothing written)."""
        assignments = ", ".join(
            f"{column.strip()} = ${i}" for i, column in enumerate(_WRITABLE.split(","), start=3)
        )
        with stored_facts():
            status: str = await self.db.execute(
                f"""UPDATE models SET {assignments}, updated_at = clock_timestamp()
                    WHERE id = $1 AND ($2::timestamptz IS NULL OR updated_at = $2)""",
                record.id,
                expected_updated_at,
                *_values(record),
            )
        return status == "UPDATE 1"

    async def delete(self, model_id: UUID) -> None:
        with stored_facts(deleting=True):
            await self.db.execute("DELETE FROM models WHERE id = $1", model_id)

    async def set_secrets(self, model_id: UUID, values: dict[str, bytes | None]) -> None:
        """One statement for every changed credential column: the table requires clientKey and
        secretKey to be set or cleared together."""
        if not values:
            return
        if not set(values) <= set(CIPHERTEXT_COLUMNS):
            raise ValueError(f"not credential columns: {sorted(set(values) - set(CIPHERTEXT_COLUMNS))}")
        assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(values, start=2))
        await self.db.execute(f"UPDATE models SET {assignments} WHERE id = $1", model_id, *values.values())

    async def set_assignments(self, model_id: UUID, project_ids: tuple[UUID, ...]) -> None:
        await self.db.execute("DELETE FROM model_project_assignments WHERE model_id = $1", model_id)
        with stored_facts():
            await self.db.executemany(
                "INSERT INTO model_project_assignments (model_id, project_id) VALUES ($1, $2)",
                [(model_id, p) for p in project_ids],
            )

    async def set_fallbacks(self, record: ModelRecord) -> None:
        await self.db.execute("DELETE FROM model_fallbacks WHERE model_id = $1", record.id)
        with stored_facts():
            await self.db.executemany(
                """INSERT INTO model_fallbacks (model_id, position, fallback_model_id, enabled,
                       failed_requests, duration_minutes, notify_emails)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                [
                    (
                        record.id,
                        i,
                        f.model_id,
                        f.enabled,
                        f.failed_requests,
                        f.duration_minutes,
                        list(f.notify_emails),
                    )
                    for i, f in enumerate(record.fallbacks)
                ],
            )

    async def lock_project(self, project_id: UUID) -> None:
        await self.db.execute("SELECT 1 FROM projects WHERE id = $1 FOR UPDATE", project_id)

    async def unset_other_defaults(self, project_id: UUID, keep: UUID) -> None:
        """Setting a new default unsets the old one in the same transaction."""
        await self.db.execute(
            "UPDATE models SET is_default = false, updated_at = clock_timestamp() "
            "WHERE project_id = $1 AND is_default AND id <> $2",
            project_id,
            keep,
        )
