"""Migrations: applied in order, once, even when several instances start together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from app.migrations import migrate, migration_files
from tests.support.postgres import create_database, drop_database, with_database


@pytest.fixture
async def empty_database(postgres_admin_dsn: str) -> AsyncIterator[str]:
    name = await create_database(postgres_admin_dsn)
    try:
        yield with_database(postgres_admin_dsn, name)
    finally:
        await drop_database(postgres_admin_dsn, name)


async def test_concurrent_starts_apply_each_migration_exactly_once(empty_database: str) -> None:
    results = await asyncio.gather(*(migrate(empty_database) for _ in range(6)))
    expected = [version for version, _ in migration_files()]
    # Exactly one instance applied everything; the others found nothing left to do.
    assert sorted(results, key=len) == [[]] * 5 + [expected]
    conn = await asyncpg.connect(empty_database)
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
    finally:
        await conn.close()
    assert [r["version"] for r in rows] == expected


async def test_a_second_run_applies_nothing(empty_database: str) -> None:
    assert await migrate(empty_database)
    assert await migrate(empty_database) == []


def test_migration_files_are_numbered_without_gaps() -> None:
    versions = [version for version, _ in migration_files()]
    assert versions == list(range(1, len(versions) + 1))
