"""A real PostgreSQL for the tests: TEST_DATABASE_URL or DATABASE_URL if set, else an embedded
server in a temporary directory. Each test gets a database of its own, cloned from a template
that was migrated once per session."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def create_database(admin_dsn: str, template: str | None = None) -> str:
    name = f"mg_test_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        clause = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{clause}')
    finally:
        await conn.close()
    return name


async def drop_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def scratch_data_dir(prefix: str) -> Path:
    """A new directory for a test PostgreSQL's data: in memory (/dev/shm) where the machine has it.
    PostgreSQL makes and removes hundreds of small files per CREATE and DROP DATABASE, which on a
    disk mounted with `discard` took ~0.3 s a database (~10 ms in memory). Not under pytest's
    tmp_path: run as root, pgserver runs PostgreSQL as an unprivileged user, which cannot enter
    pytest's private (0700) temporary directories."""
    memory = Path("/dev/shm")
    parent = memory if memory.is_dir() and os.access(memory, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent)).resolve()
