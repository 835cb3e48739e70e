"""The demo that `make run` seeds embeds offline: an ECHO embedding model in the demo project, callable
with the demo project key through `embed` and `/v1/embeddings`, giving deterministic demo vectors.
And a call to a model of the wrong group is refused in plain English."""

from __future__ import annotations

import math

import aiohttp

from app.services.demo import DEMO_EMBEDDING_MODEL, seed_demo
from tests.conftest import LiveServer
from tests.support.graphql import GraphQLClient

EMBED = """mutation($model: ID, $texts: [String!]!) { embed(input: {model: $model, texts: $texts}) {
  embeddings servedBy { name provider } usage { inputTokens credits } userErrors { code field message } } }"""
MODELS = "query($group: ModelGroup) { availableModels(modelGroup: $group) { id name provider } }"


async def test_the_demo_project_key_embeds_with_no_provider_keys(
    server: LiveServer, gql: GraphQLClient, http: aiohttp.ClientSession
) -> None:
    keys = await seed_demo(server.services)
    assert keys is not None
    project = gql.with_key(keys.demo_project)
    embedders = (await project.data(MODELS, {"group": "EMBEDDING"}))["availableModels"]
    demo = next(m for m in embedders if m["name"] == DEMO_EMBEDDING_MODEL)
    assert demo["provider"] == "ECHO"

    texts = ["offline embeddings", "something else", "offline embeddings"]
    result = (await project.data(EMBED, {"model": demo["id"], "texts": texts}))["embed"]
    assert result["userErrors"] == []
    assert result["servedBy"]["name"] == DEMO_EMBEDDING_MODEL
    vectors = result["embeddings"]
    assert [len(v) for v in vectors] == [8, 8, 8]
    assert all(math.isclose(math.fsum(x * x for x in v), 1.0, rel_tol=1e-9) for v in vectors)
    assert vectors[0] == vectors[2]
    assert vectors[0] != vectors[1]
    assert result["usage"]["inputTokens"] == 6
    assert float(result["usage"]["credits"]) == 0

    # The OpenAI-compatible door, naming the model as /v1/models lists it.
    async with http.post(
        f"{server.url}/v1/embeddings",
        headers={"Authorization": f"Bearer {keys.demo_project}"},
        json={"model": DEMO_EMBEDDING_MODEL, "input": "offline embeddings"},
    ) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    assert body["data"][0]["embedding"] == vectors[0]


async def test_a_model_of_the_wrong_group_is_refused_in_plain_words(
    server: LiveServer, gql: GraphQLClient
) -> None:
    keys = await seed_demo(server.services)
    assert keys is not None
    project = gql.with_key(keys.demo_project)
    # No model given: the project's default, the chat model "Demo echo".
    result = (await project.data(EMBED, {"model": None, "texts": ["hello"]}))["embed"]
    [error] = result["userErrors"]
    assert error["code"] == "MODEL_GROUP_MISMATCH"
    assert error["message"] == "Demo echo is a chat model; embed needs an embedding model"
