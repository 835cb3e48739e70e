"""Every statement has a deadline: a database that does not answer in time (here: a lock held by
another session, as in a lock storm) is SERVICE_UNAVAILABLE within the query timeout, the statement
is not left to run after its caller gave up, and the pool goes on working."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest

from app.db import Database, DatabaseUnavailable
from app.domain.auth import Role
from app.services import limits
from tests.conftest import make_settings, running_server
from tests.support.catalog import create_system_model
from tests.support.factories import make_platform_admin_key, make_tenant
from tests.support.gateway import kinds, stream_events, stream_input, usage_rows, ws_url
from tests.support.graphql import GraphQLClient

QUERY_TIMEOUT = 0.5


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    # One connection: what a timed-out statement leaves behind is what the next caller gets.
    database = await Database.connect(
        database_url, max_size=1, acquire_timeout=1, query_timeout=QUERY_TIMEOUT
    )
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def organization_id(db: Database) -> uuid.UUID:
    organization_id = uuid.uuid4()
    await db.execute("INSERT INTO organizations (id, name, plan) VALUES ($1, 'Acme', 'PRO')", organization_id)
    return organization_id


async def test_a_statement_waiting_on_a_lock_gives_up_in_time_and_does_not_run_later(
    db: Database, database_url: str, organization_id: uuid.UUID
) -> None:
    holder = await asyncpg.connect(database_url)
    try:
        async with holder.transaction():
            await holder.execute("SELECT 1 FROM organizations WHERE id = $1 FOR UPDATE", organization_id)
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailable):
                await db.execute("UPDATE organizations SET name = 'Late' WHERE id = $1", organization_id)
            assert time.monotonic() - started < QUERY_TIMEOUT + 0.5
            assert await db.fetchval("SELECT 1") == 1  # the pool's only connection still serves
        # The lock is free now: the update the caller was told had failed must not happen.
        assert (
            await holder.fetchval("SELECT name FROM organizations WHERE id = $1", organization_id) == "Acme"
        )
    finally:
        await holder.close()


async def add_project_and_rename(db: Database, organization_id: uuid.UUID) -> None:
    async with db.transaction():
        await db.execute(
            "INSERT INTO projects (id, organization_id, name) VALUES ($1, $2, 'Early')",
            uuid.uuid4(),
            organization_id,
        )
        await db.execute("UPDATE organizations SET name = 'Late' WHERE id = $1", organization_id)


async def test_a_transaction_that_times_out_leaves_nothing_behind(
    db: Database, database_url: str, organization_id: uuid.UUID
) -> None:
    holder = await asyncpg.connect(database_url)
    try:
        async with holder.transaction():
            # Updates of the row wait; references to it (a new project's foreign key) do not.
            await holder.execute(
                "SELECT 1 FROM organizations WHERE id = $1 FOR NO KEY UPDATE", organization_id
            )
            with pytest.raises(DatabaseUnavailable):
                await add_project_and_rename(db, organization_id)
        async with db.connection() as conn:
            assert not conn.is_in_transaction()
        assert (
            await db.fetchval("SELECT count(*) FROM projects WHERE organization_id = $1", organization_id)
            == 0
        )
        assert await db.fetchval("SELECT name FROM organizations WHERE id = $1", organization_id) == "Acme"
    finally:
        await holder.close()


async def test_a_connection_that_stops_answering_before_its_reset_is_closed_and_the_work_stands(
    db: Database, organization_id: uuid.UUID, caplog: pytest.LogCaptureFixture
) -> None:
    # Only this connection's server process is stopped (SIGSTOP): its statement has been answered,
    # then the database stops answering before the pool resets the connection for reuse.
    stopped: list[int] = []
    try:
        async with db.connection() as conn:
            await conn.execute("UPDATE organizations SET name = 'Kept' WHERE id = $1", organization_id)
            backend = await conn.fetchval("SELECT pg_backend_pid()")
            try:
                os.kill(backend, signal.SIGSTOP)
            except (ProcessLookupError, PermissionError):
                pytest.skip("the database's server processes are not this machine's (DATABASE_URL)")
            stopped.append(backend)
        # Leaving the block waited for the reset (at most the query timeout), then went on.
        assert "the connection was closed" in caplog.text
        assert await db.fetchval("SELECT name FROM organizations WHERE id = $1", organization_id) == "Kept"
    finally:
        for pid in stopped:  # whatever happened: a stopped backend would hold its database forever
            os.kill(pid, signal.SIGCONT)


async def test_readyz_answers_within_two_seconds_whatever_the_query_timeout(database_url: str) -> None:
    settings = make_settings(database_url, db_query_timeout=30.0)
    async with running_server(settings) as live, aiohttp.ClientSession() as http:
        holder = await asyncpg.connect(database_url)
        try:
            async with holder.transaction():
                await holder.execute("LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE")
                started = time.monotonic()
                async with http.get(f"{live.url}/readyz") as response:
                    assert response.status == 503
                    assert (await response.json())["status"] == "unavailable"
                assert time.monotonic() - started < 2
        finally:
            await holder.close()
        async with http.get(f"{live.url}/readyz") as response:
            assert response.status == 200


async def test_a_stream_whose_slot_lease_times_out_ends_with_a_retryable_error(database_url: str) -> None:
    settings = make_settings(database_url, db_query_timeout=QUERY_TIMEOUT)
    async with running_server(settings) as live, aiohttp.ClientSession() as http:
        admin = GraphQLClient(http, live.url, await make_platform_admin_key(live.services))
        tenant = await make_tenant(live.services, "Acme")
        echo = await create_system_model(admin, "echo", provider="ECHO", modelUrl=None)
        key = tenant.keys[Role.DEVELOPER]
        holder = await asyncpg.connect(database_url)
        try:
            async with holder.transaction():
                # Leasing stream slots locks the organization's row: here it waits, and gives up.
                await holder.execute(
                    "SELECT 1 FROM organizations WHERE id = $1 FOR UPDATE", tenant.organization.id
                )
                started = time.monotonic()
                events = await stream_events(ws_url(live.url), key, stream_input(model=echo["id"]), within=5)
                assert time.monotonic() - started < QUERY_TIMEOUT + 1.5
        finally:
            await holder.close()
        assert kinds(events) == ["ChatStreamError"]
        assert events[0]["code"] == "SERVICE_UNAVAILABLE"
        assert events[0]["retryable"] is True
        # Metered as what happened: refused for want of the database.
        (row,) = await usage_rows(live.services, 1)
        assert (row["status"], row["error_code"]) == ("ERROR", "SERVICE_UNAVAILABLE")
        await asyncio.sleep(limits.DATABASE_RETRY_AFTER)
        after = await stream_events(ws_url(live.url), key, stream_input(model=echo["id"]))
        assert kinds(after)[-1] == "ChatStreamEnd"
