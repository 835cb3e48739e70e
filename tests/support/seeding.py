"""Test data for a server that runs as a separate process: the same service calls as
tests/support/factories.py, made through a Services of the test's own on that database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.config import Settings
from app.db import Database
from app.services.container import Services
from tests.support.factories import Tenant, make_platform_admin_key, make_tenant
from tests.support.process import TEST_SECRET_KEYS


@asynccontextmanager
async def seeded_tenant(database_url: str, name: str = "Acme") -> AsyncIterator[tuple[Tenant, str]]:
    """A tenant (with a key per role) and a platform-admin key in the database at `database_url`."""
    settings = Settings(database_url=database_url, secret_keys=TEST_SECRET_KEYS)
    db = await Database.connect(database_url, min_size=1, max_size=2)
    services = Services(settings, db, database_url)
    try:
        yield await make_tenant(services, name), await make_platform_admin_key(services)
    finally:
        await services.providers.close()
        await db.close()
