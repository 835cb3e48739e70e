"""What the command line is given, checked before anything runs: ids in either of the forms a user
has at hand (the API's global ids, as GraphQL returns them, or raw UUIDs) and a database it can
reach. A mistake ends the command with one line on stderr, never a traceback."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg

from app.domain.ids import decode_any
from app.domain.values import with_article

# What asyncpg raises when it cannot open a session: nothing listens or the host is unknown
# (OSError), no answer in time, the server is starting, or it refuses these credentials or database.
_UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.CannotConnectNowError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidCatalogNameError,
)


class CommandError(SystemExit):
    """Ends the command: `python -m app` prints the message on stderr and exits 1."""

    def __init__(self, message: str) -> None:
        super().__init__(f"modelgate: {message}")


def object_id(text: str, type_name: str, option: str) -> UUID:
    """The UUID given as `option`: a raw UUID, or the API's global id of a `type_name`."""
    try:
        return UUID(text)
    except ValueError:
        pass
    decoded = decode_any(text)
    if decoded is None:
        raise CommandError(f"{option} {text!r} is neither {with_article(type_name)} id nor a UUID")
    found_type, value = decoded
    if found_type != type_name:
        raise CommandError(
            f"{option} {text!r} is the id of {with_article(found_type)}, not of {with_article(type_name)}"
        )
    return value


def database_location(dsn: str) -> str:
    """Host, port and database of a DSN, without its user or password."""
    parts = urlsplit(dsn)
    host = parts.hostname or "localhost"
    return f"{host}:{parts.port or 5432}{parts.path or ''}"


async def _probe(dsn: str, seconds: float) -> None:
    connection = await asyncpg.connect(dsn, timeout=seconds)
    await connection.close()


def require_database(dsn: str, timeout: float) -> None:
    """Opens and closes one session, so that an unreachable database is one clear line."""
    try:
        asyncio.run(_probe(dsn, timeout))
    except _UNREACHABLE as exc:
        reason = str(exc) or type(exc).__name__
        raise CommandError(
            f"cannot reach the database at {database_location(dsn)} ({reason}); "
            "start PostgreSQL or set DATABASE_URL to one that runs"
        ) from None
