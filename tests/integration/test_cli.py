"""The command line, run as a real process against the test database."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from pathlib import Path

import aiohttp

from app.domain.auth import Role
from app.domain.ids import encode_id
from tests.conftest import TEST_SECRET_KEYS, LiveServer
from tests.support.factories import make_tenant
from tests.support.graphql import GraphQLClient

REPO = Path(__file__).resolve().parents[2]
KEY = re.compile(r"^mg_[0-9a-f]{12}_[A-Za-z0-9_-]+$")


async def run_cli(database_url: str, *args: str, command: tuple[str, ...] = ()) -> tuple[int, str, str]:
    """`python -m app ARGS`, or `command ARGS` (the console script)."""
    env = {**os.environ, "DATABASE_URL": database_url, "MODELGATE_SECRET_KEYS": TEST_SECRET_KEYS}
    process = await asyncio.create_subprocess_exec(
        *(command or (sys.executable, "-m", "app")),
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


async def refusal(database_url: str, *args: str) -> str:
    """Runs a command that must be refused: exit status 1 and one line on stderr, never a traceback."""
    code, _, err = await run_cli(database_url, *args)
    assert code == 1
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("modelgate: ")
    return lines[0]


async def test_create_api_key_takes_the_ids_the_api_returns(
    database_url: str, server: LiveServer, http: aiohttp.ClientSession
) -> None:
    tenant = await make_tenant(server.services, "Globex")
    admin = GraphQLClient(http, server.url, tenant.keys[Role.ADMIN])
    organization = (await admin.data("{ viewer { organization { id projects { nodes { id } } } } }"))[
        "viewer"
    ]["organization"]
    code, out, err = await run_cli(
        database_url,
        "create-api-key",
        "--organization",
        organization["id"],
        "--project",
        organization["projects"]["nodes"][0]["id"],
        "--name",
        "from-graphql-ids",
    )
    assert code == 0, err
    key = out.strip().splitlines()[-1]
    data = await GraphQLClient(http, server.url, key).data("{ viewer { project { name } } }")
    assert data["viewer"]["project"]["name"] == tenant.project.name


async def test_create_api_key_refusals_are_one_clear_line(database_url: str, server: LiveServer) -> None:
    tenant = await make_tenant(server.services, "Initech")
    organization_gid = encode_id("Organization", tenant.organization.id)
    project_gid = encode_id("Project", tenant.project.id)
    create = ("create-api-key", "--name", "x")

    line = await refusal(database_url, *create, "--organization", "not-an-id")
    assert line == "modelgate: --organization 'not-an-id' is neither an Organization id nor a UUID"

    line = await refusal(database_url, *create, "--organization", project_gid)
    assert line == f"modelgate: --organization {project_gid!r} is the id of a Project, not of an Organization"

    unknown = encode_id("Organization", uuid.uuid4())
    line = await refusal(database_url, *create, "--organization", unknown)
    assert line == f"modelgate: --organization: no organization {unknown}"

    other = await make_tenant(server.services, "Hooli")
    foreign_project = encode_id("Project", other.project.id)
    in_organization = (*create, "--organization", organization_gid)
    line = await refusal(database_url, *in_organization, "--project", foreign_project)
    assert line == f"modelgate: --project: no project {foreign_project} in organization {organization_gid}"

    line = await refusal(database_url, *in_organization, "--project", organization_gid)
    assert "is the id of an Organization, not of a Project" in line


async def test_an_unreachable_database_is_one_clear_line() -> None:
    # A port nothing listens on; the password must not be echoed back.
    unreachable = "postgresql://modelgate:hunter2@127.0.0.1:9/modelgate"
    for args in (("migrate",), ("create-api-key", "--platform-admin", "--name", "x"), ("seed-catalog",)):
        line = await refusal(unreachable, *args)
        assert line.startswith("modelgate: cannot reach the database at 127.0.0.1:9/modelgate (")
        assert "DATABASE_URL" in line
        assert "hunter2" not in line


async def test_the_modelgate_console_command(database_url: str) -> None:
    """`pip install` puts `modelgate` beside the interpreter (.venv/bin): no virtualenv to activate."""
    console = Path(sys.executable).with_name("modelgate")
    assert console.is_file()
    code, out, _ = await run_cli(database_url, "--help", command=(str(console),))
    assert code == 0
    assert out.startswith("usage: modelgate ")
    code, out, _ = await run_cli(
        database_url, "create-api-key", "--platform-admin", "--name", "ops", command=(str(console),)
    )
    assert code == 0
    assert KEY.match(out.strip().splitlines()[-1])


async def test_migrate_command(database_url: str) -> None:
    code, out, _ = await run_cli(database_url, "migrate")
    assert code == 0
    assert "applied 0 migration(s)" in out  # the test database is already migrated
