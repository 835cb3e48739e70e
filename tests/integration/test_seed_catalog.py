"""`python -m app seed-catalog`, run as a real process: it loads the starter catalog once."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from app.services.catalog_seed import STARTER_CATALOG
from tests.conftest import TEST_SECRET_KEYS, LiveServer
from tests.integration.test_cli import REPO
from tests.support.catalog import SYSTEM_UPDATE, model_names
from tests.support.factories import make_platform_admin_key
from tests.support.graphql import GraphQLClient

STARTER = json.loads(STARTER_CATALOG.read_text())["models"]


async def seed(database_url: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url, "MODELGATE_SECRET_KEYS": TEST_SECRET_KEYS}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "seed-catalog",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_seed_catalog_loads_the_starter_catalog_once(
    database_url: str, server: LiveServer, gql: GraphQLClient
) -> None:
    count = len(STARTER)
    assert count >= 10
    assert f"created {count} system model(s), 0 already present" in await seed(database_url)

    admin = gql.with_key(await make_platform_admin_key(server.services))
    names = await model_names(admin, {"kinds": ["SYSTEM"]})
    assert sorted(names) == sorted(entry["name"] for entry in STARTER)
    data = await admin.data(
        """{ models(first: 100, filter: {providers: [ECHO]}) {
             nodes { name provider lifecycleState isVisible hasToken } } }"""
    )
    echo = data["models"]["nodes"]
    assert len(echo) == 1
    assert echo[0]["provider"] == "ECHO"
    assert (echo[0]["lifecycleState"], echo[0]["isVisible"], echo[0]["hasToken"]) == ("ACTIVE", True, False)
    providers = {e["provider"] for e in STARTER}
    assert {"OPENAI", "ANTHROPIC", "AWS_BEDROCK", "MISTRAL", "ECHO"} <= providers

    # An operator's edit survives a second run, which creates nothing.
    first = (await admin.data("{ models(first: 1) { nodes { id name contextWindow } } }"))["models"]["nodes"][
        0
    ]
    edited = await admin.mutate(
        SYSTEM_UPDATE, {"id": first["id"], "contextWindow": 1234, "maxOutputTokens": 1000}
    )
    assert edited["userErrors"] == []
    assert f"created 0 system model(s), {count} already present" in await seed(database_url)
    assert sorted(await model_names(admin, {"kinds": ["SYSTEM"]})) == sorted(names)
    again = await admin.data("query($id: ID!) { model(id: $id) { contextWindow } }", {"id": first["id"]})
    assert again["model"]["contextWindow"] == 1234
