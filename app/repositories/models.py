"""SQL for reading models: by id, and filtered lists with keyset pagination.

Filters apply to effective values (a variant's inherited provider, capabilities, lifecycle), so the
list query joins each model to its parent and derives lifecycle the same way the domain does.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from app.db import Database
from app.domain.credentials import CIPHERTEXT_COLUMNS
from app.domain.enums import ApiType, ModelGroup, Provider
from app.domain.models import (
    AccessTier,
    Capability,
    EffectiveModel,
    Fallback,
    ModelKind,
    ModelRecord,
    ModelScope,
)
from app.domain.pagination import NameKey, Page, PageRequest

MODEL_COLUMNS = (
    "m.id, m.kind, m.organization_id, m.scope, m.project_id, m.parent_id, m.name, m.description, m.provider, "
    "m.provider_model_id, m.model_url, m.model_group, m.api_type, m.context_window, m.max_output_tokens, "
    "m.capabilities, m.credit_multiplier, m.access_tier, m.is_visible, m.is_recommended, m.enabled, "
    "m.end_of_life_at, m.deprecation_notice, m.replacement_model_id, m.system_prompt_id, "
    "m.system_prompt_override, m.provider_settings, m.token_ciphertext IS NOT NULL AS has_token, "
    "m.client_key_ciphertext IS NOT NULL AS has_client_key, m.connection_id, m.is_default, m.created_at, "
    "m.updated_at, m.call_deadline_seconds"
)


@dataclass(frozen=True, slots=True)
class ModelListQuery:
    """Which models a list may contain (visibility, decided by the service) and the caller's filter."""

    organization_id: UUID | None
    include_system: bool
    include_invisible_system: bool = False
    project_id: UUID | None = None
    kinds: list[str] | None = None
    scopes: list[str] | None = None
    providers: list[str] | None = None
    model_groups: list[str] | None = None
    lifecycle_states: list[str] | None = None
    capabilities: list[str] | None = None
    search: str | None = None


def _optional(value: Any, kind: type) -> Any:
    return None if value is None else kind(value)


def model_record(
    row: asyncpg.Record, assigned: tuple[UUID, ...] = (), fallbacks: tuple[Fallback, ...] = ()
) -> ModelRecord:
    capabilities = row["capabilities"]
    return ModelRecord(
        id=row["id"],
        kind=ModelKind(row["kind"]),
        organization_id=row["organization_id"],
        scope=_optional(row["scope"], ModelScope),
        project_id=row["project_id"],
        parent_id=row["parent_id"],
        name=row["name"],
        description=row["description"],
        provider=_optional(row["provider"], Provider),
        provider_model_id=row["provider_model_id"],
        model_url=row["model_url"],
        model_group=ModelGroup(row["model_group"]),
        api_type=ApiType(row["api_type"]),
        context_window=row["context_window"],
        max_output_tokens=row["max_output_tokens"],
        capabilities=None if capabilities is None else frozenset(Capability(c) for c in capabilities),
        credit_multiplier=_optional(row["credit_multiplier"], Decimal),
        access_tier=_optional(row["access_tier"], AccessTier),
        is_visible=row["is_visible"],
        is_recommended=row["is_recommended"],
        enabled=row["enabled"],
        end_of_life_at=row["end_of_life_at"],
        deprecation_notice=row["deprecation_notice"],
        replacement_model_id=row["replacement_model_id"],
        system_prompt_id=row["system_prompt_id"],
        system_prompt_override=row["system_prompt_override"],
        provider_settings=dict(row["provider_settings"] or {}),
        has_token=row["has_token"],
        has_client_key=row["has_client_key"],
        connection_id=row["connection_id"],
        is_default=row["is_default"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        call_deadline_seconds=row["call_deadline_seconds"],
        assigned_project_ids=assigned,
        fallbacks=fallbacks,
    )


_LIST_SQL = f"""
WITH candidates AS (
    SELECT {MODEL_COLUMNS},
        coalesce(m.provider, p.provider) AS e_provider,
        coalesce(m.provider_model_id, p.provider_model_id) AS e_provider_model_id,
        coalesce(m.capabilities, p.capabilities, '{{}}') AS e_capabilities,
        CASE
            WHEN NOT (m.enabled AND coalesce(p.enabled, true)) THEN 'DISABLED'
            WHEN least(m.end_of_life_at, p.end_of_life_at) <= $1 THEN 'END_OF_LIFE'
            WHEN least(m.end_of_life_at, p.end_of_life_at) IS NOT NULL THEN 'DEPRECATED'
            ELSE 'ACTIVE'
        END AS e_lifecycle
    FROM models m LEFT JOIN models p ON p.id = m.parent_id
    WHERE (
        ($2 AND m.kind = 'SYSTEM' AND ($3 OR m.is_visible))
        OR ($4::uuid IS NOT NULL AND m.organization_id = $4 AND (
            $5::uuid IS NULL
            OR (m.scope = 'PROJECT' AND m.project_id = $5)
            OR (m.scope = 'ORGANIZATION' AND (
                NOT EXISTS (SELECT 1 FROM model_project_assignments a WHERE a.model_id = m.id)
                OR EXISTS (SELECT 1 FROM model_project_assignments a
                           WHERE a.model_id = m.id AND a.project_id = $5)
            ))
        ))
    )
)
SELECT * FROM candidates c
WHERE ($6::text[] IS NULL OR c.kind = ANY($6))
  AND ($7::text[] IS NULL OR c.scope = ANY($7))
  AND ($8::text[] IS NULL OR c.e_provider = ANY($8))
  AND ($9::text[] IS NULL OR c.model_group = ANY($9))
  AND ($10::text[] IS NULL OR c.e_lifecycle = ANY($10))
  AND ($11::text[] IS NULL OR c.e_capabilities @> $11)
  AND ($12::text IS NULL OR c.name ILIKE $12 OR c.description ILIKE $12 OR c.e_provider_model_id ILIKE $12)
  AND ($13::text IS NULL OR (lower(c.name), c.id) > ($13, $14))
ORDER BY lower(c.name), c.id
LIMIT $15
"""


def _like_pattern(search: str | None) -> str | None:
    if not search:
        return None
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class ModelRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, model_id: UUID) -> ModelRecord | None:
        found = await self.get_many([model_id])
        return found[0] if found else None

    async def get_effective(self, model_id: UUID) -> EffectiveModel | None:
        """The model with its parent, whose fields a variant inherits."""
        record = await self.get(model_id)
        if record is None:
            return None
        parent = await self.get(record.parent_id) if record.parent_id else None
        return EffectiveModel(record, parent)

    async def get_many(self, ids: list[UUID]) -> list[ModelRecord]:
        rows = await self.db.fetch(f"SELECT {MODEL_COLUMNS} FROM models m WHERE m.id = ANY($1)", ids)
        return await self._complete(rows)

    async def list_page(
        self, query: ModelListQuery, page: PageRequest[NameKey], now: datetime
    ) -> Page[ModelRecord]:
        after = page.after
        rows = await self.db.fetch(
            _LIST_SQL,
            now,
            query.include_system,
            query.include_invisible_system,
            query.organization_id,
            query.project_id,
            query.kinds,
            query.scopes,
            query.providers,
            query.model_groups,
            query.lifecycle_states,
            query.capabilities,
            _like_pattern(query.search),
            after.name.lower() if after else None,
            after.id if after else None,
            page.first + 1,
        )
        return Page.from_rows(await self._complete(rows), page.first)

    async def list_all(self, query: ModelListQuery, now: datetime, limit: int = 1000) -> list[ModelRecord]:
        """Every matching model in name order (for pickers), at most `limit`."""
        page = await self.list_page(query, PageRequest(limit), now)
        return list(page.items)

    async def _complete(self, rows: list[asyncpg.Record]) -> list[ModelRecord]:
        """Adds project assignments and fallbacks, two queries for any number of models."""
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        assigned: dict[UUID, list[UUID]] = defaultdict(list)
        for a in await self.db.fetch(
            """SELECT model_id, project_id FROM model_project_assignments
               WHERE model_id = ANY($1) ORDER BY project_id""",
            ids,
        ):
            assigned[a["model_id"]].append(a["project_id"])
        fallbacks: dict[UUID, list[Fallback]] = defaultdict(list)
        for f in await self.db.fetch(
            """SELECT model_id, fallback_model_id, enabled, failed_requests, duration_minutes, notify_emails
               FROM model_fallbacks WHERE model_id = ANY($1) ORDER BY model_id, position""",
            ids,
        ):
            fallbacks[f["model_id"]].append(
                Fallback(
                    model_id=f["fallback_model_id"],
                    enabled=f["enabled"],
                    failed_requests=f["failed_requests"],
                    duration_minutes=f["duration_minutes"],
                    notify_emails=tuple(f["notify_emails"]),
                )
            )
        return [model_record(r, tuple(assigned[r["id"]]), tuple(fallbacks[r["id"]])) for r in rows]

    async def default_for_project(self, project_id: UUID) -> UUID | None:
        model_id: UUID | None = await self.db.fetchval(
            "SELECT id FROM models WHERE project_id = $1 AND is_default", project_id
        )
        return model_id

    async def ids_named(self, organization_id: UUID, name: str) -> list[UUID]:
        """The ids of the visible system models and the organization's models called `name` (the
        caller's project narrows them further from the cached models)."""
        rows = await self.db.fetch(
            """SELECT id FROM models
               WHERE name = $2 AND ((kind = 'SYSTEM' AND is_visible) OR organization_id = $1)""",
            organization_id,
            name,
        )
        return [r["id"] for r in rows]

    async def secrets(self, model_id: UUID) -> dict[str, bytes | None]:
        row = await self.db.fetchrow(
            f"SELECT {', '.join(CIPHERTEXT_COLUMNS)} FROM models WHERE id = $1", model_id
        )
        return {c: (bytes(row[c]) if row and row[c] is not None else None) for c in CIPHERTEXT_COLUMNS}

    async def replacement_chain(self, start: UUID, limit: int = 100) -> list[UUID]:
        """The ids reached by following replacements from `start` (start excluded)."""
        rows = await self.db.fetch(
            """WITH RECURSIVE chain(id, depth) AS (
                   SELECT replacement_model_id, 1 FROM models
                   WHERE id = $1 AND replacement_model_id IS NOT NULL
                   UNION ALL
                   SELECT m.replacement_model_id, c.depth + 1 FROM models m JOIN chain c ON m.id = c.id
                   WHERE m.replacement_model_id IS NOT NULL AND c.depth < $2
               ) SELECT id FROM chain ORDER BY depth""",
            start,
            limit,
        )
        return [r["id"] for r in rows]

    async def dependents(self, model_id: UUID) -> list[str]:
        """Names of models that name this one as parent, replacement or fallback."""
        rows = await self.db.fetch(
            """SELECT DISTINCT name FROM models WHERE parent_id = $1 OR replacement_model_id = $1
               UNION
               SELECT m.name FROM model_fallbacks f JOIN models m ON m.id = f.model_id
               WHERE f.fallback_model_id = $1
               ORDER BY 1""",
            model_id,
        )
        return [r["name"] for r in rows]
