"""Every failure in OpenAI's envelope, with the status the SDK turns into its matching exception;
`x-request-id` on each, never a stack trace."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from app.domain.auth import Role
from app.domain.enums import Plan
from app.domain.ids import encode_id
from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeError, OpenAIFake
from tests.integration.rest.conftest import metered, sdk
from tests.support.catalog import create_system_model, create_user_model
from tests.support.factories import Tenant, make_tenant
from tests.support.gateway import create_key, update_organization
from tests.support.graphql import GraphQLClient

HI = [{"role": "user", "content": "Hi"}]


def envelope(error: openai.APIStatusError) -> dict[str, Any]:
    """The error object as sent; checks the envelope and the request id."""
    body = error.response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert error.response.headers["x-request-id"]
    assert "Traceback" not in error.response.text
    detail: dict[str, Any] = body["error"]
    return detail


async def test_a_bad_or_missing_key_is_401(server: LiveServer, echo: dict[str, Any]) -> None:
    async with sdk(server, "mg_nothing_wrong") as bad:
        with pytest.raises(openai.AuthenticationError) as refused:
            await bad.chat.completions.create(model=echo["id"], messages=HI)
    assert envelope(refused.value)["code"] == "invalid_api_key"
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{server.url}/v1/chat/completions", json={"model": echo["id"], "messages": HI}
        ) as response,
    ):
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "missing_api_key"
        assert response.headers["X-Request-Id"]


async def test_missing_permissions_and_plans_are_403(
    server: LiveServer, tenant: Tenant, admin: GraphQLClient
) -> None:
    echo = await create_system_model(admin, "echo", provider="ECHO", modelUrl=None)
    async with sdk(server, tenant.keys[Role.VIEWER]) as viewer:  # models:read, no llm:invoke
        with pytest.raises(openai.PermissionDeniedError) as refused:
            await viewer.chat.completions.create(model=echo["id"], messages=HI)
        assert envelope(refused.value)["code"] == "permission_denied"
        assert [m.id async for m in await viewer.models.list()] == [echo["id"]]

    premium = await create_system_model(
        admin, "premium", provider="ECHO", modelUrl=None, accessTier="PREMIUM"
    )
    free = await make_tenant(server.services, "Free", plan=Plan.FREE)
    async with sdk(server, free.keys[Role.DEVELOPER]) as client:
        with pytest.raises(openai.PermissionDeniedError) as upgrade:
            await client.chat.completions.create(model=premium["id"], messages=HI)
    detail = envelope(upgrade.value)
    assert (detail["code"], detail["param"]) == ("plan_upgrade_required", "model")


async def test_unknown_and_ambiguous_models_are_404_model_not_found(
    server: LiveServer, client: AsyncOpenAI, admin: GraphQLClient, tenant: Tenant, echo: dict[str, Any]
) -> None:
    org_admin = admin.with_key(tenant.keys[Role.ADMIN])
    # An organization model may share a system model's name: the name is then ambiguous.
    await create_user_model(
        org_admin, organizationId=tenant.organization_gid, name="echo", parentModelId=echo["id"]
    )
    messages = {
        "nothing": "does not exist",
        "echo": "2 of your models are named 'echo'; name it by its id",
        encode_id("SystemModel", uuid.uuid4()): "model not found",
    }
    for model, message in messages.items():
        with pytest.raises(openai.NotFoundError) as missing:
            await client.chat.completions.create(model=model, messages=HI)
        detail = envelope(missing.value)
        assert (detail["code"], detail["param"], detail["type"]) == (
            "model_not_found", "model", "invalid_request_error",
        )  # fmt: skip
        assert message in detail["message"]
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{server.url}/v1/assistants", headers={"Authorization": f"Bearer {tenant.keys[Role.DEVELOPER]}"}
        ) as response,
    ):
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "unknown_url"
        assert response.headers["X-Request-Id"]
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{server.url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {tenant.keys[Role.DEVELOPER]}"},
        ) as response,
    ):
        assert response.status == 405
        assert (await response.json())["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 2}, "n"),
        ({"tools": [{"type": "function"}]}, "tools[0].function"),
        ({"functions": [{"name": "f"}]}, "functions"),  # the deprecated function calling
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        ({"stop": ["\n"]}, "stop"),
        ({"temperature": 3}, "temperature"),  # the gateway's rule
        ({"max_tokens": 0}, "max_tokens"),  # the gateway's rule
        ({"max_tokens": 20_000}, "max_tokens"),  # more than the model writes
        ({"messages": [{"role": "tool", "content": "x", "tool_call_id": "1"}]}, "messages[0].role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            "messages[0].content[0].image_url.url",
        ),
        ({"messages": [{"role": "user", "content": "  "}]}, "messages[0].content"),
        ({"messages": []}, "messages"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"extra_body": {"frobnicate": True}}, "frobnicate"),  # unknown, as OpenAI refuses it
    ],
)
async def test_invalid_requests_are_400(
    fields: dict[str, Any], param: str, client: AsyncOpenAI, echo: dict[str, Any]
) -> None:
    body = {"model": echo["id"], "messages": HI, **fields}
    with pytest.raises(openai.BadRequestError) as refused:
        await client.chat.completions.create(**body)
    detail = envelope(refused.value)
    assert detail["param"] == param, detail
    assert detail["type"] == "invalid_request_error"


async def test_the_wrong_model_group_and_a_too_long_context_are_400(
    client: AsyncOpenAI, admin: GraphQLClient, echo: dict[str, Any]
) -> None:
    embedder = await create_system_model(
        admin, "embedder", provider="ECHO", modelUrl=None, modelGroup="EMBEDDING", maxOutputTokens=None
    )
    with pytest.raises(openai.BadRequestError) as mismatch:
        await client.chat.completions.create(model=embedder["id"], messages=HI)
    assert envelope(mismatch.value)["code"] == "model_group_mismatch"
    with pytest.raises(openai.BadRequestError) as mismatch:
        await client.embeddings.create(model=echo["id"], input="x")
    assert envelope(mismatch.value)["code"] == "model_group_mismatch"
    small = await create_system_model(
        admin, "small", provider="ECHO", modelUrl=None, contextWindow=20, maxOutputTokens=10
    )
    with pytest.raises(openai.BadRequestError) as too_long:
        await client.chat.completions.create(
            model=small["id"], messages=[{"role": "user", "content": "x " * 200}]
        )
    assert envelope(too_long.value)["code"] == "context_length_exceeded"


async def test_a_body_that_is_not_json_is_400(server: LiveServer, tenant: Tenant) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{server.url}/v1/chat/completions",
            data=b"{not json",
            headers={
                "Authorization": f"Bearer {tenant.keys[Role.DEVELOPER]}",
                "Content-Type": "application/json",
            },
        ) as response,
    ):
        assert response.status == 400
        assert "parse the JSON body" in (await response.json())["error"]["message"]


async def test_the_monthly_credit_limit_is_402_insufficient_quota(
    server: LiveServer, client: AsyncOpenAI, admin: GraphQLClient, tenant: Tenant, echo: dict[str, Any]
) -> None:
    await update_organization(admin, tenant.organization_gid, monthlyCreditLimit="0.025")
    # Each call reserves (5 estimated + 2) tokens x 2 = 0.014 credits and costs 2 + 2 tokens = 0.008.
    await client.chat.completions.create(model=echo["id"], messages=HI, max_tokens=2)
    await client.chat.completions.create(model=echo["id"], messages=HI, max_tokens=2)  # 0.009 left
    for call in (
        client.chat.completions.create(model=echo["id"], messages=HI, max_tokens=2),
        client.chat.completions.create(model=echo["id"], messages=HI, max_tokens=2, stream=True),
    ):
        with pytest.raises(openai.APIStatusError) as refused:
            await call
        assert refused.value.status_code == 402
        detail = envelope(refused.value)
        assert (detail["type"], detail["code"]) == ("insufficient_quota", "insufficient_quota")
    rows = await metered(server.services, 4)
    assert [r["error_code"] for r in rows] == [None, None, "QUOTA_EXCEEDED", "QUOTA_EXCEEDED"]


async def test_a_keys_rate_limit_is_429_with_retry_after(
    server: LiveServer, org_admin: GraphQLClient, tenant: Tenant, echo: dict[str, Any]
) -> None:
    fixed = datetime.now(UTC).replace(second=10)
    server.services.rate_limiter.clock = lambda: fixed
    limited = await create_key(org_admin, tenant.organization_gid, rateLimitPerMinute=2)
    async with sdk(server, limited) as client:
        for _ in range(2):
            await client.chat.completions.create(model=echo["id"], messages=HI)
        with pytest.raises(openai.RateLimitError) as refused:
            await client.chat.completions.create(model=echo["id"], messages=HI)
        assert envelope(refused.value)["code"] == "rate_limit_exceeded"
        assert refused.value.response.headers["Retry-After"] == "50"
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model=echo["id"], messages=HI, stream=True)
        server.services.rate_limiter.clock = lambda: fixed + timedelta(minutes=1)
        await client.chat.completions.create(model=echo["id"], messages=HI)


async def test_too_many_streams_is_429(
    server: LiveServer, client: AsyncOpenAI, admin: GraphQLClient, tenant: Tenant
) -> None:
    await update_organization(admin, tenant.organization_gid, maxConcurrentStreams=1)
    slow = await create_system_model(
        admin, "slow", provider="ECHO", modelUrl=None, providerSettings={"wordDelayMs": "100"}
    )
    words = [{"role": "user", "content": "one two three four five six seven eight"}]
    first = await client.chat.completions.create(model=slow["id"], messages=words, stream=True)
    async with first:
        assert (await anext(first)).choices[0].delta.role == "assistant"
        with pytest.raises(openai.RateLimitError) as refused:
            await client.chat.completions.create(model=slow["id"], messages=HI, stream=True)
        detail = envelope(refused.value)
        assert detail["code"] == "too_many_streams"
        assert refused.value.response.headers["Retry-After"]
        rest = [chunk async for chunk in first]
    assert rest[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("failure", "status", "should_retry"),
    [
        (FakeError.server_error(), 502, "true"),
        (FakeError.overloaded(), 503, "true"),
        (FakeError(401, "Incorrect API key provided: sk-***.", code="invalid_api_key"), 502, "false"),
    ],
)
async def test_provider_failures_are_5xx(
    failure: FakeError, status: int, should_retry: str, client: AsyncOpenAI, admin: GraphQLClient,
    fake_a: OpenAIFake,
) -> None:  # fmt: skip
    model = await create_system_model(admin, "alpha", modelUrl=f"{fake_a.url}/v1")
    fake_a.error = failure
    for stream in (False, True):
        with pytest.raises(openai.InternalServerError) as failed:
            await client.chat.completions.create(model=model["id"], messages=HI, stream=stream)
        assert failed.value.status_code == status
        detail = envelope(failed.value)
        assert (detail["type"], detail["code"]) == ("server_error", "provider_error")
        assert failed.value.response.headers["x-should-retry"] == should_retry
        assert "sk-test" not in failed.value.response.text


async def test_an_upstream_context_length_error_is_400(
    client: AsyncOpenAI, admin: GraphQLClient, fake_a: OpenAIFake
) -> None:
    model = await create_system_model(admin, "alpha", modelUrl=f"{fake_a.url}/v1")
    fake_a.error = FakeError.context_too_long()
    with pytest.raises(openai.BadRequestError) as failed:
        await client.chat.completions.create(model=model["id"], messages=HI)
    assert envelope(failed.value)["code"] == "context_length_exceeded"


async def test_a_draining_server_is_503(
    server: LiveServer, client: AsyncOpenAI, echo: dict[str, Any]
) -> None:
    server.services.drain.begin()
    for stream in (False, True):
        with pytest.raises(openai.InternalServerError) as refused:
            await client.chat.completions.create(model=echo["id"], messages=HI, stream=stream)
        assert refused.value.status_code == 503
        assert envelope(refused.value)["code"] == "service_unavailable"
