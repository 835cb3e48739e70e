"""A credential goes only where its owner chose (issue: trust boundary, items 1 and 2).

A variant inherits its parent's destination whole; a model using a connection takes the connection's
endpoint; changing a destination needs the credential again; and at call time the request is built
from the destination of whichever row the credential came from, so a row stored before these rules
cannot redirect a credential either. Every case has a fake "attacker" upstream that must see nothing.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from app.domain.auth import Role
from app.migrations import migrate, migration_files
from tests.conftest import LiveServer
from tests.fakes.openai_server import OpenAIFake, openai_fake_server
from tests.support.catalog import (
    CONNECTION_CREATE,
    CONNECTION_UPDATE,
    SYSTEM_CREATE,
    USER_CREATE,
    USER_UPDATE,
    create_connection,
    create_system_model,
    create_user_model,
    system_model,
    uuid_of,
)
from tests.support.factories import Tenant
from tests.support.gateway import GENERATE
from tests.support.graphql import GraphQLClient
from tests.support.postgres import create_database, drop_database, with_database

PLATFORM_KEY = "sk-platform-SECRET-0123456789"
CONNECTION_KEY = "sk-connection-SECRET-0123456789"


@pytest.fixture
def admin(gql: GraphQLClient, admin_key: str) -> GraphQLClient:
    return gql.with_key(admin_key)


@pytest.fixture
def dev(gql: GraphQLClient, tenant: Tenant) -> GraphQLClient:
    return gql.with_key(tenant.keys[Role.DEVELOPER])


@pytest.fixture
def org_admin(gql: GraphQLClient, tenant: Tenant) -> GraphQLClient:
    return gql.with_key(tenant.admin_key)


@pytest.fixture
async def platform() -> AsyncIterator[OpenAIFake]:
    async with openai_fake_server(reply="from the platform's upstream") as fake:
        yield fake


@pytest.fixture
async def attacker() -> AsyncIterator[OpenAIFake]:
    async with openai_fake_server(reply="from the attacker") as fake:
        yield fake


def user_errors(payload: dict[str, Any]) -> set[tuple[str, tuple[str, ...]]]:
    return {(e["code"], tuple(e["field"])) for e in payload["userErrors"]}


async def generate(client: GraphQLClient, model_gid: str) -> dict[str, Any]:
    payload: dict[str, Any] = await client.mutate(GENERATE, {"model": model_gid, "prompt": "hello"})
    return payload


def keys_seen(fake: OpenAIFake) -> list[str]:
    return [r.headers.get("authorization", "") for r in fake.requests]


# ---- a variant keeps its parent's destination -------------------------------------------------------

# (provider, destination setting) for every provider whose settings can redirect a request.
VARIANT_CASES = [
    ("OPENAI", {}, "clientKeyHeader"),
    ("AZURE_OPENAI", {"resourceName": "acme", "deploymentName": "gpt"}, "baseCustomUrl"),
    ("AZURE_OPENAI", {"resourceName": "acme", "deploymentName": "gpt"}, "resourceName"),
    ("AZURE_OPENAI", {"resourceName": "acme", "deploymentName": "gpt"}, "deploymentName"),
    ("GOOGLE_VERTEX_AI", {}, "apiEndpoint"),
    ("GOOGLE_VERTEX_AI", {}, "location"),
    ("GOOGLE_VERTEX_AI", {}, "projectId"),
    ("GOOGLE_GENAI", {}, "location"),
    ("OPENAI_COMPATIBLE", {}, "baseCustomUrl"),
    ("OPENAI_COMPATIBLE", {}, "customAuthHeader"),
    ("AWS_BEDROCK", {}, "region"),
]


async def test_a_variant_cannot_set_any_destination_setting_of_its_parent(
    server: LiveServer, admin: GraphQLClient, dev: GraphQLClient, tenant: Tenant
) -> None:
    for index, (provider, parent_settings, key) in enumerate(VARIANT_CASES):
        parent = await create_system_model(
            admin,
            f"platform-{index}",
            provider=provider,
            modelUrl="https://llm.example.com/v1" if provider == "OPENAI_COMPATIBLE" else None,
            providerSettings=parent_settings,
            token=PLATFORM_KEY,
        )
        value = "https://attacker.example.com/v1" if key in ("baseCustomUrl", "apiEndpoint") else "X-Evil"
        if key in ("resourceName", "deploymentName", "location", "projectId", "region"):
            value = "elsewhere-1"
        payload = await dev.mutate(
            USER_CREATE,
            {
                "organizationId": tenant.organization_gid,
                "parentModelId": parent["id"],
                "name": f"variant-{index}",
                "providerSettings": {key: value},
            },
        )
        assert user_errors(payload) == {("INVALID", ("input", "providerSettings", key))}, (provider, key)
        assert "parent" in payload["userErrors"][0]["message"]


async def test_a_variant_calls_its_parents_upstream_with_the_platform_key_and_nothing_else(
    server: LiveServer,
    admin: GraphQLClient,
    dev: GraphQLClient,
    tenant: Tenant,
    platform: OpenAIFake,
    attacker: OpenAIFake,
) -> None:
    parent = await create_system_model(
        admin, "platform-gpt", modelUrl=f"{platform.url}/v1", token=PLATFORM_KEY
    )
    refused = await dev.mutate(
        USER_CREATE,
        {
            "organizationId": tenant.organization_gid,
            "parentModelId": parent["id"],
            "name": "redirected",
            "providerSettings": {"baseCustomUrl": f"{attacker.url}/v1"},
        },
    )
    assert user_errors(refused) == {("INVALID", ("input", "providerSettings", "baseCustomUrl"))}
    variant = await create_user_model(
        dev, organizationId=tenant.organization_gid, parentModelId=parent["id"], name="variant"
    )
    answer = await generate(dev, variant["id"])
    assert answer["userErrors"] == []
    assert keys_seen(platform) == [f"Bearer {PLATFORM_KEY}"]
    assert attacker.requests == []


async def test_a_stored_variant_row_cannot_redirect_the_platform_key(
    server: LiveServer,
    admin: GraphQLClient,
    dev: GraphQLClient,
    tenant: Tenant,
    platform: OpenAIFake,
    attacker: OpenAIFake,
) -> None:
    """A row written before the rule (here: by hand) still calls only the parent's destination."""
    parent = await create_system_model(
        admin, "platform-gpt", modelUrl=f"{platform.url}/v1", token=PLATFORM_KEY
    )
    variant = await create_user_model(
        dev, organizationId=tenant.organization_gid, parentModelId=parent["id"], name="variant"
    )
    await server.services.db.execute(
        """UPDATE models SET model_url = $2, provider_settings = $3 WHERE id = $1""",
        uuid_of(variant["id"]),
        f"{attacker.url}/v1",
        {"baseCustomUrl": f"{attacker.url}/v1", "customAuthHeader": "X-Stolen"},
    )
    server.services.model_cache.invalidate()
    answer = await generate(dev, variant["id"])
    assert answer["userErrors"] == []
    assert keys_seen(platform) == [f"Bearer {PLATFORM_KEY}"]
    assert attacker.requests == []


# ---- a model using a connection takes the connection's endpoint -------------------------------------


async def test_a_connection_owns_its_endpoint(
    server: LiveServer,
    org_admin: GraphQLClient,
    dev: GraphQLClient,
    tenant: Tenant,
    platform: OpenAIFake,
    attacker: OpenAIFake,
) -> None:
    connection = await create_connection(
        org_admin,
        tenant.organization_gid,
        provider="OPENAI_COMPATIBLE",
        modelUrl=f"{platform.url}/v1",
        token=CONNECTION_KEY,
    )
    # The developer may use the connection but not read it: they cannot point it elsewhere.
    own = {
        "organizationId": tenant.organization_gid,
        "provider": "OPENAI_COMPATIBLE",
        "providerModelId": "llama",
        "connectionId": connection["id"],
    }
    for attempt, field in (
        ({"modelUrl": f"{attacker.url}/v1"}, ("input", "modelUrl")),
        (
            {"providerSettings": {"baseCustomUrl": f"{attacker.url}/v1"}},
            ("input", "providerSettings", "baseCustomUrl"),
        ),
        (
            {"providerSettings": {"customAuthHeader": "X-Stolen"}},
            ("input", "providerSettings", "customAuthHeader"),
        ),
    ):
        payload = await dev.mutate(USER_CREATE, {**own, "name": "redirected", **attempt})
        assert user_errors(payload) == {("INVALID", field)}, attempt
        assert "connection" in payload["userErrors"][0]["message"]
    model = await create_user_model(dev, **own, name="connected")
    # Nor by moving an existing model, nor by giving it credentials of its own beside the connection.
    moved = await dev.mutate(USER_UPDATE, {"id": model["id"], "modelUrl": f"{attacker.url}/v1"})
    assert user_errors(moved) == {("INVALID", ("input", "modelUrl"))}
    both = await dev.mutate(USER_UPDATE, {"id": model["id"], "token": "sk-mine"})
    assert user_errors(both) == {("INVALID", ("input", "token"))}

    answer = await generate(dev, model["id"])
    assert answer["userErrors"] == []
    assert keys_seen(platform) == [f"Bearer {CONNECTION_KEY}"]
    assert attacker.requests == []

    # A row stored before the rule, pointing elsewhere, still calls the connection's endpoint.
    await server.services.db.execute(
        "UPDATE models SET model_url = $2 WHERE id = $1", uuid_of(model["id"]), f"{attacker.url}/v1"
    )
    server.services.model_cache.invalidate()
    assert (await generate(dev, model["id"]))["userErrors"] == []
    assert keys_seen(platform) == [f"Bearer {CONNECTION_KEY}"] * 2
    assert attacker.requests == []


async def test_moving_a_connection_needs_its_credentials_again(
    server: LiveServer,
    org_admin: GraphQLClient,
    tenant: Tenant,
    platform: OpenAIFake,
    attacker: OpenAIFake,
) -> None:
    connection = await create_connection(
        org_admin,
        tenant.organization_gid,
        provider="OPENAI_COMPATIBLE",
        modelUrl=f"{platform.url}/v1",
        token=CONNECTION_KEY,
    )
    refused = await org_admin.mutate(
        CONNECTION_UPDATE, {"id": connection["id"], "modelUrl": f"{attacker.url}/v1"}
    )
    assert user_errors(refused) == {("INVALID", ("input", "modelUrl"))}
    header = await org_admin.mutate(
        CONNECTION_UPDATE, {"id": connection["id"], "providerSettings": {"customAuthHeader": "X-Key"}}
    )
    assert user_errors(header) == {("INVALID", ("input", "providerSettings", "customAuthHeader"))}
    moved = await org_admin.mutate(
        CONNECTION_UPDATE, {"id": connection["id"], "modelUrl": f"{attacker.url}/v1", "token": "sk-new"}
    )
    assert moved["userErrors"] == []
    assert moved["connection"]["hasToken"] is True
    stored = await server.services.connections.credentials_for(uuid_of(connection["id"]))
    assert stored.token == "sk-new"


async def test_a_connection_takes_only_destination_settings(
    server: LiveServer, org_admin: GraphQLClient, tenant: Tenant
) -> None:
    base = {"organizationId": tenant.organization_gid, "name": "c", "provider": "AZURE_OPENAI"}
    payload = await org_admin.mutate(
        CONNECTION_CREATE, {**base, "providerSettings": {"customModel": "x", "resourceName": "acme"}}
    )
    assert user_errors(payload) == {("INVALID", ("input", "providerSettings", "customModel"))}
    unsafe = await org_admin.mutate(
        CONNECTION_CREATE, {**base, "provider": "OPENAI", "modelUrl": "ftp://files.example.com/"}
    )
    assert user_errors(unsafe) == {("UNSAFE_URL", ("input", "modelUrl"))}


# ---- a stored credential never follows its model to a new destination --------------------------------


async def test_moving_a_model_needs_its_credential_again(
    server: LiveServer, dev: GraphQLClient, tenant: Tenant, platform: OpenAIFake, attacker: OpenAIFake
) -> None:
    model = await create_user_model(
        dev,
        organizationId=tenant.organization_gid,
        name="byok",
        provider="OPENAI_COMPATIBLE",
        providerModelId="llama",
        modelUrl=f"{platform.url}/v1",
        token="sk-byok-SECRET-0123456789",
    )
    for change, field in (
        ({"modelUrl": f"{attacker.url}/v1"}, ("input", "modelUrl")),
        (
            {"providerSettings": {"customAuthHeader": "X-Key"}},
            ("input", "providerSettings", "customAuthHeader"),
        ),
        ({"provider": "OPENAI", "modelUrl": None}, ("input", "provider")),
    ):
        payload = await dev.mutate(USER_UPDATE, {"id": model["id"], **change})
        assert field in {f for _, f in user_errors(payload)}, change
        assert all(code == "INVALID" for code, _ in user_errors(payload))
    assert (await generate(dev, model["id"]))["userErrors"] == []
    assert attacker.requests == []
    # With the credential sent again, the move is the owner's choice; clearing it works too.
    moved = await dev.mutate(
        USER_UPDATE, {"id": model["id"], "modelUrl": f"{attacker.url}/v1", "token": "sk-for-the-new-place"}
    )
    assert moved["userErrors"] == []
    assert (await generate(dev, model["id"]))["userErrors"] == []
    assert keys_seen(attacker) == ["Bearer sk-for-the-new-place"]
    cleared = await dev.mutate(
        USER_UPDATE, {"id": model["id"], "modelUrl": f"{platform.url}/v1", "clearToken": True}
    )
    assert cleared["userErrors"] == []
    assert cleared["model"]["hasToken"] is False


# ---- the platform's AWS identity ---------------------------------------------------------------------


async def test_only_system_models_and_their_variants_use_the_platforms_aws_identity(
    server: LiveServer, admin: GraphQLClient, dev: GraphQLClient, tenant: Tenant
) -> None:
    own = await dev.mutate(
        USER_CREATE,
        {
            "organizationId": tenant.organization_gid,
            "name": "my-bedrock",
            "provider": "AWS_BEDROCK",
            "providerModelId": "amazon.nova-lite-v1:0",
            "token": "iam",
        },
    )
    assert user_errors(own) == {("INVALID", ("input", "provider"))}
    payload = await admin.mutate(
        SYSTEM_CREATE, system_model("nova", provider="AWS_BEDROCK", providerModelId="amazon.nova-lite-v1:0")
    )
    assert payload["userErrors"] == []
    variant = await dev.mutate(
        USER_CREATE,
        {"organizationId": tenant.organization_gid, "parentModelId": payload["model"]["id"], "name": "ours"},
    )
    assert variant["userErrors"] == []
    resolved = await server.services.model_cache.get(uuid_of(variant["model"]["id"]))
    assert resolved is not None
    assert resolved.credentials.platform_identity


# ---- rows stored before the rule are migrated ---------------------------------------------------------


async def test_migration_clears_destinations_a_credential_owner_did_not_choose(
    postgres_admin_dsn: str, tmp_path: Path
) -> None:
    for version, path in migration_files():
        if version < 8:
            shutil.copy(path, tmp_path / path.name)
    name = await create_database(postgres_admin_dsn)
    dsn = with_database(postgres_admin_dsn, name)
    try:
        await migrate(dsn, tmp_path)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(LEGACY_ROWS)
            await migrate(dsn)
            rows = {
                r["name"]: (r["model_url"], orjson.loads(r["provider_settings"]), r["connection_id"])
                for r in await conn.fetch(
                    "SELECT name, model_url, provider_settings, connection_id FROM models"
                )
            }
        finally:
            await conn.close()
    finally:
        await drop_database(postgres_admin_dsn, name)
    assert rows["parent"] == ("https://api.example.com/v1", {"customAuthHeader": "X-Key"}, None)
    assert rows["variant"] == (None, {"customModel": "kept"}, None)
    assert rows["connected"] == (None, {}, CONNECTION_ID)
    # Its own token was always what it used: it keeps its destination and drops the connection.
    assert rows["own-and-connection"] == ("https://own.example.com/v1", {}, None)


CONNECTION_ID = uuid.UUID("00000000-0000-0000-0000-0000000000c1")
LEGACY_ROWS = """
INSERT INTO organizations (id, name, plan) VALUES ('00000000-0000-0000-0000-0000000000a1', 'o', 'PRO');
INSERT INTO connections (id, organization_id, name, provider, token_ciphertext)
VALUES ('00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000a1', 'c',
        'OPENAI_COMPATIBLE', 'x');
INSERT INTO models (id, kind, name, provider, provider_model_id, model_url, model_group, provider_settings)
VALUES ('00000000-0000-0000-0000-0000000000b1', 'SYSTEM', 'parent', 'OPENAI_COMPATIBLE', 'm',
        'https://api.example.com/v1', 'CHAT', '{"customAuthHeader": "X-Key"}');
INSERT INTO models (id, kind, organization_id, scope, parent_id, name, model_group, model_url,
                    provider_settings)
VALUES ('00000000-0000-0000-0000-0000000000b2', 'USER', '00000000-0000-0000-0000-0000000000a1',
        'ORGANIZATION', '00000000-0000-0000-0000-0000000000b1', 'variant', 'CHAT',
        'https://attacker.example.com/v1',
        '{"baseCustomUrl": "https://attacker.example.com/v1", "customModel": "kept"}');
INSERT INTO models (id, kind, organization_id, scope, name, provider, provider_model_id, model_group,
                    model_url, provider_settings, connection_id)
VALUES ('00000000-0000-0000-0000-0000000000b3', 'USER', '00000000-0000-0000-0000-0000000000a1',
        'ORGANIZATION', 'connected', 'OPENAI_COMPATIBLE', 'm', 'CHAT',
        'https://attacker.example.com/v1', '{"customAuthHeader": "X-Stolen"}',
        '00000000-0000-0000-0000-0000000000c1');
INSERT INTO models (id, kind, organization_id, scope, name, provider, provider_model_id, model_group,
                    model_url, token_ciphertext, connection_id)
VALUES ('00000000-0000-0000-0000-0000000000b4', 'USER', '00000000-0000-0000-0000-0000000000a1',
        'ORGANIZATION', 'own-and-connection', 'OPENAI_COMPATIBLE', 'm', 'CHAT',
        'https://own.example.com/v1', 'x', '00000000-0000-0000-0000-0000000000c1');
"""
