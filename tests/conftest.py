"""Shared fixtures: a real PostgreSQL, a fresh database per test, a live server on loopback."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from app.config import Settings
from app.embedded_postgres import EmbeddedPostgres
from app.migrations import migrate
from app.server import create_app
from app.server_keys import SERVICES
from app.services.container import Services
from tests.support.factories import Tenant, make_platform_admin_key, make_tenant
from tests.support.graphql import GraphQLClient
from tests.support.postgres import create_database, drop_database, scratch_data_dir, with_database


@pytest.fixture(scope="session")
def postgres_admin_dsn() -> Iterator[str]:
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    data_dir = scratch_data_dir("modelgate-test-pg-")
    embedded = EmbeddedPostgres(data_dir)
    try:
        yield embedded.dsn
    finally:
        embedded.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def template_database(postgres_admin_dsn: str) -> Iterator[str]:
    name = asyncio.run(create_database(postgres_admin_dsn))
    asyncio.run(migrate(with_database(postgres_admin_dsn, name)))
    try:
        yield name
    finally:
        asyncio.run(drop_database(postgres_admin_dsn, name))


@pytest.fixture
async def database_url(postgres_admin_dsn: str, template_database: str) -> AsyncIterator[str]:
    name = await create_database(postgres_admin_dsn, template=template_database)
    try:
        yield with_database(postgres_admin_dsn, name)
    finally:
        await drop_database(postgres_admin_dsn, name)


# A throwaway key ring for tests only, so that no test makes a development key in .data/.
TEST_SECRET_KEYS = "test1:1Fobe5J4/J5f3kycscsaG1V7IJ0Q60K4TJjm0EPvyp4="


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "secret_keys": TEST_SECRET_KEYS,
        "allow_private_upstreams": True,
        "flush_interval": 0.2,
        "db_acquire_timeout": 2.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@dataclass
class LiveServer:
    url: str
    app: web.Application

    @property
    def services(self) -> Services:
        return self.app[SERVICES]


@asynccontextmanager
async def running_server(settings: Settings) -> AsyncIterator[LiveServer]:
    app = create_app(settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield LiveServer(url=str(server.make_url("")).rstrip("/"), app=app)
    finally:
        await server.close()


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[LiveServer]:
    async with running_server(settings) as live:
        yield live


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def gql(server: LiveServer, http: aiohttp.ClientSession) -> GraphQLClient:
    """An anonymous client; `gql.with_key(key)` for an authenticated one."""
    return GraphQLClient(http, server.url)


@pytest.fixture
async def admin_key(server: LiveServer) -> str:
    return await make_platform_admin_key(server.services)


@pytest.fixture
async def tenant(server: LiveServer) -> Tenant:
    return await make_tenant(server.services, "Acme")


@pytest.fixture
async def other_tenant(server: LiveServer) -> Tenant:
    return await make_tenant(server.services, "Globex")
