"""generate, chat, embed and chatStream on the demo ECHO model and on a fake OpenAI upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.domain.auth import Role
from tests.conftest import LiveServer
from tests.fakes.openai_server import OpenAIFake, openai_fake_server
from tests.support.catalog import create_system_model, create_user_model
from tests.support.factories import Tenant
from tests.support.gateway import CHAT, EMBED, GENERATE, kinds, stream_events, streamed_text, user_says
from tests.support.graphql import GraphQLClient


@pytest.fixture
async def upstream() -> AsyncIterator[OpenAIFake]:
    async with openai_fake_server(reply="Paris is the capital of France.", chunks=5) as fake:
        yield fake


async def test_generate_chat_embed_and_stream(
    server: LiveServer, gql: GraphQLClient, admin_key: str, tenant: Tenant, upstream: OpenAIFake
) -> None:
    admin = gql.with_key(admin_key)
    org = gql.with_key(tenant.keys[Role.DEVELOPER])
    system = await create_system_model(admin, "fake-gpt", modelUrl=f"{upstream.url}/v1", creditMultiplier="2")
    embedder = await create_system_model(
        admin,
        "fake-embed",
        modelUrl=f"{upstream.url}/v1",
        modelGroup="EMBEDDING",
        maxOutputTokens=None,
        contextWindow=8000,
    )
    variant = await create_user_model(
        gql.with_key(tenant.keys[Role.ADMIN]),
        organizationId=tenant.organization_gid,
        scope="PROJECT",
        projectId=tenant.project_gid,
        name="acme-gpt",
        parentModelId=system["id"],
        isDefault=True,
        token="sk-acme-own-key",
    )

    generated = await org.mutate(GENERATE, {"prompt": "Capital of France?", "projectId": tenant.project_gid})
    assert generated["userErrors"] == []
    assert generated["text"] == "Paris is the capital of France."
    assert generated["model"]["id"] == variant["id"]
    assert generated["servedBy"]["id"] == variant["id"]
    usage = generated["usage"]
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert float(usage["credits"]) == pytest.approx(usage["totalTokens"] / 1000 * 2)
    assert upstream.requests[-1].headers["authorization"] == "Bearer sk-acme-own-key"

    chat = await org.mutate(CHAT, {"model": system["id"], "messages": user_says("Hi")})
    assert chat["message"] == {"role": "ASSISTANT", "content": "Paris is the capital of France."}

    embedded = await org.mutate(EMBED, {"model": embedder["id"], "texts": ["a", "b"]})
    assert embedded["userErrors"] == []
    assert len(embedded["embeddings"]) == 2

    ws_url = server.url.replace("http", "ws") + "/graphql"
    events = await stream_events(
        ws_url,
        tenant.keys[Role.DEVELOPER],
        {"input": {"messages": user_says("Hi"), "projectId": tenant.project_gid}},
    )
    assert kinds(events)[0] == "ChatStreamStart"
    assert kinds(events)[-1] == "ChatStreamEnd"
    assert streamed_text(events) == "Paris is the capital of France."
    assert [e["index"] for e in events if e["__typename"] == "ChatStreamDelta"] == list(range(5))
