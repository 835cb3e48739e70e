"""Revocation and expiry reach open connections.

A WebSocket authenticates once, at connection_init, and then carries operations for as long as it
stays open; a stream runs for as long as the answer takes. A key revoked (on any instance) or
expired, or a JWT past its `exp`, must stop both: every new operation on the socket is refused
UNAUTHENTICATED, and running streams end with a ChatStreamError `UNAUTHENTICATED` within about a
second, their upstream request closed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import jwt
import pytest

from app.domain.auth import Principal, PrincipalKind
from app.domain.errors import Unauthenticated
from app.services.auth import Credential
from app.services.notifications import API_KEYS_TOPIC
from app.services.revocation import CallerSession, RevocationWatch
from tests.conftest import LiveServer, make_settings, running_server
from tests.fakes.openai_server import OpenAIFake
from tests.support.catalog import create_system_model
from tests.support.factories import Tenant, make_platform_admin_key, make_tenant
from tests.support.gateway import (
    CHAT_STREAM,
    GRAPHQL_TRANSPORT_WS,
    LEGACY_GRAPHQL_WS,
    TRANSPORTS,
    kinds,
    stream_input,
    stream_over,
    user_says,
)
from tests.support.graphql import GraphQLClient
from tests.support.sockets import Socket, codes

VIEWER = "{ viewer { kind } }"
CREATE_KEY = """mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) {
  secret apiKey { id } userErrors { code field message } } }"""
REVOKE_KEY = """mutation($input: ApiKeyRevokeInput!) { apiKeyRevoke(input: $input) {
  apiKey { revokedAt } userErrors { code } } }"""
# How long a refused stream may take to end: "about a second", with room for a loaded machine.
# The stalled upstream below would keep it open for 30 s.
ENDS_WITHIN = 3.0


@pytest.fixture
def admin(gql: GraphQLClient, admin_key: str) -> GraphQLClient:
    return gql.with_key(admin_key)


@pytest.fixture
async def slow_model(admin: GraphQLClient, stalling: OpenAIFake) -> dict[str, Any]:
    return await create_system_model(admin, "slow", modelUrl=f"{stalling.url}/v1")


async def new_key(org_admin: GraphQLClient, tenant: Tenant, **fields: Any) -> tuple[str, str]:
    """(secret, id) of a new ADMIN key of the tenant."""
    payload = await org_admin.mutate(
        CREATE_KEY, {"organizationId": tenant.organization_gid, "name": "doomed", "role": "ADMIN", **fields}
    )
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["secret"], payload["apiKey"]["id"]


async def revoke(org_admin: GraphQLClient, key_id: str) -> None:
    payload = await org_admin.mutate(REVOKE_KEY, {"id": key_id})
    assert payload["userErrors"] == []
    assert payload["apiKey"]["revokedAt"]


async def upstream_streaming(fake: OpenAIFake) -> None:
    """Once the stream is running: the upstream answered its first pieces and stalls."""
    for _ in range(500):
        if fake.open_streams == 1:
            await asyncio.sleep(0.2)  # the pieces reach the client
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the stream did not start")


async def upstream_closed(fake: OpenAIFake) -> bool:
    for _ in range(100):
        if fake.open_streams == 0:
            return True
        await asyncio.sleep(0.01)
    return False


async def ended_by(
    running: asyncio.Task[list[dict[str, Any]]], refusal: Any, fake: OpenAIFake
) -> tuple[list[dict[str, Any]], float]:
    """Waits for the stream to run, refuses its caller (`await refusal()`), and returns the events
    and how long after the refusal the stream ended."""
    await upstream_streaming(fake)
    await refusal()
    started = time.monotonic()
    events = await asyncio.wait_for(running, ENDS_WITHIN)
    return events, time.monotonic() - started


def assert_ended_unauthenticated(events: list[dict[str, Any]]) -> None:
    assert kinds(events)[:2] == ["ChatStreamStart", "ChatStreamDelta"], events
    assert kinds(events)[-1] == "ChatStreamError", events
    assert events[-1]["code"] == "UNAUTHENTICATED"
    assert events[-1]["retryable"] is False


# ---- a revoked key ----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [GRAPHQL_TRANSPORT_WS, LEGACY_GRAPHQL_WS])
async def test_a_revoked_key_gets_nothing_more_on_a_socket_opened_before(
    protocol: str,
    server: LiveServer,
    http: aiohttp.ClientSession,
    gql: GraphQLClient,
    tenant: Tenant,
    slow_model: dict[str, Any],
) -> None:
    org_admin = gql.with_key(tenant.admin_key)
    secret, key_id = await new_key(org_admin, tenant)
    chat = stream_input(user_says("Hi"), model=slow_model["id"])
    admin_key_input = {"organizationId": tenant.organization_gid, "name": "b", "role": "ADMIN"}
    create_admin_key = (CREATE_KEY, {"input": admin_key_input})
    async with Socket.open(http, server.url, {"apiKey": secret}, protocol) as socket:
        if protocol == GRAPHQL_TRANSPORT_WS:  # legacy graphql-ws carries subscriptions only
            assert (await socket.run(VIEWER))["data"] == [{"viewer": {"kind": "API_KEY"}}]
        await revoke(org_admin, key_id)
        keys_before = await server.services.db.fetchval("SELECT count(*) FROM api_keys")

        if protocol == GRAPHQL_TRANSPORT_WS:
            assert codes(await socket.run(VIEWER)) == ["UNAUTHENTICATED"]
            assert codes(await socket.run(*create_admin_key)) == ["UNAUTHENTICATED"]
        assert codes(await socket.run(CHAT_STREAM, chat)) == ["UNAUTHENTICATED"]
    assert await server.services.db.fetchval("SELECT count(*) FROM api_keys") == keys_before


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_running_stream_ends_unauthenticated_when_its_key_is_revoked(
    transport: str,
    server: LiveServer,
    http: aiohttp.ClientSession,
    gql: GraphQLClient,
    tenant: Tenant,
    slow_model: dict[str, Any],
    stalling: OpenAIFake,
) -> None:
    org_admin = gql.with_key(tenant.admin_key)
    secret, key_id = await new_key(org_admin, tenant)
    variables = stream_input(user_says("Hi"), model=slow_model["id"])
    running = asyncio.create_task(stream_over(transport, http, server.url, secret, variables, within=60))

    events, took = await ended_by(running, lambda: revoke(org_admin, key_id), stalling)

    assert_ended_unauthenticated(events)
    assert took < ENDS_WITHIN
    assert await upstream_closed(stalling), "the upstream request is still open"


async def test_revoking_on_one_instance_ends_a_stream_on_another(
    database_url: str, http: aiohttp.ClientSession, stalling: OpenAIFake
) -> None:
    settings = make_settings(database_url)
    async with running_server(settings) as a, running_server(settings) as b:
        tenant = await make_tenant(a.services, "Acme")
        org_admin = GraphQLClient(http, a.url, tenant.admin_key)
        admin = GraphQLClient(http, a.url, await make_platform_admin_key(a.services))
        model = await create_system_model(admin, "slow", modelUrl=f"{stalling.url}/v1")
        secret, key_id = await new_key(org_admin, tenant)
        variables = stream_input(user_says("Hi"), model=model["id"])
        running = asyncio.create_task(
            stream_over(GRAPHQL_TRANSPORT_WS, http, b.url, secret, variables, within=60)
        )

        events, _ = await ended_by(running, lambda: revoke(org_admin, key_id), stalling)

        assert_ended_unauthenticated(events)
        assert await upstream_closed(stalling)


async def test_a_project_deleted_under_an_open_socket_takes_its_keys_with_it(
    server: LiveServer, http: aiohttp.ClientSession, gql: GraphQLClient, tenant: Tenant
) -> None:
    org_admin = gql.with_key(tenant.admin_key)
    secret, _ = await new_key(org_admin, tenant, projectId=tenant.project_gid)
    async with Socket.open(http, server.url, {"apiKey": secret}, GRAPHQL_TRANSPORT_WS) as socket:
        assert codes(await socket.run(VIEWER)) == []
        deleted = await org_admin.mutate(
            "mutation($input: ProjectDeleteInput!) { projectDelete(input: $input) { userErrors { code } } }",
            {"id": tenant.project_gid},
        )
        assert deleted["userErrors"] == []
        assert codes(await socket.run(VIEWER)) == ["UNAUTHENTICATED"]


async def rest_stream(http: aiohttp.ClientSession, base_url: str, key: str, model: str) -> list[Any]:
    """The frames of a streamed /v1/chat/completions, to the end of the response."""
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    headers = {"Authorization": f"Bearer {key}"}
    async with http.post(f"{base_url}/v1/chat/completions", json=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        text = await response.text()
    return [
        line.removeprefix("data: ") if line == "data: [DONE]" else json.loads(line.removeprefix("data: "))
        for line in text.splitlines()
        if line.startswith("data: ")
    ]


async def test_a_rest_stream_ends_with_an_authentication_error_when_its_key_is_revoked(
    server: LiveServer,
    http: aiohttp.ClientSession,
    gql: GraphQLClient,
    tenant: Tenant,
    slow_model: dict[str, Any],
    stalling: OpenAIFake,
) -> None:
    org_admin = gql.with_key(tenant.admin_key)
    secret, key_id = await new_key(org_admin, tenant)
    running = asyncio.create_task(rest_stream(http, server.url, secret, slow_model["id"]))

    frames, took = await ended_by(running, lambda: revoke(org_admin, key_id), stalling)

    assert frames[0]["choices"][0]["delta"]["role"] == "assistant"
    assert frames[-2:] == [
        {
            "error": {
                "message": "the credential was revoked or has expired",
                "type": "authentication_error",
                "param": None,
                "code": "invalid_api_key",
            }
        },
        "[DONE]",  # every REST stream ends with it, an error frame before it or not
    ]
    assert took < ENDS_WITHIN
    assert await upstream_closed(stalling)


# ---- expiry -----------------------------------------------------------------------------------------


async def test_a_key_that_expires_while_the_socket_is_open_is_refused_from_then_on(
    server: LiveServer,
    http: aiohttp.ClientSession,
    gql: GraphQLClient,
    tenant: Tenant,
    slow_model: dict[str, Any],
    stalling: OpenAIFake,
) -> None:
    org_admin = gql.with_key(tenant.admin_key)
    expires_at = datetime.now(UTC) + timedelta(seconds=2.5)
    secret, _ = await new_key(org_admin, tenant, expiresAt=expires_at.isoformat())
    variables = stream_input(user_says("Hi"), model=slow_model["id"])
    async with Socket.open(http, server.url, {"apiKey": secret}, GRAPHQL_TRANSPORT_WS) as socket:
        assert codes(await socket.run(VIEWER)) == []
        running = asyncio.create_task(stream_over(GRAPHQL_TRANSPORT_WS, http, server.url, secret, variables))

        async def expiry() -> None:
            await asyncio.sleep((expires_at - datetime.now(UTC)).total_seconds())

        events, took = await ended_by(running, expiry, stalling)

        assert_ended_unauthenticated(events)
        assert took < ENDS_WITHIN
        assert codes(await socket.run(VIEWER)) == ["UNAUTHENTICATED"]


SECRET = "test-hs256-shared-secret-of-decent-length"


def member_token(organization: str, expires_in: float) -> str:
    claims = {
        "sub": "member-1",
        "exp": int(time.time() + expires_in),
        "https://stytch.com/organization": {"organization_id": organization},
        "https://stytch.com/session": {"roles": ["stytch_member"]},
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


async def test_a_jwt_past_its_exp_is_refused_and_its_stream_ends(
    database_url: str, http: aiohttp.ClientSession, stalling: OpenAIFake
) -> None:
    async with running_server(make_settings(database_url, jwt_hs256_secret=SECRET)) as live:
        await make_tenant(live.services, "Acme")
        admin = GraphQLClient(http, live.url, await make_platform_admin_key(live.services))
        model = await create_system_model(admin, "slow", modelUrl=f"{stalling.url}/v1")
        token = member_token("ext-Acme", expires_in=3)
        exp = jwt.decode(token, options={"verify_signature": False})["exp"]
        payload = {"authorization": f"Bearer {token}"}
        async with Socket.open(http, live.url, payload, GRAPHQL_TRANSPORT_WS) as socket:
            assert (await socket.run(VIEWER))["data"] == [{"viewer": {"kind": "JWT"}}]
            variables = stream_input(user_says("Hi"), model=model["id"])
            running = asyncio.create_task(socket.run(CHAT_STREAM, variables))

            async def expiry() -> None:
                await asyncio.sleep(exp - time.time())

            await upstream_streaming(stalling)
            await expiry()
            result = await asyncio.wait_for(running, ENDS_WITHIN)
            events = [data["chatStream"] for data in result["data"]]
            assert_ended_unauthenticated(events)
            assert codes(await socket.run(VIEWER)) == ["UNAUTHENTICATED"]


# ---- the interruption itself, in process ------------------------------------------------------------


class Changes:
    """Notifications without a database: publishing calls the handlers on this instance."""

    def __init__(self) -> None:
        self.handlers: dict[str, list[Any]] = {}

    def subscribe(self, topic: str, handler: Any) -> None:
        self.handlers.setdefault(topic, []).append(handler)

    def publish(self, topic: str, key: str | None) -> None:
        for handler in self.handlers.get(topic, []):
            handler(key)


class Keys:
    """Authenticates every well-formed key that was not revoked."""

    def __init__(self) -> None:
        self.revoked: set[str] = set()
        self.checks = 0

    async def authenticate(self, credential: Credential) -> Principal:
        self.checks += 1
        await asyncio.sleep(0)
        if credential.secret in self.revoked:
            raise Unauthenticated()
        return Principal(kind=PrincipalKind.API_KEY, permissions=frozenset())


KEY = Credential("mg_0123abcd_secret")


async def endless(closed: list[bool]) -> AsyncIterator[str]:
    try:
        yield "first"
        await asyncio.Event().wait()
        yield "never"
    finally:
        closed.append(True)


@dataclass
class Watched:
    """A stream under a RevocationWatch, consumed by a task, waiting for its second event."""

    keys: Keys
    changes: Changes
    task: asyncio.Task[None]
    seen: list[str] = field(default_factory=list)
    closed: list[bool] = field(default_factory=list)

    @classmethod
    async def start(cls) -> Watched:
        keys, changes, first = Keys(), Changes(), asyncio.Event()
        watch = RevocationWatch(keys, changes)  # type: ignore[arg-type]
        session = await watch.open(KEY)
        seen: list[str] = []
        closed: list[bool] = []

        async def consume() -> None:
            async for event in watch.until_refused(session, endless(closed), lambda: "refused"):
                seen.append(event)
                first.set()

        watched = cls(keys, changes, asyncio.create_task(consume()), seen, closed)
        await first.wait()
        await asyncio.sleep(0.01)  # now waiting for the next event
        return watched

    def revoke(self) -> None:
        self.keys.revoked.add(KEY.secret)
        self.changes.publish(API_KEYS_TOPIC, KEY.api_key_prefix)


async def test_a_revocation_closes_the_stream_and_ends_it_with_the_refusal() -> None:
    stream = await Watched.start()
    stream.revoke()
    await asyncio.wait_for(stream.task, 1)
    assert (stream.seen, stream.closed) == (["first", "refused"], [True])


async def test_a_change_to_another_key_leaves_the_stream_alone() -> None:
    stream = await Watched.start()
    stream.changes.publish(API_KEYS_TOPIC, "ffffffff")
    await asyncio.sleep(0.05)
    assert not stream.task.done()
    stream.task.cancel()


async def test_streams_that_share_a_credential_share_one_check() -> None:
    keys, changes = Keys(), Changes()
    watch = RevocationWatch(keys, changes)  # type: ignore[arg-type]
    sessions = [await watch.open(KEY) for _ in range(20)]  # e.g. twenty SSE streams of one key
    closed: list[bool] = []

    async def consume(session: CallerSession) -> list[str]:
        return [e async for e in watch.until_refused(session, endless(closed), lambda: "refused")]

    tasks = [asyncio.create_task(consume(s)) for s in sessions]
    await asyncio.sleep(0.01)
    keys.checks = 0
    keys.revoked.add(KEY.secret)
    changes.publish(API_KEYS_TOPIC, None)  # a change to every key, as when a project is deleted
    results = await asyncio.wait_for(asyncio.gather(*tasks), 1)
    assert results == [["first", "refused"]] * 20
    assert (keys.checks, closed) == (1, [True] * 20)


@pytest.mark.parametrize("revoked_too", [False, True])
async def test_a_client_that_goes_away_is_never_taken_for_a_revocation(revoked_too: bool) -> None:
    stream = await Watched.start()
    if revoked_too:  # both at once: the client's cancellation must still reach the task
        stream.revoke()
        for _ in range(100):
            if stream.task.cancelling():  # the revocation is interrupting it
                break
            await asyncio.sleep(0)
        assert stream.task.cancelling() == 1
    stream.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stream.task
    assert stream.closed == [True]
    assert "refused" not in stream.seen


async def test_a_jwt_whose_organization_changes_its_external_id_is_refused_and_its_stream_ends(
    database_url: str, http: aiohttp.ClientSession, stalling: OpenAIFake
) -> None:
    """The organization the token names is no longer there: like a revocation, on every instance."""
    settings = make_settings(database_url, jwt_hs256_secret=SECRET)
    async with running_server(settings) as a, running_server(settings) as b:
        tenant = await make_tenant(a.services, "Acme")
        admin = GraphQLClient(http, a.url, await make_platform_admin_key(a.services))
        model = await create_system_model(admin, "slow", modelUrl=f"{stalling.url}/v1")
        payload = {"authorization": f"Bearer {member_token('ext-Acme', expires_in=300)}"}
        async with Socket.open(http, b.url, payload, GRAPHQL_TRANSPORT_WS) as socket:
            variables = stream_input(user_says("Hi"), model=model["id"])
            running = asyncio.create_task(socket.run(CHAT_STREAM, variables))

            async def new_external_id() -> None:
                update = await admin.mutate(
                    "mutation($input: OrganizationUpdateInput!) { organizationUpdate(input: $input) {"
                    " userErrors { code } } }",
                    {"id": tenant.organization_gid, "externalId": "ext-Acme-renamed"},
                )
                assert update["userErrors"] == []

            await upstream_streaming(stalling)
            await new_external_id()
            result = await asyncio.wait_for(running, ENDS_WITHIN)
            assert_ended_unauthenticated([data["chatStream"] for data in result["data"]])
            assert codes(await socket.run(VIEWER)) == ["UNAUTHENTICATED"]
