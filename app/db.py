"""The database: the asyncpg pool and the unit of work.

Repositories use `Database` rather than the pool directly so that a database that cannot be
reached, or stops answering, is reported one way everywhere: `DatabaseUnavailable`, within the
acquire timeout (waiting for a connection) plus the query timeout (waiting for each statement).

A unit of work is `async with db.transaction():` around repository calls: every statement the task
runs inside the block joins the transaction, so no connection is passed around, and the whole is
committed at the end of the block or rolled back when it fails. A transaction belongs to the task
that opened it (a task started inside it runs its statements on their own).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

log = logging.getLogger(__name__)

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


@dataclass(frozen=True, slots=True)
class _Transaction:
    connection: asyncpg.Connection
    task: asyncio.Task[Any] | None


_current: ContextVar[_Transaction | None] = ContextVar("modelgate_transaction", default=None)


def _joined() -> asyncpg.Connection | None:
    """The connection of the transaction this task opened, if it is inside one."""
    transaction = _current.get()
    if transaction is None or transaction.task is not asyncio.current_task():
        return None
    return transaction.connection


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
        except asyncpg.exceptions.TransactionRollbackError as exc:  # a deadlock or serialization failure
            raise DatabaseUnavailable("the database asked to try again") from exc
        finally:
            await self._release(conn)

    async def _release(self, conn: asyncpg.Connection) -> None:
        """Returns `conn` to the pool. The pool resets a connection before reuse; when the server
        stops answering between the caller's last statement and that reset, the reset times out and
        asyncpg closes the connection. What the caller did stands (and whatever it raised goes on),
        so that is logged, not raised in its place."""
        try:
            await self.pool.release(conn)
        except _CONNECTIVITY_ERRORS:
            log.warning("the database did not answer a connection's reset; the connection was closed")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """A unit of work: the statements this task runs inside the block, committed together (a
        block inside another joins it)."""
        if _joined() is not None:
            yield
            return
        async with self.connection() as conn:
            transaction = conn.transaction()
            await transaction.start()
            token = _current.set(_Transaction(conn, asyncio.current_task()))
            try:
                yield
            except _UNKNOWN_STATE:
                raise  # no ROLLBACK to wait for: `connection` closes the connection, which ends it
            except BaseException:
                await transaction.rollback()
                raise
            finally:
                _current.reset(token)
            await transaction.commit()

    @asynccontextmanager
    async def _statement(self) -> AsyncIterator[asyncpg.Connection]:
        """The unit of work's connection, or one of the pool's for a statement on its own."""
        joined = _joined()
        if joined is not None:
            yield joined
            return
        async with self.connection() as conn:
            yield conn

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async with self._statement() as conn:
            rows: list[asyncpg.Record] = await conn.fetch(query, *args)
            return rows

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        async with self._statement() as conn:
            row: asyncpg.Record | None = await conn.fetchrow(query, *args)
            return row

    async def fetchval(self, query: str, *args: Any) -> Any:
        async with self._statement() as conn:
            return await conn.fetchval(query, *args)

    async def execute(self, query: str, *args: Any) -> str:
        async with self._statement() as conn:
            status: str = await conn.execute(query, *args)
            return status

    async def executemany(self, query: str, args: list[tuple[Any, ...]]) -> None:
        async with self._statement() as conn:
            await conn.executemany(query, args)

    async def notify(self, channel: str, payload: str) -> None:
        await self.execute("SELECT pg_notify($1, $2)", channel, payload)
