"""POST /v1/completions, POST /v1/embeddings, GET /v1/models and GET /v1/models/{id} with the SDK."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from openai import AsyncOpenAI, BadRequestError, NotFoundError

from app.domain.auth import Role
from tests.conftest import LiveServer
from tests.fakes.openai_server import OpenAIFake, embedding_for
from tests.integration.rest.conftest import REPLY_A
from tests.support.catalog import add_project, create_system_model, create_user_model
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient


async def test_a_completion_on_a_completion_model_and_on_a_chat_model(
    client: AsyncOpenAI, admin: GraphQLClient, fake_a: OpenAIFake, echo: dict[str, Any]
) -> None:
    instruct = await create_system_model(
        admin,
        "instruct",
        modelUrl=f"{fake_a.url}/v1",
        modelGroup="COMPLETION",
        providerModelId="gpt-3.5-instruct",
    )
    raw = await client.completions.with_raw_response.create(model="instruct", prompt="Capital of France?")
    completion = raw.parse()
    assert completion.object == "text_completion"
    assert completion.model == instruct["id"]
    assert completion.choices[0].text == REPLY_A
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 4)
    assert completion.id == f"cmpl-{raw.headers['x-request-id']}"
    upstream = fake_a.requests[-1]
    assert upstream.path == "/v1/completions"
    assert upstream.body["prompt"] == "Capital of France?"

    on_chat = await client.completions.create(model=echo["id"], prompt=["Say this"], max_tokens=2)
    assert on_chat.choices[0].text == "Echo: Say"
    assert on_chat.choices[0].finish_reason == "length"


async def test_completions_are_not_streamed(client: AsyncOpenAI, echo: dict[str, Any]) -> None:
    with pytest.raises(BadRequestError) as refused:
        await client.completions.create(model=echo["id"], prompt="hi", stream=True)
    assert refused.value.param == "stream"


async def test_embeddings_as_floats_and_as_the_sdk_default_base64(
    server: LiveServer, client: AsyncOpenAI, admin: GraphQLClient, fake_a: OpenAIFake
) -> None:
    embedder = await create_system_model(
        admin, "embedder", modelUrl=f"{fake_a.url}/v1", modelGroup="EMBEDDING", maxOutputTokens=None,
        contextWindow=8000, creditMultiplier="0.5",
    )  # fmt: skip
    texts = ["one two", "three"]
    floats = await client.embeddings.create(model="embedder", input=texts, encoding_format="float")
    assert floats.model == embedder["id"]
    assert [d.embedding for d in floats.data] == [embedding_for(t) for t in texts]
    assert [d.index for d in floats.data] == [0, 1]
    assert (floats.usage.prompt_tokens, floats.usage.total_tokens) == (3, 3)
    assert fake_a.requests[-1].body["input"] == texts

    default = await client.embeddings.create(model=embedder["id"], input="one two")  # base64 on the wire
    assert fake_a.requests[-1].body["input"] == ["one two"]
    assert default.data[0].embedding == pytest.approx(embedding_for("one two"))

    with pytest.raises(BadRequestError) as refused:
        await client.embeddings.create(model=embedder["id"], input="x", dimensions=2)
    assert refused.value.param == "dimensions"
    with pytest.raises(BadRequestError) as tokens:  # token arrays: Modelgate takes text
        await client.embeddings.create(model=embedder["id"], input=["ok", [1, 2]])  # type: ignore[list-item]
    assert tokens.value.param == "input[1]"
    with pytest.raises(BadRequestError) as empty:  # the gateway's rule
        await client.embeddings.create(model=embedder["id"], input=["ok", " "])
    assert empty.value.param == "input[1]"


async def test_models_lists_exactly_the_available_models_in_openai_shape(
    server: LiveServer, client: AsyncOpenAI, gql: GraphQLClient, tenant: Tenant, admin: GraphQLClient,
    org_admin: GraphQLClient, echo: dict[str, Any],
) -> None:  # fmt: skip
    hidden = await create_system_model(admin, "hidden", provider="ECHO", modelUrl=None, isVisible=False)
    await create_system_model(admin, "off", provider="ECHO", modelUrl=None, enabled=False)
    own = await create_user_model(
        org_admin, organizationId=tenant.organization_gid, name="acme-echo", parentModelId=echo["id"],
        maxOutputTokens=100,
    )  # fmt: skip
    data = await gql.with_key(tenant.keys[Role.DEVELOPER]).data("{ availableModels { id name } }")
    expected = {m["id"]: m["name"] for m in data["availableModels"]}

    page = await client.models.list()
    models = [m async for m in page]
    assert {m.id: (m.model_extra or {})["modelgate"]["name"] for m in models} == expected
    assert hidden["id"] not in expected
    by_id = {m.id: m for m in models}
    system, variant = by_id[echo["id"]], by_id[own["id"]]
    assert (system.object, system.owned_by, variant.owned_by) == ("model", "system", "organization")
    assert isinstance(system.created, int)
    extra = (variant.model_extra or {})["modelgate"]
    assert extra["provider"] == "ECHO"
    assert extra["modelGroup"] == "CHAT"
    assert extra["lifecycleState"] == "ACTIVE"
    assert extra["maxOutputTokens"] == 100
    assert Decimal(extra["creditMultiplier"]) == 2
    assert extra["capabilities"]["streaming"] is True

    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{server.url}/v1/models", headers={"Authorization": f"Bearer {tenant.keys[Role.DEVELOPER]}"}
        ) as response,
    ):
        body = await response.json()
    assert body["object"] == "list"
    assert set(body["data"][0]) == {"id", "object", "created", "owned_by", "modelgate"}
    assert "hasToken" not in body["data"][0]["modelgate"]


async def test_a_model_is_retrieved_by_id_or_name_among_the_available_ones(
    client: AsyncOpenAI, admin: GraphQLClient, echo: dict[str, Any]
) -> None:
    hidden = await create_system_model(admin, "hidden", provider="ECHO", modelUrl=None, isVisible=False)
    model = await client.models.retrieve(echo["id"])
    assert model.id == echo["id"]
    assert (model.model_extra or {})["modelgate"]["name"] == "echo"
    assert (await client.models.retrieve("echo")).id == echo["id"]
    for missing in (hidden["id"], "hidden", "nothing"):
        with pytest.raises(NotFoundError) as not_found:
            await client.models.retrieve(missing)
        assert not_found.value.code == "model_not_found"


async def test_a_project_key_lists_its_project_models_only(
    server: LiveServer, project_client: AsyncOpenAI, tenant: Tenant, org_admin: GraphQLClient,
    echo: dict[str, Any],
) -> None:  # fmt: skip
    other = await add_project(server.services, tenant, "other")
    elsewhere = await create_user_model(
        org_admin, organizationId=tenant.organization_gid, scope="PROJECT", projectId=other,
        name="elsewhere", parentModelId=echo["id"],
    )  # fmt: skip
    ids = [m.id async for m in await project_client.models.list()]
    assert echo["id"] in ids
    assert elsewhere["id"] not in ids
    with pytest.raises(NotFoundError):
        await project_client.chat.completions.create(
            model=elsewhere["id"], messages=[{"role": "user", "content": "hi"}]
        )
