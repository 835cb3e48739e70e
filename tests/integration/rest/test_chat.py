"""POST /v1/chat/completions with the official SDK: answers, streams, usage and metering."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from openai import AsyncOpenAI, BadRequestError, NotFoundError

from app.domain.auth import Role
from tests.conftest import LiveServer
from tests.fakes.openai_server import OpenAIFake
from tests.integration.rest.conftest import REPLY_A, metered, project_default, sdk
from tests.support.catalog import create_system_model, uuid_of
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient

HI = [{"role": "user", "content": "Hello there, model"}]


async def test_a_chat_completion(client: AsyncOpenAI, echo: dict[str, Any]) -> None:
    raw = await client.chat.completions.with_raw_response.create(model=echo["id"], messages=HI)
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.model == echo["id"]
    (choice,) = completion.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == "Echo: Hello there, model"
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (3, 4)
    assert completion.usage.total_tokens == 7
    assert raw.headers["x-modelgate-served-by"] == echo["id"]
    request_id = raw.headers["x-request-id"]
    assert completion.id == f"chatcmpl-{request_id}"
    assert completion._request_id == request_id  # the SDK reads x-request-id
    extension = (completion.model_extra or {})["modelgate"]
    assert extension["requestId"] == request_id
    assert extension["servedBy"] == {"id": echo["id"], "name": "echo"}
    assert extension["credits"] == "0.014000"
    assert extension["warnings"] == []
    assert "Deprecation" not in raw.headers


async def test_a_streamed_chat_completion(
    server: LiveServer, client: AsyncOpenAI, admin: GraphQLClient, fake_a: OpenAIFake
) -> None:
    model = await create_system_model(admin, "alpha", modelUrl=f"{fake_a.url}/v1")
    async with client.chat.completions.with_streaming_response.create(
        model="alpha", messages=HI, stream=True
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-modelgate-served-by"] == model["id"]
        request_id = response.headers["x-request-id"]
        chunks = [chunk async for chunk in await response.parse()]
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert {c.id for c in chunks} == {f"chatcmpl-{request_id}"}
    assert {c.model for c in chunks} == {model["id"]}
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == REPLY_A
    assert [c.choices[0].finish_reason for c in chunks][-1] == "stop"
    assert all(c.usage is None for c in chunks)


async def test_include_usage_adds_a_last_chunk_with_the_usage_and_no_choices(
    client: AsyncOpenAI, echo: dict[str, Any]
) -> None:
    stream = await client.chat.completions.create(
        model=echo["id"], messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    *answer, last = chunks
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (3, 4, 7)
    assert all(c.usage is None for c in answer)
    assert "".join(c.choices[0].delta.content or "" for c in answer) == "Echo: Hello there, model"
    assert answer[-1].choices[0].finish_reason == "stop"


async def test_max_tokens_and_max_completion_tokens_cut_the_answer(
    client: AsyncOpenAI, echo: dict[str, Any]
) -> None:
    cut = await client.chat.completions.create(model=echo["id"], messages=HI, max_tokens=2)
    assert cut.choices[0].message.content == "Echo: Hello"
    assert cut.choices[0].finish_reason == "length"
    newer = await client.chat.completions.create(model=echo["id"], messages=HI, max_completion_tokens=3)
    assert newer.choices[0].message.content == "Echo: Hello there,"


async def test_usage_rows_equal_the_calls_made(
    server: LiveServer, client: AsyncOpenAI, echo: dict[str, Any]
) -> None:
    made = []
    raw = await client.chat.completions.with_raw_response.create(model=echo["id"], messages=HI)
    made.append((raw.headers["x-request-id"], "CHAT", "SUCCESS", 3, 4))
    async with client.chat.completions.with_streaming_response.create(
        model=echo["id"], messages=HI, stream=True
    ) as response:
        [chunk async for chunk in await response.parse()]
        made.append((response.headers["x-request-id"], "CHAT_STREAM", "SUCCESS", 3, 4))
    raw_completion = await client.completions.with_raw_response.create(model=echo["id"], prompt="one two")
    made.append((raw_completion.headers["x-request-id"], "GENERATE", "SUCCESS", 2, 3))
    with pytest.raises(BadRequestError) as refused:  # echo writes at most 16,000 tokens
        await client.chat.completions.create(model=echo["id"], messages=HI, max_tokens=20_000)
    made.append((refused.value.response.headers["x-request-id"], "CHAT", "ERROR", 0, 0))
    # Refused before a model was known: nothing to meter.
    with pytest.raises(BadRequestError):
        await client.chat.completions.create(model=echo["id"], messages=[])
    with pytest.raises(NotFoundError):
        await client.chat.completions.create(model="no-such-model", messages=HI)

    rows = await metered(server.services, len(made))
    assert sorted(
        (r["request_id"], r["operation"], r["status"], r["input_tokens"], r["output_tokens"]) for r in rows
    ) == sorted(made)
    assert {r["served_model_id"] for r in rows} == {uuid_of(echo["id"]), None}
    assert [r["error_code"] for r in rows if r["status"] == "ERROR"] == ["MAX_TOKENS_TOO_LARGE"]
    assert {r["requested_model_id"] for r in rows} == {uuid_of(echo["id"])}


@pytest.mark.parametrize("how", ["id", "name", "default"])
async def test_the_model_is_an_id_a_unique_name_or_the_project_default(
    how: str, project_client: AsyncOpenAI, echo: dict[str, Any], org_admin: GraphQLClient, tenant: Tenant
) -> None:
    default = await project_default(org_admin, tenant, echo, name="project-echo")
    model = {"id": default["id"], "name": "project-echo", "default": "default"}[how]
    raw = await project_client.chat.completions.with_raw_response.create(model=model, messages=HI)
    assert raw.parse().model == default["id"]
    assert raw.headers["x-modelgate-served-by"] == default["id"]


async def test_without_a_model_the_project_default_answers(
    server: LiveServer, http: aiohttp.ClientSession, project_key: str, echo: dict[str, Any],
    org_admin: GraphQLClient, tenant: Tenant,
) -> None:  # fmt: skip
    default = await project_default(org_admin, tenant, echo)
    async with http.post(
        f"{server.url}/v1/chat/completions",
        json={"messages": HI},
        headers={"Authorization": f"Bearer {project_key}"},
    ) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    assert body["model"] == default["id"]
    assert body["modelgate"]["model"] == default["id"]


async def test_the_project_can_be_named_by_a_header(
    server: LiveServer, tenant: Tenant, echo: dict[str, Any], org_admin: GraphQLClient
) -> None:
    """An organization-wide key names the project with X-Modelgate-Project (GraphQL's projectId)."""
    default = await project_default(org_admin, tenant, echo)
    key = tenant.keys[Role.DEVELOPER]
    async with sdk(server, key, default_headers={"X-Modelgate-Project": tenant.project_gid}) as openai:
        completion = await openai.chat.completions.create(model="default", messages=HI)
    assert completion.model == default["id"]
    async with sdk(server, key) as openai:
        with pytest.raises(NotFoundError) as no_default:
            await openai.chat.completions.create(model="default", messages=HI)
    assert no_default.value.code == "model_not_found"
