"""Numbered migrations (`sql/NNN_name.sql`), applied in order, once, under an advisory lock so that
instances starting together do not both migrate."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import asyncpg

from app.db import Database

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "sql"
_MIGRATION_LOCK_ID = 0x6D6F64656C676174  # "modelgat": one advisory lock for every instance
_MIGRATION_FILE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql\Z")


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, Path]]:
    files = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_FILE.match(path.name)
        if not match:
            raise RuntimeError(f"migration file name not understood: {path.name}")
        files.append((int(match.group(1)), path))
    return files


async def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Applies pending migrations in order, each in its own transaction, under an advisory lock so
    that instances starting together do not both migrate. Returns the versions it applied."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_ID)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version integer PRIMARY KEY,
                       name text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            done = []
            for version, path in migration_files(directory):
                if version in applied:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, path.name
                    )
                log.info("applied migration", extra={"migration": path.name})
                done.append(version)
            return done
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_ID)
    finally:
        await conn.close()


async def pending_migrations(db: Database, directory: Path = MIGRATIONS_DIR) -> list[int]:
    rows = await db.fetch("SELECT version FROM schema_migrations")
    applied = {r["version"] for r in rows}
    return [v for v, _ in migration_files(directory) if v not in applied]
