"""SQL for connections. Ciphertexts are written here but read back only by `credentials`: every
other query returns whether a credential is set, never its ciphertext."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from app.db import Database
from app.domain.connections import Connection
from app.domain.credentials import EncryptedCredentials
from app.domain.destinations import Destination
from app.domain.enums import Provider
from app.domain.pagination import CreatedKey, Page, PageRequest
from app.domain.values import Maybe, UnsetType
from app.repositories.constraints import stored_facts

_COLUMNS = (
    "id, organization_id, name, provider, description, token_ciphertext IS NOT NULL AS has_token, "
    "client_key_ciphertext IS NOT NULL AS has_client_key, created_at, updated_at, model_url, "
    "provider_settings"
)


def _connection(row: asyncpg.Record) -> Connection:
    return Connection(
        id=row["id"],
        organization_id=row["organization_id"],
        name=row["name"],
        provider=Provider(row["provider"]),
        description=row["description"],
        has_token=row["has_token"],
        has_client_key=row["has_client_key"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        model_url=row["model_url"],
        provider_settings=dict(row["provider_settings"]),
    )


def _change(value: Maybe[bytes | None]) -> tuple[bool, bytes | None]:
    """(replace?, new ciphertext) for one secret column: UNSET keeps it, None clears it."""
    return (False, None) if isinstance(value, UnsetType) else (True, value)


class ConnectionRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, connection_id: UUID) -> Connection | None:
        row = await self.db.fetchrow(f"SELECT {_COLUMNS} FROM connections WHERE id = $1", connection_id)
        return _connection(row) if row else None

    async def get_many(self, ids: list[UUID]) -> list[Connection]:
        rows = await self.db.fetch(f"SELECT {_COLUMNS} FROM connections WHERE id = ANY($1)", ids)
        return [_connection(r) for r in rows]

    async def list_for_organization(
        self, organization_id: UUID, page: PageRequest[CreatedKey]
    ) -> Page[Connection]:
        after = page.after
        rows = await self.db.fetch(
            f"""SELECT {_COLUMNS} FROM connections
                WHERE organization_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
                ORDER BY created_at, id LIMIT $4""",
            organization_id,
            after.created_at if after else None,
            after.id if after else None,
            page.first + 1,
        )
        return Page.from_rows([_connection(r) for r in rows], page.first)

    async def credentials(self, connection_id: UUID) -> EncryptedCredentials | None:
        row = await self.db.fetchrow(
            """SELECT token_ciphertext, client_key_ciphertext, secret_key_ciphertext
               FROM connections WHERE id = $1""",
            connection_id,
        )
        if row is None:
            return None
        return EncryptedCredentials(
            row["token_ciphertext"], row["client_key_ciphertext"], row["secret_key_ciphertext"]
        )

    async def insert(
        self,
        *,
        connection_id: UUID,
        organization_id: UUID,
        name: str,
        provider: Provider,
        description: str | None,
        destination: Destination,
        credentials: EncryptedCredentials,
    ) -> Connection:
        with stored_facts():
            row = await self.db.fetchrow(
                f"""INSERT INTO connections (id, organization_id, name, provider, description, model_url,
                        provider_settings, token_ciphertext, client_key_ciphertext, secret_key_ciphertext)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {_COLUMNS}""",
                connection_id,
                organization_id,
                name,
                provider.value,
                description,
                destination.model_url,
                dict(destination.settings),
                credentials.token,
                credentials.client_key,
                credentials.secret_key,
            )
        return _connection(row)

    async def lock(self, connection_id: UUID) -> Connection | None:
        """The connection, locked until the transaction ends: no model can start using it meanwhile."""
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} FROM connections WHERE id = $1 FOR UPDATE", connection_id
        )
        return _connection(row) if row else None

    async def update(
        self,
        connection_id: UUID,
        *,
        name: str,
        description: str | None,
        destination: Destination,
        token: Maybe[bytes | None],
        client_key: Maybe[bytes | None],
        secret_key: Maybe[bytes | None],
    ) -> Connection:
        """Sets name, description and destination; each secret column is kept (UNSET), replaced, or
        cleared (None)."""
        with stored_facts():
            row = await self.db.fetchrow(
                f"""UPDATE connections
                    SET name = $2, description = $3, model_url = $4, provider_settings = $5,
                        token_ciphertext = CASE WHEN $6 THEN $7 ELSE token_ciphertext END,
                        client_key_ciphertext = CASE WHEN $8 THEN $9 ELSE client_key_ciphertext END,
                        secret_key_ciphertext = CASE WHEN $10 THEN $11 ELSE secret_key_ciphertext END,
                        updated_at = now()
                    WHERE id = $1 RETURNING {_COLUMNS}""",
                connection_id,
                name,
                description,
                destination.model_url,
                dict(destination.settings),
                *_change(token),
                *_change(client_key),
                *_change(secret_key),
            )
        return _connection(row)

    async def delete(self, connection_id: UUID) -> None:
        await self.db.execute("DELETE FROM connections WHERE id = $1", connection_id)

    async def model_names_using(self, connection_id: UUID) -> list[str]:
        rows = await self.db.fetch(
            "SELECT name FROM models WHERE connection_id = $1 ORDER BY name", connection_id
        )
        return [r["name"] for r in rows]
