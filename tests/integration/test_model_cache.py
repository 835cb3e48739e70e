"""The gateway's model cache across two app instances on one database: a change made through instance
A reaches instance B's cache within a second (LISTEN/NOTIFY), for the model itself, its parent, its
connection's credentials and its system prompt composition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from app.config import Settings
from app.domain.auth import Role
from app.services.model_cache import ResolvedModel
from tests.conftest import LiveServer, running_server
from tests.support.catalog import (
    CONNECTION_UPDATE,
    SYSTEM_PROMPT_UPDATE,
    SYSTEM_UPDATE,
    USER_UPDATE,
    create_connection,
    create_system_model,
    create_system_prompt,
    create_user_model,
    uuid_of,
)
from tests.support.factories import Tenant, make_platform_admin_key, make_tenant
from tests.support.graphql import GraphQLClient

DEADLINE = 1.0
POLL = 0.05


@dataclass
class Pair:
    a: LiveServer
    b: LiveServer
    admin: GraphQLClient  # through instance A
    org: GraphQLClient  # through instance A
    tenant: Tenant


@pytest.fixture
async def pair(settings: Settings, http: aiohttp.ClientSession) -> AsyncIterator[Pair]:
    async with running_server(settings) as a, running_server(settings) as b:
        tenant = await make_tenant(a.services, "Acme")
        admin = GraphQLClient(http, a.url, await make_platform_admin_key(a.services))
        yield Pair(a, b, admin, admin.with_key(tenant.keys[Role.ADMIN]), tenant)


async def cached(server: LiveServer, model_gid: str) -> ResolvedModel:
    resolved = await server.services.model_cache.get(uuid_of(model_gid))
    assert resolved is not None
    return resolved


async def seen_within_a_second(
    server: LiveServer,
    model_gid: str,
    value: Callable[[ResolvedModel], Any],
    change: Awaitable[Any],
    expected: Any,
) -> float:
    """Makes `change` (through the other instance) and polls `server`'s cache until `value` shows
    `expected`; the seconds it took. Without invalidation the cache would hold the old value for its
    five-minute TTL."""
    before = value(await cached(server, model_gid))
    assert before != expected
    await change
    started = time.monotonic()
    while value(await cached(server, model_gid)) != expected:
        assert time.monotonic() - started < DEADLINE, f"instance B still shows {before!r}"
        await asyncio.sleep(POLL)
    return time.monotonic() - started


async def test_a_model_update_reaches_the_other_instance(pair: Pair) -> None:
    model = await create_system_model(pair.admin, "gpt-model", contextWindow=128000)
    assert (await cached(pair.b, model["id"])).model.context_window == 128000
    change = pair.admin.mutate(SYSTEM_UPDATE, {"id": model["id"], "contextWindow": 64000})
    took = await seen_within_a_second(pair.b, model["id"], lambda r: r.model.context_window, change, 64000)
    assert took < DEADLINE


async def test_a_parent_change_reaches_the_other_instance_through_a_variant(pair: Pair) -> None:
    parent = await create_system_model(pair.admin, "gpt-parent", providerModelId="gpt-4o")
    variant = await create_user_model(
        pair.org, organizationId=pair.tenant.organization_gid, name="variant", parentModelId=parent["id"]
    )
    change = pair.admin.mutate(SYSTEM_UPDATE, {"id": parent["id"], "providerModelId": "gpt-4.1"})
    await seen_within_a_second(pair.b, variant["id"], lambda r: r.model.provider_model_id, change, "gpt-4.1")
    # The parent's lifecycle too.
    change = pair.admin.mutate(SYSTEM_UPDATE, {"id": parent["id"], "enabled": False})
    await seen_within_a_second(
        pair.b, variant["id"], lambda r: r.model.lifecycle(datetime.now(UTC)).state.value, change, "DISABLED"
    )


async def test_a_connection_credential_change_reaches_the_other_instance(pair: Pair) -> None:
    connection = await create_connection(pair.org, pair.tenant.organization_gid, token="sk-first")
    model = await create_user_model(
        pair.org,
        organizationId=pair.tenant.organization_gid,
        name="byok",
        provider="OPENAI",
        providerModelId="gpt-4o",
        connectionId=connection["id"],
    )
    assert (await cached(pair.b, model["id"])).credentials.token == "sk-first"
    change = pair.org.mutate(CONNECTION_UPDATE, {"id": connection["id"], "token": "sk-second"})
    await seen_within_a_second(pair.b, model["id"], lambda r: r.credentials.token, change, "sk-second")
    # And the model's own token, once it leaves the connection.
    change = pair.org.mutate(USER_UPDATE, {"id": model["id"], "connectionId": None, "token": "sk-own"})
    await seen_within_a_second(pair.b, model["id"], lambda r: r.credentials.token, change, "sk-own")


async def test_a_system_prompt_change_reaches_the_other_instance(pair: Pair) -> None:
    prompt = await create_system_prompt(pair.admin, "House style", "Be kind.")
    model = await create_system_model(pair.admin, "gpt-model", systemPromptId=prompt["id"])
    assert (await cached(pair.b, model["id"])).system_prompt == "Be kind."
    change = pair.admin.mutate(
        SYSTEM_PROMPT_UPDATE, {"id": prompt["id"], "particles": [{"kind": "TONE", "text": "Be brief."}]}
    )
    await seen_within_a_second(pair.b, model["id"], lambda r: r.system_prompt, change, "Be brief.")


async def test_a_deleted_model_disappears_from_the_other_instance(pair: Pair) -> None:
    model = await create_system_model(pair.admin, "gpt-model")
    assert await pair.b.services.model_cache.get(uuid_of(model["id"])) is not None
    await pair.admin.mutate(
        "mutation($input: ModelDeleteInput!) { modelDelete(input: $input) { deletedModelId } }",
        {"id": model["id"]},
    )
    started = time.monotonic()
    while await pair.b.services.model_cache.get(uuid_of(model["id"])) is not None:
        assert time.monotonic() - started < DEADLINE
        await asyncio.sleep(POLL)
