"""Fixtures shared by the end-to-end gateway modules: clients by role and fake upstreams."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.domain.auth import Role
from tests.fakes.openai_server import OpenAIFake, openai_fake_server
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient

REPLY_A = "Alpha answers: Paris is the capital."
REPLY_B = "Beta answers: it is Paris, of course."


@pytest.fixture
def admin(gql: GraphQLClient, admin_key: str) -> GraphQLClient:
    """A platform admin."""
    return gql.with_key(admin_key)


@pytest.fixture
def org_admin(gql: GraphQLClient, tenant: Tenant) -> GraphQLClient:
    return gql.with_key(tenant.keys[Role.ADMIN])


@pytest.fixture
def dev(gql: GraphQLClient, tenant: Tenant) -> GraphQLClient:
    """An organization-wide developer key: may call models (llm:invoke)."""
    return gql.with_key(tenant.keys[Role.DEVELOPER])


@pytest.fixture
async def fake_a() -> AsyncIterator[OpenAIFake]:
    async with openai_fake_server(reply=REPLY_A, chunks=4) as fake:
        yield fake


@pytest.fixture
async def fake_b() -> AsyncIterator[OpenAIFake]:
    async with openai_fake_server(reply=REPLY_B, chunks=3) as fake:
        yield fake
