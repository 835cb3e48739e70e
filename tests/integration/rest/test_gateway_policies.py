"""The gateway's policies through the REST front door: lifecycle warnings as HTTP headers
(Deprecation per RFC 9745, Sunset per RFC 8594, a Link to the replacement), migration and fallbacks
as the served model (`model`, `x-modelgate-served-by`), trips and metrics."""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI
from prometheus_client.parser import text_string_to_metric_families

from app.domain.auth import Role
from tests.conftest import LiveServer
from tests.fakes.common import split_text
from tests.fakes.openai_server import FakeError, OpenAIFake
from tests.integration.rest.conftest import REPLY_A, REPLY_B, metered, project_default
from tests.support.catalog import at, create_system_model, uuid_of
from tests.support.factories import Tenant
from tests.support.gateway import (
    kinds,
    model_health,
    stream_events,
    stream_input,
    streamed_text,
    update_organization,
    ws_url,
)
from tests.support.graphql import GraphQLClient

HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture
async def replacement(admin: GraphQLClient) -> dict[str, Any]:
    return await create_system_model(admin, "echo-next", provider="ECHO", modelUrl=None)


def sunset_of(headers: Any) -> datetime:
    return parsedate_to_datetime(headers["Sunset"])


@pytest.mark.parametrize("stream", [False, True])
async def test_a_deprecated_model_answers_with_deprecation_sunset_and_link_headers(
    stream: bool, client: AsyncOpenAI, admin: GraphQLClient, replacement: dict[str, Any]
) -> None:
    end_of_life = at(30)
    old = await create_system_model(
        admin, "echo-old", provider="ECHO", modelUrl=None, endOfLifeAt=end_of_life,
        replacementModelId=replacement["id"], deprecationNotice="Moving on.",
    )  # fmt: skip
    async with client.chat.completions.with_streaming_response.create(
        model=old["id"], messages=HI, stream=stream
    ) as response:
        headers = response.headers
        await response.read()
    assert headers["x-modelgate-served-by"] == old["id"]
    assert headers["x-modelgate-warnings"] == "MODEL_DEPRECATED"
    deprecation = headers["Deprecation"]
    assert deprecation.startswith("@")
    assert int(deprecation[1:]) <= datetime.now().timestamp() + 1
    assert sunset_of(headers) == datetime.fromisoformat(end_of_life).replace(microsecond=0)
    assert headers["Link"] == f'</v1/models/{replacement["id"]}>; rel="successor-version"'


async def test_the_warning_is_in_the_body_too(
    client: AsyncOpenAI, admin: GraphQLClient, replacement: dict[str, Any]
) -> None:
    old = await create_system_model(
        admin,
        "echo-old",
        provider="ECHO",
        modelUrl=None,
        endOfLifeAt=at(30),
        replacementModelId=replacement["id"],
    )
    completion = await client.chat.completions.create(model=old["id"], messages=HI)
    (warning,) = (completion.model_extra or {})["modelgate"]["warnings"]
    assert warning["code"] == "MODEL_DEPRECATED"
    assert "echo-next" in warning["message"]
    # The Link names a model the caller can look up.
    assert (await client.models.retrieve(replacement["id"])).id == replacement["id"]


async def test_an_end_of_life_model_is_refused_or_migrated_to_its_replacement(
    client: AsyncOpenAI, admin: GraphQLClient, org_admin: GraphQLClient, tenant: Tenant,
    replacement: dict[str, Any],
) -> None:  # fmt: skip
    retired = await create_system_model(
        admin, "echo-retired", provider="ECHO", modelUrl=None, endOfLifeAt=at(-1),
        replacementModelId=replacement["id"],
    )  # fmt: skip
    with pytest.raises(openai.NotFoundError) as refused:
        await client.chat.completions.create(model=retired["id"], messages=HI)
    assert refused.value.code == "model_end_of_life"
    assert "use echo-next" in refused.value.message

    await update_organization(org_admin, tenant.organization_gid, autoMigrateEndOfLife=True)
    raw = await client.chat.completions.with_raw_response.create(model=retired["id"], messages=HI)
    completion = raw.parse()
    assert completion.model == replacement["id"]
    assert (completion.model_extra or {})["modelgate"]["model"] == retired["id"]
    assert raw.headers["x-modelgate-served-by"] == replacement["id"]
    assert raw.headers["x-modelgate-warnings"] == "MODEL_MIGRATED"
    assert raw.headers["Link"] == f'</v1/models/{replacement["id"]}>; rel="successor-version"'
    assert int(raw.headers["Deprecation"][1:]) <= sunset_of(raw.headers).timestamp()


@pytest.mark.parametrize("stream", [False, True])
async def test_a_failing_primary_is_served_by_its_fallback_before_the_first_byte(
    stream: bool, server: LiveServer, admin: GraphQLClient, org_admin: GraphQLClient, tenant: Tenant,
    project_client: AsyncOpenAI, fake_a: OpenAIFake, fake_b: OpenAIFake,
) -> None:  # fmt: skip
    alpha = await create_system_model(admin, "alpha", modelUrl=f"{fake_a.url}/v1")
    beta = await create_system_model(admin, "beta", modelUrl=f"{fake_b.url}/v1")
    primary = await project_default(org_admin, tenant, alpha, fallbacks=[{"modelId": beta["id"]}])
    fake_a.error = FakeError.server_error()
    async with project_client.chat.completions.with_streaming_response.create(
        model="default", messages=HI, stream=stream
    ) as response:
        headers = response.headers
        if stream:
            chunks = [c async for c in await response.parse()]
            text = "".join(c.choices[0].delta.content or "" for c in chunks)
            model = chunks[0].model
        else:
            completion = await response.parse()
            text, model = completion.choices[0].message.content or "", completion.model
    assert text == REPLY_B
    assert model == beta["id"]
    assert headers["x-modelgate-served-by"] == beta["id"]
    assert headers["x-modelgate-warnings"] == "FALLBACK_USED"
    assert "Deprecation" not in headers
    (row,) = await metered(server.services, 1)
    assert (row["status"], row["requested_model_id"], row["served_model_id"]) == (
        "SUCCESS", uuid_of(primary["id"]), uuid_of(beta["id"]),
    )  # fmt: skip
    assert len(fake_a.requests) == 2  # one retry on the primary, then the fallback
    assert len(fake_b.requests) == 1


async def test_a_stream_failing_after_text_ends_with_an_error_not_a_switch_to_the_fallback(
    server: LiveServer, admin: GraphQLClient, org_admin: GraphQLClient, tenant: Tenant,
    project_client: AsyncOpenAI, fake_a: OpenAIFake, fake_b: OpenAIFake,
) -> None:  # fmt: skip
    """OpenAI's stream format cannot take back text already sent (GraphQL's ChatStreamReset): on
    REST the gateway fails over only before the first byte; afterwards the stream ends with an
    error frame, which the SDK raises, and the call is metered as the provider error it is."""
    alpha = await create_system_model(admin, "alpha", modelUrl=f"{fake_a.url}/v1")
    beta = await create_system_model(admin, "beta", modelUrl=f"{fake_b.url}/v1")
    await project_default(org_admin, tenant, alpha, fallbacks=[{"modelId": beta["id"]}])
    fake_a.stream_error_after = 2  # the role chunk, one piece of text, then an in-stream error
    stream = await project_client.chat.completions.create(model="default", messages=HI, stream=True)
    received: list[str] = []

    async def read() -> None:
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")

    with pytest.raises(openai.APIError) as failed:
        await read()
    assert "".join(received) == split_text(REPLY_A, 4)[0]
    assert failed.value.body is not None
    assert failed.value.body["code"] == "provider_error"  # type: ignore[index]
    assert fake_b.requests == []
    (row,) = await metered(server.services, 1)
    assert (row["operation"], row["status"], row["error_code"]) == ("CHAT_STREAM", "ERROR", "PROVIDER_ERROR")
    assert row["served_model_id"] == row["requested_model_id"]


async def test_graphql_streams_still_fail_over_after_text(
    server: LiveServer, admin: GraphQLClient, org_admin: GraphQLClient, tenant: Tenant,
    fake_a: OpenAIFake, fake_b: OpenAIFake,
) -> None:  # fmt: skip
    """The REST front door's choice does not change chatStream's ChatStreamReset."""
    alpha = await create_system_model(admin, "alpha", modelUrl=f"{fake_a.url}/v1")
    beta = await create_system_model(admin, "beta", modelUrl=f"{fake_b.url}/v1")
    await project_default(org_admin, tenant, alpha, fallbacks=[{"modelId": beta["id"]}])
    fake_a.stream_error_after = 2
    events = await stream_events(
        ws_url(server.url), tenant.keys[Role.DEVELOPER], stream_input(projectId=tenant.project_gid)
    )
    assert "ChatStreamReset" in kinds(events)
    assert streamed_text(events) == REPLY_B


async def test_failed_calls_trip_the_primary_and_calls_go_straight_to_the_fallback(
    server: LiveServer, admin: GraphQLClient, org_admin: GraphQLClient, tenant: Tenant,
    project_client: AsyncOpenAI, fake_a: OpenAIFake, fake_b: OpenAIFake,
) -> None:  # fmt: skip
    alpha = await create_system_model(admin, "alpha", modelUrl=f"{fake_a.url}/v1")
    beta = await create_system_model(admin, "beta", modelUrl=f"{fake_b.url}/v1")
    primary = await project_default(
        org_admin,
        tenant,
        alpha,
        fallbacks=[{"modelId": beta["id"], "failedRequests": 2, "durationMinutes": 5}],
    )
    fake_a.error = FakeError.server_error()
    for _ in range(2):
        completion = await project_client.chat.completions.create(model="default", messages=HI)
        assert completion.model == beta["id"]
    assert len(fake_a.requests) == 4  # each call: the primary, its retry, then the fallback
    health = await model_health(org_admin, primary["id"])
    assert (health["state"], health["consecutiveFailures"]) == ("TRIPPED", 2)
    stream = await project_client.chat.completions.create(model="default", messages=HI, stream=True)
    chunks = [chunk async for chunk in stream]
    assert chunks[0].model == beta["id"]
    assert len(fake_a.requests) == 4  # tripped: straight to the fallback
    assert len(fake_b.requests) == 3


async def test_rest_calls_are_counted_in_the_gateway_metrics(
    server: LiveServer, http: aiohttp.ClientSession, client: AsyncOpenAI, admin: GraphQLClient
) -> None:
    echo = await create_system_model(admin, "echo-metered", provider="ECHO", modelUrl=None)

    async def count(operation: str) -> float:
        async with http.get(f"{server.url}/metrics") as response:
            text = await response.text()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = sample.labels
                if (
                    sample.name == "modelgate_calls_total"
                    and labels.get("operation") == operation
                    and labels.get("model") == "echo-metered"
                    and labels.get("outcome") == "SUCCESS"
                ):
                    return sample.value
        return 0.0

    before = {op: await count(op) for op in ("CHAT", "CHAT_STREAM", "GENERATE")}
    await client.chat.completions.create(model=echo["id"], messages=HI)
    [c async for c in await client.chat.completions.create(model=echo["id"], messages=HI, stream=True)]
    await client.completions.create(model=echo["id"], prompt="Hi")
    after = {op: await count(op) for op in before}
    assert {op: after[op] - before[op] for op in before} == {"CHAT": 1, "CHAT_STREAM": 1, "GENERATE": 1}
