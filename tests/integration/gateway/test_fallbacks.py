"""Fallbacks end to end: a project model on fake A with a fallback on fake B. Retryable failures
of A (429, 5xx, overloaded, connect failure, first-byte timeout) are served by B with a warning; a
non-retryable one is not; one retry on A before falling back, honouring Retry-After up to the
bound; after `failedRequests` failed calls A trips (shared by every instance) and calls go straight
to B until the clock passes `trippedUntil`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest

from app.config import Settings
from app.domain.auth import Role
from tests.conftest import LiveServer, make_settings, running_server
from tests.fakes.openai_server import FakeError, OpenAIFake
from tests.integration.gateway.conftest import REPLY_A, REPLY_B
from tests.support.catalog import create_system_model, create_user_model
from tests.support.factories import Tenant
from tests.support.gateway import (
    CHAT,
    NOTIFICATIONS,
    Clock,
    Elapsed,
    closed_port,
    kinds,
    model_health,
    stream_events,
    stream_input,
    streamed_text,
    user_says,
    warning_codes,
    ws_url,
)
from tests.support.graphql import GraphQLClient

TIMEOUT = 0.5  # first byte and idle
EMAILS = ["ops@acme.test", "oncall@acme.test"]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(
        database_url,
        provider_connect_timeout=1.0,
        provider_first_byte_timeout=TIMEOUT,
        provider_idle_timeout=TIMEOUT,
    )


@dataclass
class Route:
    primary: dict[str, Any]  # the project's default, a variant of `alpha` (on fake A)
    alpha: dict[str, Any]
    beta: dict[str, Any]  # the fallback (on fake B)


async def make_route(
    admin: GraphQLClient, org_admin: GraphQLClient, tenant: Tenant, a_url: str, b_url: str, **fallback: Any
) -> Route:
    alpha = await create_system_model(admin, "alpha", modelUrl=a_url, creditMultiplier="1")
    beta = await create_system_model(admin, "beta", modelUrl=b_url, creditMultiplier="3")
    primary = await create_user_model(
        org_admin,
        organizationId=tenant.organization_gid,
        scope="PROJECT",
        projectId=tenant.project_gid,
        name="primary",
        parentModelId=alpha["id"],
        isDefault=True,
        fallbacks=[{"modelId": beta["id"], **fallback}],
    )
    return Route(primary, alpha, beta)


@pytest.fixture
async def route(
    admin: GraphQLClient, org_admin: GraphQLClient, tenant: Tenant, fake_a: OpenAIFake, fake_b: OpenAIFake
) -> Route:
    return await make_route(
        admin, org_admin, tenant, f"{fake_a.url}/v1", f"{fake_b.url}/v1",
        failedRequests=2, durationMinutes=5, notifyEmails=EMAILS,
    )  # fmt: skip


@dataclass
class Answer:
    error: str | None
    retryable: bool | None
    model: str | None  # requested
    served_by: str | None
    warnings: list[str]
    text: str | None
    events: list[str]


async def call(mode: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant) -> Answer:
    """A chat or chatStream on the project's default model."""
    key = tenant.keys[Role.DEVELOPER]
    fields = {"messages": user_says("Capital of France?"), "projectId": tenant.project_gid}
    if mode == "chat":
        payload = await GraphQLClient(http, server.url, key).mutate(CHAT, fields)
        errors = payload["userErrors"]
        return Answer(
            error=errors[0]["code"] if errors else None,
            retryable=None,
            model=payload["model"] and payload["model"]["name"],
            served_by=payload["servedBy"] and payload["servedBy"]["name"],
            warnings=warning_codes(payload),
            text=payload["message"] and payload["message"]["content"],
            events=[],
        )
    events = await stream_events(ws_url(server.url), key, {"input": fields})
    last = events[-1]
    start: dict[str, Any] = events[0] if events[0]["__typename"] == "ChatStreamStart" else {}
    return Answer(
        error=last.get("code"),
        retryable=last.get("retryable"),
        model=start["model"]["name"] if start else None,
        served_by=start["servedBy"]["name"] if start else None,
        warnings=[w["code"] for w in last.get("warnings", [])],
        text=streamed_text(events) if last["__typename"] == "ChatStreamEnd" else None,
        events=kinds(events),
    )


MODES = ["chat", "chatStream"]
RETRYABLE: dict[str, dict[str, Any]] = {
    "429": {"error": FakeError.rate_limited(retry_after="0.2")},
    "500": {"error": FakeError.server_error()},
    "503-overloaded": {"error": FakeError.overloaded()},
    "first-byte-timeout": {"first_byte_delay": 10 * TIMEOUT},
}


def fail(fake: OpenAIFake, **switches: Any) -> None:
    for name, value in switches.items():
        setattr(fake, name, value)


def served_by_fallback(answer: Answer) -> None:
    assert answer.error is None, answer
    assert answer.model == "primary"
    assert answer.served_by == "beta"
    assert answer.warnings == ["FALLBACK_USED"]
    assert answer.text == REPLY_B
    if answer.events:  # the fallback answered before any text: no reset
        assert "ChatStreamReset" not in answer.events


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("failure", list(RETRYABLE))
async def test_a_retryable_failure_of_the_primary_is_served_by_the_fallback(
    failure: str, mode: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant, route: Route,
    fake_a: OpenAIFake, fake_b: OpenAIFake,
) -> None:  # fmt: skip
    fail(fake_a, **RETRYABLE[failure])
    with Elapsed() as took:
        answer = await call(mode, server, http, tenant)
    served_by_fallback(answer)
    # One retry on the same model first, except after a timeout: a hung upstream is not waited on twice.
    assert len(fake_a.requests) == (1 if failure == "first-byte-timeout" else 2)
    assert len(fake_b.requests) == 1
    # At most one first-byte timeout, one short pause, and the fallback's answer; nothing waits longer.
    assert took.seconds < TIMEOUT + 1.5


@pytest.mark.parametrize("mode", MODES)
async def test_a_primary_that_refuses_connections_is_served_by_the_fallback(
    mode: str, server: LiveServer, http: aiohttp.ClientSession, admin: GraphQLClient,
    org_admin: GraphQLClient, tenant: Tenant, fake_b: OpenAIFake,
) -> None:  # fmt: skip
    await make_route(admin, org_admin, tenant, f"http://127.0.0.1:{closed_port()}/v1", f"{fake_b.url}/v1")
    served_by_fallback(await call(mode, server, http, tenant))
    assert len(fake_b.requests) == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("error", "code"),
    [(FakeError.context_too_long(), "CONTEXT_TOO_LONG"), (FakeError.content_filtered(), "CONTENT_FILTERED")],
    ids=["400", "filter"],
)
async def test_a_non_retryable_failure_is_not_retried_or_fallen_back(
    error: FakeError, code: str, mode: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant,
    route: Route, fake_a: OpenAIFake, fake_b: OpenAIFake,
) -> None:  # fmt: skip
    fail(fake_a, error=error)
    answer = await call(mode, server, http, tenant)
    assert answer.error == code
    assert answer.served_by is None
    if mode == "chatStream":
        assert answer.events == ["ChatStreamError"]
        assert answer.retryable is False
    assert len(fake_a.requests) == 1
    assert fake_b.requests == []


@pytest.mark.parametrize("mode", MODES)
async def test_one_retry_on_the_primary_before_the_first_byte(
    mode: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant, route: Route,
    fake_a: OpenAIFake, fake_b: OpenAIFake, org_admin: GraphQLClient,
) -> None:  # fmt: skip
    fail(fake_a, error=FakeError.server_error(), error_times=1)
    answer = await call(mode, server, http, tenant)
    assert answer.error is None
    assert answer.served_by == "primary"
    assert answer.warnings == []
    assert answer.text == REPLY_A
    assert len(fake_a.requests) == 2
    assert fake_b.requests == []
    # A failure that was retried away is not a failure of the model.
    health = await model_health(org_admin, route.primary["id"])
    assert (health["state"], health["consecutiveFailures"]) == ("HEALTHY", 0)


async def test_retry_after_is_honoured_before_the_retry(
    server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant, route: Route, fake_a: OpenAIFake,
    fake_b: OpenAIFake,
) -> None:  # fmt: skip
    fail(fake_a, error=FakeError.rate_limited(retry_after="1"), error_times=1)
    with Elapsed() as took:
        answer = await call("chat", server, http, tenant)
    assert answer.served_by == "primary"
    assert len(fake_a.requests) == 2
    assert took.seconds >= 1.0


@pytest.mark.parametrize("mode", MODES)
async def test_a_retry_after_beyond_the_bound_skips_the_retry(
    mode: str, server: LiveServer, http: aiohttp.ClientSession, tenant: Tenant, route: Route,
    fake_a: OpenAIFake, fake_b: OpenAIFake,
) -> None:  # fmt: skip
    bound = server.services.settings.retry_after_bound
    fail(fake_a, error=FakeError.rate_limited(retry_after=str(bound + 2)))
    with Elapsed() as took:
        answer = await call(mode, server, http, tenant)
    served_by_fallback(answer)
    assert len(fake_a.requests) == 1
    assert len(fake_b.requests) == 1
    assert took.seconds < 1.5


async def test_without_a_fallback_a_retryable_failure_is_a_retryable_provider_error(
    server: LiveServer, http: aiohttp.ClientSession, admin: GraphQLClient, org_admin: GraphQLClient,
    tenant: Tenant, fake_a: OpenAIFake,
) -> None:  # fmt: skip
    alone = await create_system_model(admin, "alone", modelUrl=f"{fake_a.url}/v1")
    fail(fake_a, error=FakeError.overloaded())
    payload = await GraphQLClient(http, server.url, tenant.keys[Role.DEVELOPER]).mutate(
        CHAT, {"messages": user_says("Hi"), "model": alone["id"]}
    )
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("PROVIDER_ERROR", None)]
    events = await stream_events(
        ws_url(server.url), tenant.keys[Role.DEVELOPER], stream_input(model=alone["id"])
    )
    assert kinds(events) == ["ChatStreamError"]
    assert (events[0]["code"], events[0]["retryable"]) == ("PROVIDER_ERROR", True)
    assert len(fake_a.requests) == 4  # each call: one try and one retry


# ---- trips -----------------------------------------------------------------------------------------


@pytest.fixture
async def second(settings: Settings) -> AsyncIterator[LiveServer]:
    """Another instance on the same database."""
    async with running_server(settings) as live:
        yield live


@pytest.fixture
def clock(server: LiveServer, second: LiveServer) -> Clock:
    """Time as both instances see it, moved by the test."""
    clock = Clock()
    server.services.health.clock = clock
    second.services.health.clock = clock
    return clock


async def health_on(
    instance: LiveServer, http: aiohttp.ClientSession, key: str, model_gid: str
) -> dict[str, Any]:
    return await model_health(GraphQLClient(http, instance.url, key), model_gid)


async def test_the_primary_trips_after_failed_requests_and_recovers_after_duration_minutes(
    server: LiveServer, second: LiveServer, clock: Clock, http: aiohttp.ClientSession, tenant: Tenant,
    route: Route, fake_a: OpenAIFake, fake_b: OpenAIFake, org_admin: GraphQLClient,
) -> None:  # fmt: skip
    key = tenant.admin_key
    fail(fake_a, error=FakeError.server_error())
    served_by_fallback(await call("chat", server, http, tenant))
    assert len(fake_a.requests) == 2
    one_failure = await health_on(second, http, key, route.primary["id"])
    assert (one_failure["state"], one_failure["consecutiveFailures"]) == ("DEGRADED", 1)

    served_by_fallback(await call("chat", server, http, tenant))
    assert len(fake_a.requests) == 4
    until = clock.now + timedelta(minutes=5)
    for instance in (server, second):  # both instances see the trip at once
        health = await health_on(instance, http, key, route.primary["id"])
        assert (health["state"], health["consecutiveFailures"]) == ("TRIPPED", 2)
        assert datetime.fromisoformat(health["trippedUntil"]) == until

    # Tripped: calls, on either instance, streams too, go straight to the fallback.
    for instance, mode in ((server, "chat"), (second, "chat"), (server, "chatStream")):
        served_by_fallback(await call(mode, instance, http, tenant))
    assert len(fake_a.requests) == 4
    assert len(fake_b.requests) == 5

    # One notification, for the fallback's notifyEmails, readable by organization admins.
    data = await org_admin.data(NOTIFICATIONS, {"id": tenant.organization_gid})
    (notification,) = data["organization"]["notifications"]["nodes"]
    assert notification["kind"] == "MODEL_TRIPPED"
    assert notification["recipients"] == EMAILS
    assert "primary" in notification["subject"]

    # Still tripped a little before trippedUntil; A is called again once the clock passes it.
    fake_a.error = None
    clock.advance(minutes=4, seconds=59)
    served_by_fallback(await call("chat", server, http, tenant))
    assert len(fake_a.requests) == 4
    clock.advance(seconds=2)
    answer = await call("chat", server, http, tenant)
    assert (answer.served_by, answer.warnings, answer.text) == ("primary", [], REPLY_A)
    assert len(fake_a.requests) == 5
    for instance in (server, second):
        health = await health_on(instance, http, key, route.primary["id"])
        assert health == {"state": "HEALTHY", "consecutiveFailures": 0, "trippedUntil": None}


async def test_a_primary_still_failing_after_its_trip_trips_again_at_once(
    server: LiveServer, second: LiveServer, clock: Clock, http: aiohttp.ClientSession, tenant: Tenant,
    route: Route, fake_a: OpenAIFake, org_admin: GraphQLClient,
) -> None:  # fmt: skip
    fail(fake_a, error=FakeError.overloaded())
    for _ in range(2):
        served_by_fallback(await call("chat", server, http, tenant))
    clock.advance(minutes=5, seconds=1)
    # The trial call on the other instance fails: tripped again, at once, with a second notification.
    served_by_fallback(await call("chat", second, http, tenant))
    assert len(fake_a.requests) == 6
    health = await health_on(server, http, tenant.admin_key, route.primary["id"])
    assert (health["state"], health["consecutiveFailures"]) == ("TRIPPED", 3)
    assert datetime.fromisoformat(health["trippedUntil"]) == clock.now + timedelta(minutes=5)
    data = await org_admin.data(NOTIFICATIONS, {"id": tenant.organization_gid})
    assert len(data["organization"]["notifications"]["nodes"]) == 2
