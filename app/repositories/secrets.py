"""SQL for key rotation: every encrypted column of every table, read in batches and rewritten with a
compare-and-swap so that a concurrent write is never overwritten."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from app.db import Database
from app.domain.credentials import CIPHERTEXT_COLUMNS

# Every table and column that holds a ciphertext (app/secrets.py). Table and column names cannot be
# query parameters; only these constants are ever spliced into SQL.
SECRET_COLUMNS: dict[str, tuple[str, ...]] = {
    "connections": CIPHERTEXT_COLUMNS,
    "models": CIPHERTEXT_COLUMNS,
    "webhooks": ("secret_key_ciphertext",),  # signing secrets (app/services/webhooks.py)
}


@dataclass(frozen=True, slots=True)
class StoredSecret:
    row_id: UUID
    ciphertext: bytes


@dataclass(frozen=True, slots=True)
class Reencrypted:
    row_id: UUID
    old: bytes
    new: bytes


def _checked(table: str, column: str) -> tuple[str, str]:
    if column not in SECRET_COLUMNS.get(table, ()):
        raise ValueError(f"{table}.{column} does not hold secrets")
    return table, column


class SecretRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def batch(self, table: str, column: str, after: UUID | None, limit: int) -> list[StoredSecret]:
        """The next `limit` set ciphertexts of one column, in id order after `after`."""
        table, column = _checked(table, column)
        rows = await self.db.fetch(
            f"""SELECT id, {column} AS ciphertext FROM {table}
                WHERE {column} IS NOT NULL AND ($1::uuid IS NULL OR id > $1)
                ORDER BY id LIMIT $2""",
            after,
            limit,
        )
        return [StoredSecret(r["id"], r["ciphertext"]) for r in rows]

    async def replace(self, table: str, column: str, changes: list[Reencrypted]) -> int:
        """Writes each new ciphertext only where the old one is still stored; returns how many were
        written. (PostgreSQL re-checks the condition on a row another transaction changed meanwhile.)"""
        table, column = _checked(table, column)
        if not changes:
            return 0
        status = await self.db.execute(
            f"""UPDATE {table} AS t SET {column} = u.new
                FROM unnest($1::uuid[], $2::bytea[], $3::bytea[]) AS u(id, old, new)
                WHERE t.id = u.id AND t.{column} = u.old""",
            [c.row_id for c in changes],
            [c.old for c in changes],
            [c.new for c in changes],
        )
        return int(status.split()[-1])
