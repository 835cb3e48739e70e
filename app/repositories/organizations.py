"""SQL for organizations and projects."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from app.db import Database
from app.domain.enums import Plan
from app.domain.pagination import CreatedKey, Page, PageRequest
from app.domain.tenancy import Organization, Project
from app.repositories.constraints import stored_facts

_ORG_COLUMNS = (
    "id, name, plan, monthly_credit_limit, auto_migrate_end_of_life, external_id, max_concurrent_streams, "
    "alert_emails, created_at, updated_at"
)
_PROJECT_COLUMNS = "id, organization_id, name, created_at, updated_at"


def _organization(row: asyncpg.Record) -> Organization:
    return Organization(
        id=row["id"],
        name=row["name"],
        plan=Plan(row["plan"]),
        monthly_credit_limit=row["monthly_credit_limit"],
        auto_migrate_end_of_life=row["auto_migrate_end_of_life"],
        external_id=row["external_id"],
        max_concurrent_streams=row["max_concurrent_streams"],
        alert_emails=tuple(row["alert_emails"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _project(row: asyncpg.Record) -> Project:
    return Project(
        id=row["id"],
        organization_id=row["organization_id"],
        name=row["name"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _after(page: PageRequest[CreatedKey]) -> tuple[Any, Any]:
    return (page.after.created_at, page.after.id) if page.after else (None, None)


class OrganizationRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, organization_id: UUID) -> Organization | None:
        row = await self.db.fetchrow(
            f"SELECT {_ORG_COLUMNS} FROM organizations WHERE id = $1", organization_id
        )
        return _organization(row) if row else None

    async def get_many(self, ids: list[UUID]) -> list[Organization]:
        rows = await self.db.fetch(f"SELECT {_ORG_COLUMNS} FROM organizations WHERE id = ANY($1)", ids)
        return [_organization(r) for r in rows]

    async def get_by_external_id(self, external_id: str) -> Organization | None:
        row = await self.db.fetchrow(
            f"SELECT {_ORG_COLUMNS} FROM organizations WHERE external_id = $1", external_id
        )
        return _organization(row) if row else None

    async def get_by_name(self, name: str) -> Organization | None:
        row = await self.db.fetchrow(
            f"SELECT {_ORG_COLUMNS} FROM organizations WHERE lower(name) = lower($1)", name
        )
        return _organization(row) if row else None

    async def list_page(self, page: PageRequest[CreatedKey]) -> Page[Organization]:
        after_created, after_id = _after(page)
        rows = await self.db.fetch(
            f"""SELECT {_ORG_COLUMNS} FROM organizations
                WHERE $1::timestamptz IS NULL OR (created_at, id) > ($1, $2)
                ORDER BY created_at, id LIMIT $3""",
            after_created,
            after_id,
            page.first + 1,
        )
        return Page.from_rows([_organization(r) for r in rows], page.first)

    async def insert(
        self,
        *,
        organization_id: UUID,
        name: str,
        plan: Plan,
        monthly_credit_limit: Decimal | None,
        auto_migrate_end_of_life: bool,
        external_id: str | None,
    ) -> Organization:
        with stored_facts():
            row = await self.db.fetchrow(
                f"""INSERT INTO organizations
                        (id, name, plan, monthly_credit_limit, auto_migrate_end_of_life, external_id)
                    VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_ORG_COLUMNS}""",
                organization_id,
                name,
                plan.value,
                monthly_credit_limit,
                auto_migrate_end_of_life,
                external_id,
            )
        return _organization(row)

    async def update(self, organization: Organization) -> Organization:
        with stored_facts():
            row = await self.db.fetchrow(
                f"""UPDATE organizations SET name = $2, plan = $3, monthly_credit_limit = $4,
                        auto_migrate_end_of_life = $5, external_id = $6, max_concurrent_streams = $7,
                        alert_emails = $8, updated_at = now()
                    WHERE id = $1 RETURNING {_ORG_COLUMNS}""",
                organization.id,
                organization.name,
                organization.plan.value,
                organization.monthly_credit_limit,
                organization.auto_migrate_end_of_life,
                organization.external_id,
                organization.max_concurrent_streams,
                list(organization.alert_emails),
            )
        return _organization(row)


class ProjectRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, project_id: UUID) -> Project | None:
        row = await self.db.fetchrow(f"SELECT {_PROJECT_COLUMNS} FROM projects WHERE id = $1", project_id)
        return _project(row) if row else None

    async def get_many(self, ids: list[UUID]) -> list[Project]:
        rows = await self.db.fetch(f"SELECT {_PROJECT_COLUMNS} FROM projects WHERE id = ANY($1)", ids)
        return [_project(r) for r in rows]

    async def list_for_organization(
        self, organization_id: UUID, page: PageRequest[CreatedKey], only_project: UUID | None = None
    ) -> Page[Project]:
        after_created, after_id = _after(page)
        rows = await self.db.fetch(
            f"""SELECT {_PROJECT_COLUMNS} FROM projects
                WHERE organization_id = $1 AND ($2::uuid IS NULL OR id = $2)
                  AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4))
                ORDER BY created_at, id LIMIT $5""",
            organization_id,
            only_project,
            after_created,
            after_id,
            page.first + 1,
        )
        return Page.from_rows([_project(r) for r in rows], page.first)

    async def insert(self, *, project_id: UUID, organization_id: UUID, name: str) -> Project:
        with stored_facts():
            row = await self.db.fetchrow(
                f"""INSERT INTO projects (id, organization_id, name) VALUES ($1, $2, $3)
                    RETURNING {_PROJECT_COLUMNS}""",
                project_id,
                organization_id,
                name,
            )
        return _project(row)

    async def rename(self, project_id: UUID, name: str) -> Project:
        with stored_facts():
            row = await self.db.fetchrow(
                f"""UPDATE projects SET name = $2, updated_at = now() WHERE id = $1
                    RETURNING {_PROJECT_COLUMNS}""",
                project_id,
                name,
            )
        return _project(row)

    async def delete(self, project_id: UUID) -> None:
        await self.db.execute("DELETE FROM projects WHERE id = $1", project_id)
