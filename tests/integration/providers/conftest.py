"""Fixtures of the provider matrices (issue 16's "done means"): every test here runs once per provider
fake that speaks tools (`upstream`, parametrised over tests/support/provider_upstreams.PROVIDERS), on
a server whose settings reach that fake (Vertex's token endpoint, Bedrock's region), with a system
model on it that has every capability; `image_url` for the image cases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.config import Settings
from tests.conftest import make_settings
from tests.support.catalog import create_system_model
from tests.support.graphql import GraphQLClient
from tests.support.image_server import https_image_server
from tests.support.provider_upstreams import PROVIDERS, Upstream, upstream_for
from tests.support.tool_requests import PNG

CAPABLE = {"streaming": True, "tools": True, "vision": True, "structuredOutput": True}


@pytest.fixture(params=PROVIDERS)
async def upstream(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[Upstream]:
    async with upstream_for(request.param, monkeypatch, tmp_path) as upstream:
        yield upstream


@pytest.fixture
def settings(database_url: str, upstream: Upstream) -> Settings:
    return make_settings(database_url, **upstream.settings)


@pytest.fixture
async def model(upstream: Upstream, gql: GraphQLClient, admin_key: str) -> str:
    """A system model on the provider's fake with every capability; its id."""
    created = await create_system_model(
        gql.with_key(admin_key), f"{upstream.provider}-model", capabilities=CAPABLE, **upstream.model
    )
    return str(created["id"])


@pytest.fixture
async def image_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[str]:
    """An https URL of a PNG on loopback (`tests.support.tool_requests.PNG`)."""
    async with https_image_server({"/cat.png": (PNG, "image/png")}, monkeypatch, tmp_path) as url:
        yield f"{url}/cat.png"
