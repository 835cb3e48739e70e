"""The real server process set up for calls: its demo keys, models made through its API, and its
usage rows read straight from the database."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg

from tests.support.catalog import create_system_model
from tests.support.graphql import GraphQLClient
from tests.support.process import ServerProcess


@dataclass(frozen=True)
class DemoKeys:
    platform_admin: str
    project: str  # a DEVELOPER key of the demo project (PRO plan)


def demo_keys(server: ServerProcess) -> DemoKeys:
    """The keys a first start prints."""
    printed = "\n".join(server.stdout)
    admin = re.search(r"Platform-admin key: (mg_\S+)", printed)
    project = re.search(r"Demo project key: (mg_\S+)", printed)
    assert admin, printed
    assert project, printed
    return DemoKeys(admin.group(1), project.group(1))


async def openai_model(
    session: aiohttp.ClientSession, server: ServerProcess, name: str, upstream_url: str
) -> str:
    """A system model served by a fake OpenAI upstream; its global id."""
    admin = GraphQLClient(session, server.url, demo_keys(server).platform_admin)
    model = await create_system_model(admin, name, modelUrl=f"{upstream_url}/v1")
    return str(model["id"])


async def echo_model(
    session: aiohttp.ClientSession, server: ServerProcess, name: str, word_delay_ms: int
) -> str:
    """A system ECHO model writing a word every `word_delay_ms`; its global id."""
    admin = GraphQLClient(session, server.url, demo_keys(server).platform_admin)
    model = await create_system_model(
        admin, name, provider="ECHO", modelUrl=None, providerSettings={"wordDelayMs": str(word_delay_ms)}
    )
    return str(model["id"])


async def usage_outcomes(database_url: str) -> list[dict[str, Any]]:
    """(operation, status, error_code) of every usage row, oldest first."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT operation, status, error_code, request_id FROM usage_records ORDER BY created_at, id"
        )
    finally:
        await conn.close()
    return [dict(r) for r in rows]
