"""The command line, run as a real process against the test database."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import aiohttp

from tests.conftest import TEST_SECRET_KEYS, LiveServer
from tests.support.factories import make_tenant
from tests.support.graphql import GraphQLClient

REPO = Path(__file__).resolve().parents[2]
KEY = re.compile(r"^mg_[0-9a-f]{12}_[A-Za-z0-9_-]+$")


async def run_cli(database_url: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "DATABASE_URL": database_url, "MODELGATE_SECRET_KEYS": TEST_SECRET_KEYS}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        *args,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_create_api_key_prints_only_the_key_on_its_last_line(
    database_url: str, server: LiveServer, http: aiohttp.ClientSession
) -> None:
    code, out, _ = await run_cli(database_url, "create-api-key", "--platform-admin", "--name", "ops")
    assert code == 0
    admin_key = out.strip().splitlines()[-1]
    assert KEY.match(admin_key)
    viewer = await GraphQLClient(http, server.url, admin_key).data("{ viewer { isPlatformAdmin } }")
    assert viewer["viewer"]["isPlatformAdmin"] is True

    tenant = await make_tenant(server.services, "Acme")
    code, out, _ = await run_cli(
        database_url,
        "create-api-key",
        "--organization",
        str(tenant.organization.id),
        "--project",
        str(tenant.project.id),
        "--role",
        "viewer",
        "--name",
        "ci",
    )
    assert code == 0
    key = out.strip().splitlines()[-1]
    data = await GraphQLClient(http, server.url, key).data("{ viewer { permissions project { name } } }")
    assert data["viewer"]["project"]["name"] == tenant.project.name
    assert "models:read" in data["viewer"]["permissions"]
    assert "llm:invoke" not in data["viewer"]["permissions"]


async def test_create_api_key_refuses_an_unknown_organization(database_url: str) -> None:
    code, _, err = await run_cli(
        database_url,
        "create-api-key",
        "--organization",
        "00000000-0000-0000-0000-000000000000",
        "--name",
        "x",
    )
    assert code != 0
    assert "no organization" in err


async def test_migrate_command(database_url: str) -> None:
    code, out, _ = await run_cli(database_url, "migrate")
    assert code == 0
    assert "applied 0 migration(s)" in out  # the test database is already migrated
