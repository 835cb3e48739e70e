"""The upstream fault matrix, against the server as a process: each way an upstream breaks, by each
way a caller asks (generate; chatStream over graphql-transport-ws and over SSE; `/v1/chat/completions`
streaming), with what the caller sees last, whether the fallback served, the primary's health
counter and the usage row.

The route: the project's default model `primary` (a variant of `alpha` on fake A, which breaks) with
the fallback `beta` (fake B, which answers). Malformed, truncated and empty answers must behave like
an aborted connection: fall over silently before any text, with a reset after text (the REST door,
which cannot take text back, ends with an error instead), and count towards tripping the primary.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import pytest

from app.domain.auth import Role
from tests.fakes.openai_server import OpenAIFake, openai_fake_server
from tests.support.catalog import create_system_model, create_user_model
from tests.support.factories import Tenant
from tests.support.gateway import CHAT, GRAPHQL_TRANSPORT_WS, SSE, model_health, stream_over, streamed_text
from tests.support.graphql import GraphQLClient
from tests.support.process import ServerProcess, server_process
from tests.support.seeding import seeded_tenant

pytestmark = pytest.mark.slow

REPLY_A = "Alpha writes this answer in several pieces."
REPLY_B = "Beta answers instead."
TIMEOUT = 1.0  # connect, first byte and idle, for the server under test
DEADLINE = 3  # seconds: the primary's callDeadlineSeconds
CUT_BODY = b'{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assis'

MODES = ("generate", GRAPHQL_TRANSPORT_WS, SSE, "rest-stream")


@dataclass(frozen=True)
class Fault:
    """How fake A breaks, for a one-shot answer and for a stream; whether a stream had sent text by
    then; how many requests A sees for a one-shot call and for a stream (one more try on the same
    model before the first byte, except after a timeout)."""

    one_shot: dict[str, Any] | None
    stream: dict[str, Any]
    after_text: bool
    requests: tuple[int, int]
    falls_over: bool = True


FAULTS: dict[str, Fault] = {
    "empty-200": Fault({"raw": b""}, {"raw": b""}, after_text=False, requests=(2, 2)),
    "malformed": Fault(
        {"raw": b'{"choices": [{not json'}, {"malformed_after": 3}, after_text=True, requests=(2, 1)
    ),
    "truncated": Fault({"raw": CUT_BODY}, {"omit_terminal": True}, after_text=True, requests=(2, 1)),
    "abort": Fault({"disconnect_after": 0}, {"disconnect_after": 3}, after_text=True, requests=(2, 1)),
    "hang": Fault(
        {"first_byte_delay": 30 * TIMEOUT},
        {"first_byte_delay": 30 * TIMEOUT},
        after_text=False,
        requests=(1, 1),
    ),
    # A stream that drips just under the idle timeout, for longer than the call's deadline: the
    # deadline ends it, and no fallback is left time to serve.
    "drip": Fault(
        None,
        {"frame_interval": 0.7 * TIMEOUT, "chunks": 40},
        after_text=True,
        requests=(0, 1),
        falls_over=False,
    ),
}


@pytest.fixture
async def server(database_url: str) -> AsyncIterator[ServerProcess]:
    timeouts = {
        "MODELGATE_PROVIDER_CONNECT_TIMEOUT": str(TIMEOUT),
        "MODELGATE_PROVIDER_FIRST_BYTE_TIMEOUT": str(TIMEOUT),
        "MODELGATE_PROVIDER_IDLE_TIMEOUT": str(TIMEOUT),
    }
    async with server_process(database_url, env=timeouts) as process:
        yield process


@dataclass
class Outcome:
    kinds: list[str]  # the events (streams) or ["answer"] / ["error"]
    text: str | None  # what the caller ends up showing
    error: str | None
    served_by: str | None


async def ask(
    mode: str, server: ServerProcess, http: aiohttp.ClientSession, key: str, tenant: Tenant
) -> Outcome:
    fields = {"messages": [{"role": "USER", "content": "Write something."}], "projectId": tenant.project_gid}
    if mode == "generate":
        payload = await GraphQLClient(http, server.url, key).mutate(CHAT, fields)
        errors = payload["userErrors"]
        return Outcome(
            ["error"] if errors else ["answer"],
            payload["message"] and payload["message"]["content"],
            errors[0]["code"] if errors else None,
            payload["servedBy"] and payload["servedBy"]["name"],
        )
    if mode == "rest-stream":
        return await rest_stream(server, http, key, tenant)
    events = await stream_over(mode, http, server.url, key, {"input": fields}, within=30)
    kinds = [e["__typename"] for e in events]
    served = [e["servedBy"]["name"] for e in events if "servedBy" in e]
    return Outcome(
        kinds,
        streamed_text(events) if kinds[-1] == "ChatStreamEnd" else None,
        events[-1].get("code"),
        served[-1] if served else None,
    )


async def rest_stream(
    server: ServerProcess, http: aiohttp.ClientSession, key: str, tenant: Tenant
) -> Outcome:
    body = {"messages": [{"role": "user", "content": "Write something."}], "stream": True}
    headers = {"Authorization": f"Bearer {key}", "X-Modelgate-Project": tenant.project_gid}
    kinds, text, error, model = [], [], None, None
    async with http.post(f"{server.url}/v1/chat/completions", json=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        async for raw in response.content:
            line = raw.decode().strip()
            if not line.startswith("data:"):
                continue
            data = line.removeprefix("data:").strip()
            if data == "[DONE]":
                kinds.append("[DONE]")
                continue
            chunk = json.loads(data)
            if "error" in chunk:
                kinds.append("error")
                error = chunk["error"]["code"]
                continue
            kinds.append("chunk")
            model = chunk.get("model", model)
            for choice in chunk.get("choices", []):
                text.append(choice.get("delta", {}).get("content") or "")
    return Outcome(kinds, "".join(text) if error is None else None, error, model)


async def usage(database_url: str, count: int) -> list[dict[str, Any]]:
    """The usage rows once `count` are written (the server flushes every 0.2 s)."""
    deadline = time.monotonic() + 10
    conn = await asyncpg.connect(database_url)
    try:
        while True:
            rows = [
                dict(r)
                for r in await conn.fetch(
                    """SELECT u.status, u.error_code, m.name AS served FROM usage_records u
                       LEFT JOIN models m ON m.id = u.served_model_id ORDER BY u.created_at"""
                )
            ]
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


def switch(fake: OpenAIFake, switches: dict[str, Any]) -> Callable[[], None]:
    """Sets the switches; the returned function sets them back."""
    before = {name: getattr(fake, name) for name in switches}
    for name, value in switches.items():
        setattr(fake, name, value)

    def restore() -> None:
        for name, value in before.items():
            setattr(fake, name, value)

    return restore


@pytest.mark.parametrize("name", list(FAULTS))
async def test_each_upstream_fault_on_each_door(name: str, server: ServerProcess, database_url: str) -> None:
    fault = FAULTS[name]
    async with (
        openai_fake_server(reply=REPLY_A, chunks=8) as fake_a,
        openai_fake_server(reply=REPLY_B, chunks=2) as fake_b,
        aiohttp.ClientSession() as http,
        seeded_tenant(database_url) as (tenant, admin_key),
    ):
        admin = GraphQLClient(http, server.url, admin_key)
        org = GraphQLClient(http, server.url, tenant.keys[Role.ADMIN])
        alpha = await create_system_model(admin, "alpha", modelUrl=f"{fake_a.url}/v1")
        beta = await create_system_model(admin, "beta", modelUrl=f"{fake_b.url}/v1")
        primary = await create_user_model(
            org,
            organizationId=tenant.organization_gid,
            scope="PROJECT",
            projectId=tenant.project_gid,
            name="primary",
            parentModelId=alpha["id"],
            isDefault=True,
            callDeadlineSeconds=DEADLINE,
            fallbacks=[{"modelId": beta["id"], "failedRequests": 100, "durationMinutes": 5}],
        )
        calls = 0
        for mode in MODES:
            switches = fault.one_shot if mode == "generate" else fault.stream
            if switches is None:
                continue
            restore = switch(fake_a, switches)
            fake_a.requests.clear()
            fake_b.requests.clear()
            started = time.monotonic()
            outcome = await ask(mode, server, http, tenant.keys[Role.DEVELOPER], tenant)
            took = time.monotonic() - started
            restore()
            calls += 1
            case = f"{name}, {mode}: {outcome}"
            assert len(fake_a.requests) == fault.requests[mode != "generate"], case
            text_was_sent = fault.after_text and mode != "generate"
            served = fault.falls_over and not (text_was_sent and mode == "rest-stream")
            if served:
                assert outcome.error is None, case
                assert outcome.text == REPLY_B, case
                assert len(fake_b.requests) == 1, case
                if mode in (GRAPHQL_TRANSPORT_WS, SSE):
                    assert outcome.kinds[-1] == "ChatStreamEnd", case
                    assert ("ChatStreamReset" in outcome.kinds) is text_was_sent, case
                if mode == "rest-stream":
                    assert outcome.kinds[-1] == "[DONE]", case
            else:
                assert outcome.error is not None, case
                assert outcome.text is None, case
                assert fake_b.requests == [], case
                if mode in (GRAPHQL_TRANSPORT_WS, SSE):
                    assert outcome.kinds[-1] == "ChatStreamError", case
                else:
                    assert outcome.kinds[-2:] == ["error", "[DONE]"], case
            if name == "drip":
                assert took < DEADLINE + 2, case  # the deadline, not the 40 chunks, ended it
            # Every failure counts once towards tripping the primary, whatever the door.
            health = await model_health(org, primary["id"])
            assert health["consecutiveFailures"] == calls, case
            rows = await usage(database_url, calls)
            assert len(rows) == calls, case
            assert rows[-1]["status"] == ("SUCCESS" if served else "ERROR"), case
            if served:
                assert rows[-1]["served"] == "beta", case
