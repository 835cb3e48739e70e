"""SQL for API keys."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from app.db import Database
from app.domain.auth import ApiKey, Permission, Role
from app.domain.pagination import CreatedKey, Page, PageRequest

_COLUMNS = (
    "id, organization_id, project_id, name, prefix, secret_hash, role, permissions, is_platform_admin, "
    "expires_at, revoked_at, last_used_at, created_at, rate_limit_per_minute"
)


def _api_key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        id=row["id"],
        organization_id=row["organization_id"],
        project_id=row["project_id"],
        name=row["name"],
        prefix=row["prefix"],
        secret_hash=bytes(row["secret_hash"]),
        role=Role(row["role"]) if row["role"] else None,
        permissions=frozenset(Permission(p) for p in row["permissions"]),
        is_platform_admin=row["is_platform_admin"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
        created_at=row["created_at"],
        rate_limit_per_minute=row["rate_limit_per_minute"],
    )


class ApiKeyRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, key_id: UUID) -> ApiKey | None:
        row = await self.db.fetchrow(f"SELECT {_COLUMNS} FROM api_keys WHERE id = $1", key_id)
        return _api_key(row) if row else None

    async def get_many(self, ids: list[UUID]) -> list[ApiKey]:
        rows = await self.db.fetch(f"SELECT {_COLUMNS} FROM api_keys WHERE id = ANY($1)", ids)
        return [_api_key(r) for r in rows]

    async def get_by_prefix(self, prefix: str) -> ApiKey | None:
        row = await self.db.fetchrow(f"SELECT {_COLUMNS} FROM api_keys WHERE prefix = $1", prefix)
        return _api_key(row) if row else None

    async def list_for_organization(
        self, organization_id: UUID, page: PageRequest[CreatedKey], only_project: UUID | None = None
    ) -> Page[ApiKey]:
        """The organization's keys; with `only_project`, only the keys bound to that project."""
        after = page.after
        rows = await self.db.fetch(
            f"""SELECT {_COLUMNS} FROM api_keys
                WHERE organization_id = $1 AND ($2::uuid IS NULL OR project_id = $2)
                  AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4))
                ORDER BY created_at, id LIMIT $5""",
            organization_id,
            only_project,
            after.created_at if after else None,
            after.id if after else None,
            page.first + 1,
        )
        return Page.from_rows([_api_key(r) for r in rows], page.first)

    async def insert(
        self,
        *,
        key_id: UUID,
        organization_id: UUID | None,
        project_id: UUID | None,
        name: str,
        prefix: str,
        secret_hash: bytes,
        role: Role | None,
        permissions: frozenset[Permission],
        is_platform_admin: bool,
        expires_at: datetime | None,
        rate_limit_per_minute: int | None,
    ) -> ApiKey:
        row = await self.db.fetchrow(
            f"""INSERT INTO api_keys (id, organization_id, project_id, name, prefix, secret_hash, role,
                    permissions, is_platform_admin, expires_at, rate_limit_per_minute)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {_COLUMNS}""",
            key_id,
            organization_id,
            project_id,
            name,
            prefix,
            secret_hash,
            role.value if role else None,
            sorted(p.value for p in permissions),
            is_platform_admin,
            expires_at,
            rate_limit_per_minute,
        )
        assert row is not None
        return _api_key(row)

    async def revoke(self, key_id: UUID) -> ApiKey | None:
        row = await self.db.fetchrow(
            f"""UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
                RETURNING {_COLUMNS}""",
            key_id,
        )
        return _api_key(row) if row else None

    async def record_last_use(self, uses: dict[UUID, datetime]) -> None:
        """One statement for a whole batch of buffered last-use times."""
        if not uses:
            return
        await self.db.execute(
            """UPDATE api_keys AS k SET last_used_at = u.used_at
               FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, used_at)
               WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.used_at)""",
            list(uses.keys()),
            list(uses.values()),
        )
