"""The database: the asyncpg pool, migrations, the embedded PostgreSQL, LISTEN/NOTIFY.

Repositories use `Database` rather than the pool directly so that a database that cannot be
reached, or stops answering, is reported one way everywhere: `DatabaseUnavailable`, within the
acquire timeout (waiting for a connection) plus the query timeout (waiting for each statement).
"""

from __future__ import annotations

import asyncio
import logging
import re
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import psutil

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "sql"
_MIGRATION_LOCK_ID = 0x6D6F64656C676174  # "modelgat": one advisory lock for every instance
_MIGRATION_FILE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

_CONNECTIVITY_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.InterfaceError,
)


# A statement that failed with one of these (or was cancelled) left its connection in a state
# nobody knows: it may still run on the server, and its cancellation may never arrive.
_UNKNOWN_STATE = (*_CONNECTIVITY_ERRORS, asyncio.CancelledError)


class DatabaseUnavailable(Exception):
    """The database could not be reached in time. Safe to report as SERVICE_UNAVAILABLE."""


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, schema="pg_catalog"
        )


class Database:
    def __init__(self, pool: asyncpg.Pool, acquire_timeout: float) -> None:
        self.pool = pool
        self.acquire_timeout = acquire_timeout

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 20,
        acquire_timeout: float = 5.0,
        query_timeout: float = 5.0,
    ) -> Database:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            init=_init_connection,
            timeout=acquire_timeout,
            # Every statement (BEGIN, COMMIT and the reset on release included) gives up after
            # this long: a database that stops answering must not hold a caller indefinitely.
            command_timeout=query_timeout,
            # The server gives up too, so that a statement the client gave up on (waiting for a
            # lock, say) is not left to run, or to commit, after its caller was told it failed.
            server_settings={"statement_timeout": str(round(query_timeout * 1000))},
            # Statements are small and hand-written: the default statement cache is right.
        )
        return cls(pool, acquire_timeout)

    async def close(self) -> None:
        try:
            await self.pool.close()
        except _CONNECTIVITY_ERRORS:
            # A server that does not answer within the query timeout is not waited for.
            log.warning("the database did not answer while closing its connections; they were dropped")
            self.pool.terminate()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            async with asyncio.timeout(self.acquire_timeout):
                conn = await self.pool.acquire()
        except _CONNECTIVITY_ERRORS as exc:
            raise DatabaseUnavailable("the database is unavailable") from exc
        try:
            yield conn
        except _UNKNOWN_STATE as exc:
            # Closed rather than returned to the pool: resetting it would wait on a server that may
            # not answer, and the next user could inherit a statement still running. The pool opens
            # a new connection when one is needed (the server rolls back what this one left open).
            conn.terminate()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise DatabaseUnavailable("the database connection failed or did not answer in time") from exc
        except asyncpg.exceptions.QueryCanceledError as exc:  # statement_timeout: the connection is fine
            raise DatabaseUnavailable("the database did not answer in time") from exc
        finally:
            await self.pool.release(conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.connection() as conn:
            transaction = conn.transaction()
            await transaction.start()
            try:
                yield conn
            except _UNKNOWN_STATE:
                raise  # no ROLLBACK to wait for: `connection` closes the connection, which ends it
            except BaseException:
                await transaction.rollback()
                raise
            await transaction.commit()

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async with self.connection() as conn:
            rows: list[asyncpg.Record] = await conn.fetch(query, *args)
            return rows

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        async with self.connection() as conn:
            row: asyncpg.Record | None = await conn.fetchrow(query, *args)
            return row

    async def fetchval(self, query: str, *args: Any) -> Any:
        async with self.connection() as conn:
            return await conn.fetchval(query, *args)

    async def execute(self, query: str, *args: Any) -> str:
        async with self.connection() as conn:
            status: str = await conn.execute(query, *args)
            return status

    async def notify(self, channel: str, payload: str) -> None:
        await self.execute("SELECT pg_notify($1, $2)", channel, payload)


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


class EmbeddedPostgres:
    """A PostgreSQL server of our own (pgserver) with its data in `data_dir`, reused across starts.

    pgserver lists the processes using the server in `.handle_pids.json` in the data directory, and
    the last one to leave stops it. A process killed before its exit hooks ran (SIGKILL, the OOM
    killer) stays listed for good, so that no later exit is the last and the server is left running
    after each one. Handles of processes that are gone are forgotten on the way in and on the way out.
    """

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        logging.getLogger("pgserver").setLevel(logging.WARNING)  # it narrates every command at INFO
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            from pgserver.postgres_server import get_server

            pgdata = data_dir.resolve()
            self._handles = pgdata / ".handle_pids.json"
            _forget_dead_handles(self._handles)
            self._server = get_server(str(pgdata), cleanup_mode="stop")

    @property
    def dsn(self) -> str:
        return str(self._server.get_uri())

    def stop(self) -> None:
        """Leaves the server, stopping it when no live process uses it any more."""
        _forget_dead_handles(self._handles)
        self._server.cleanup()


def _forget_dead_handles(handles: Path) -> None:
    """Drops from pgserver's handle list the processes that cannot hold a handle any more: gone, or
    a later process that was given a dead one's id (created after the list was last written)."""
    from pgserver.postgres_server import PostgresServer

    with PostgresServer._lock:  # pgserver's own lock over every server's handle list
        try:
            listed: list[int] = orjson.loads(handles.read_bytes())
            written = handles.stat().st_mtime
        except FileNotFoundError:
            return
        alive = [pid for pid in listed if _may_hold_handle(pid, written)]
        if alive != listed:
            log.warning(
                "forgot embedded PostgreSQL handles of processes that are gone: %s",
                sorted(set(listed) - set(alive)),
            )
            handles.write_bytes(orjson.dumps(alive))


def _may_hold_handle(pid: int, written: float) -> bool:
    try:
        process = psutil.Process(pid)
        gone = process.status() == psutil.STATUS_ZOMBIE
        return not gone and float(process.create_time()) <= written + 1
    except psutil.NoSuchProcess:
        return False


@asynccontextmanager
async def listening(dsn: str, channel: str, callback: Callable[[str], None]) -> AsyncIterator[None]:
    """LISTEN on `channel` on a dedicated connection for the duration of the block."""
    conn = await asyncpg.connect(dsn)

    def on_notify(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        callback(payload)

    await conn.add_listener(channel, on_notify)
    try:
        yield
    finally:
        try:
            await conn.remove_listener(channel, on_notify)
        finally:
            await conn.close()
