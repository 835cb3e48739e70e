"""Fixtures of the OpenAI-compatible API tests: the official `openai` SDK as the client, pointed at
the live test server with an `mg_` key, and a small catalog on the ECHO provider and fake upstreams."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai import AsyncOpenAI

from app.domain.auth import Role
from app.services.container import Services
from tests.conftest import LiveServer
from tests.fakes.openai_server import OpenAIFake, openai_fake_server
from tests.support.catalog import create_system_model, create_user_model
from tests.support.factories import Tenant
from tests.support.gateway import usage_rows
from tests.support.graphql import GraphQLClient

REPLY_A = "Alpha answers: Paris is the capital."
REPLY_B = "Beta answers: it is Paris, of course."


def sdk(server: LiveServer, key: str, **options: Any) -> AsyncOpenAI:
    """The two-line change: base_url and api_key. No SDK retries, so that one call is one request."""
    options.setdefault("max_retries", 0)
    return AsyncOpenAI(base_url=f"{server.url}/v1", api_key=key, **options)


@pytest.fixture
def admin(gql: GraphQLClient, admin_key: str) -> GraphQLClient:
    return gql.with_key(admin_key)


@pytest.fixture
def org_admin(gql: GraphQLClient, tenant: Tenant) -> GraphQLClient:
    return gql.with_key(tenant.keys[Role.ADMIN])


@pytest.fixture
async def client(server: LiveServer, tenant: Tenant) -> AsyncIterator[AsyncOpenAI]:
    """An organization-wide developer key (llm:invoke, models:read)."""
    async with sdk(server, tenant.keys[Role.DEVELOPER]) as openai:
        yield openai


@pytest.fixture
async def project_key(server: LiveServer, tenant: Tenant) -> str:
    """A developer key bound to the tenant's project (whose default model a test may set)."""
    _, key = await server.services.api_keys.create_unchecked(
        name="project dev", organization_id=tenant.organization.id, project_id=tenant.project.id,
        role=Role.DEVELOPER,
    )  # fmt: skip
    return key


@pytest.fixture
async def project_client(server: LiveServer, project_key: str) -> AsyncIterator[AsyncOpenAI]:
    async with sdk(server, project_key) as openai:
        yield openai


@pytest.fixture
async def echo(admin: GraphQLClient) -> dict[str, Any]:
    """The offline ECHO provider: answers `Echo: <last user message>`, one word per token."""
    return await create_system_model(admin, "echo", provider="ECHO", modelUrl=None, creditMultiplier="2")


CAPABLE = {"streaming": True, "tools": True, "vision": True, "structuredOutput": True}


@pytest.fixture
async def demo(admin: GraphQLClient) -> str:
    """ECHO with every capability: it calls tools, quotes their results and answers JSON
    (app/providers/echo_answers.py). Its id."""
    model = await create_system_model(admin, "demo", provider="ECHO", modelUrl=None, capabilities=CAPABLE)
    return str(model["id"])


@pytest.fixture
async def capable(admin: GraphQLClient, fake_a: OpenAIFake) -> str:
    """A model on `fake_a` with every capability (tools, images, JSON Schema answers). Its id."""
    model = await create_system_model(admin, "gpt-tools", modelUrl=f"{fake_a.url}/v1", capabilities=CAPABLE)
    return str(model["id"])


@pytest.fixture
async def fake_a() -> AsyncIterator[OpenAIFake]:
    async with openai_fake_server(reply=REPLY_A, chunks=4) as fake:
        yield fake


@pytest.fixture
async def fake_b() -> AsyncIterator[OpenAIFake]:
    async with openai_fake_server(reply=REPLY_B, chunks=3) as fake:
        yield fake


async def project_default(
    org_admin: GraphQLClient, tenant: Tenant, parent: dict[str, Any], name: str = "primary", **fields: Any
) -> dict[str, Any]:
    """A variant of `parent` as the tenant project's default model."""
    return await create_user_model(
        org_admin, organizationId=tenant.organization_gid, scope="PROJECT", projectId=tenant.project_gid,
        name=name, parentModelId=parent["id"], isDefault=True, **fields,
    )  # fmt: skip


async def metered(services: Services, count: int, within: float = 3.0) -> list[dict[str, Any]]:
    """The usage rows once there are `count` of them (or what there is after `within` seconds).
    `services.flush()` returns at once while the periodic flush is still writing its batch, so a
    single read right after a call can miss that call's row."""
    deadline = time.monotonic() + within
    for _ in range(10_000):
        rows = await usage_rows(services)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.02)
    raise AssertionError("unreachable")
