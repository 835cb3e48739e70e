"""SQL for system prompt compositions and their particles.

A composition's particles are always written as a whole set (delete, then insert in order) inside
the caller's transaction, so a reader never sees half of an edit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from app.db import Database
from app.domain.pagination import CreatedKey, Page, PageRequest
from app.domain.system_prompts import Particle, ParticleKind, SystemPrompt
from app.repositories.constraints import stored_facts

_COLUMNS = "id, organization_id, name, description, created_at, updated_at"
# Every read returns a composition with its particles in order, as two parallel arrays.
_SELECT = f"""
    SELECT {_COLUMNS}, particles.kinds, particles.texts
    FROM system_prompts AS sp
    CROSS JOIN LATERAL (
        SELECT array_agg(kind ORDER BY position) AS kinds, array_agg(text ORDER BY position) AS texts
        FROM system_prompt_particles WHERE system_prompt_id = sp.id
    ) AS particles"""


def _system_prompt(row: asyncpg.Record, particles: Sequence[Particle]) -> SystemPrompt:
    return SystemPrompt(
        id=row["id"],
        organization_id=row["organization_id"],
        name=row["name"],
        description=row["description"],
        particles=tuple(particles),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _with_particles(row: asyncpg.Record) -> SystemPrompt:
    kinds, texts = row["kinds"] or [], row["texts"] or []
    return _system_prompt(row, [Particle(ParticleKind(k), t) for k, t in zip(kinds, texts, strict=True)])


class SystemPromptRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, system_prompt_id: UUID) -> SystemPrompt | None:
        row = await self.db.fetchrow(f"{_SELECT} WHERE sp.id = $1", system_prompt_id)
        return _with_particles(row) if row else None

    async def list_page(
        self, organization_id: UUID | None, include_platform: bool, page: PageRequest[CreatedKey]
    ) -> Page[SystemPrompt]:
        """The organization's compositions, and with `include_platform` the platform-wide ones too."""
        after = page.after
        rows = await self.db.fetch(
            f"""{_SELECT}
                WHERE (sp.organization_id = $1 OR ($2 AND sp.organization_id IS NULL))
                  AND ($3::timestamptz IS NULL OR (sp.created_at, sp.id) > ($3, $4))
                ORDER BY sp.created_at, sp.id LIMIT $5""",
            organization_id,
            include_platform,
            after.created_at if after else None,
            after.id if after else None,
            page.first + 1,
        )
        return Page.from_rows([_with_particles(r) for r in rows], page.first)

    async def insert(
        self,
        *,
        system_prompt_id: UUID,
        organization_id: UUID | None,
        name: str,
        description: str | None,
        particles: Sequence[Particle],
    ) -> SystemPrompt:
        with stored_facts():
            row = await self.db.fetchrow(
                f"""INSERT INTO system_prompts (id, organization_id, name, description)
                    VALUES ($1, $2, $3, $4) RETURNING {_COLUMNS}""",
                system_prompt_id,
                organization_id,
                name,
                description,
            )
        await self._replace_particles(system_prompt_id, particles)
        return _system_prompt(row, particles)

    async def update(self, prompt: SystemPrompt, expected_updated_at: datetime | None) -> SystemPrompt | None:
        """Writes `prompt` whole; None when `expected_updated_at` is given and no longer current
        (or the row is gone), in which case nothing was written."""
        with stored_facts():
            row = await self.db.fetchrow(
                f"""UPDATE system_prompts SET name = $2, description = $3,
                        -- strictly later than before, so every write changes the concurrency token
                        updated_at = greatest(now(), updated_at + interval '1 microsecond')
                    WHERE id = $1 AND ($4::timestamptz IS NULL OR updated_at = $4)
                    RETURNING {_COLUMNS}""",
                prompt.id,
                prompt.name,
                prompt.description,
                expected_updated_at,
            )
        if row is None:
            return None
        await self._replace_particles(prompt.id, prompt.particles)
        return _system_prompt(row, prompt.particles)

    async def delete(self, system_prompt_id: UUID) -> bool:
        """Deletes the composition and its particles; models using it lose the reference (SET NULL)."""
        status: str = await self.db.execute("DELETE FROM system_prompts WHERE id = $1", system_prompt_id)
        return status != "DELETE 0"

    async def _replace_particles(self, system_prompt_id: UUID, particles: Sequence[Particle]) -> None:
        await self.db.execute(
            "DELETE FROM system_prompt_particles WHERE system_prompt_id = $1", system_prompt_id
        )
        await self.db.execute(
            """INSERT INTO system_prompt_particles (system_prompt_id, position, kind, text)
               SELECT $1, p.position - 1, p.kind, p.text
               FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS p(kind, text, position)""",
            system_prompt_id,
            [p.kind.value for p in particles],
            [p.text for p in particles],
        )
