"""GraphQL documents and helpers for calling models in tests."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import aiohttp
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from app.services.container import Services
from tests.support.graphql import GraphQLClient

RESULT_FIELDS = """
  model { id name } servedBy { id name } usage { inputTokens outputTokens totalTokens credits }
  warnings { code message endOfLifeAt replacement { id name } } requestId
  userErrors { code field message }
"""
GENERATE = f"""mutation($input: GenerateInput!) {{ generate(input: $input) {{
  text finishReason {RESULT_FIELDS} }} }}"""
CHAT = f"""mutation($input: ChatInput!) {{ chat(input: $input) {{
  message {{ role content }} finishReason {RESULT_FIELDS} }} }}"""
EMBED = f"""mutation($input: EmbedInput!) {{ embed(input: $input) {{ embeddings {RESULT_FIELDS} }} }}"""
CHAT_STREAM = """subscription($input: ChatInput!) { chatStream(input: $input) {
  __typename
  ... on ChatStreamStart { requestId model { id name } servedBy { id name } }
  ... on ChatStreamDelta { text index }
  ... on ChatStreamReset { reason servedBy { id name } }
  ... on ChatStreamEnd { finishReason usage { inputTokens outputTokens totalTokens credits }
                         warnings { code message } }
  ... on ChatStreamError { code message retryable retryAfter }
} }"""


def user_says(text: str) -> list[dict[str, str]]:
    return [{"role": "USER", "content": text}]


async def stream_events(
    ws_url: str,
    key: str,
    variables: dict[str, Any],
    *,
    subprotocol: str = WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL,
    stop_after: int | None = None,
    within: float = 20,
    document: str = CHAT_STREAM,
) -> list[dict[str, Any]]:
    """chatStream events over a real WebSocket; with `stop_after`, the client completes the
    subscription after that many events; `document` selects other fields of the events."""
    transport = WebsocketsTransport(url=ws_url, init_payload={"apiKey": key}, subprotocols=[subprotocol])
    events: list[dict[str, Any]] = []
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:

        async def collect() -> None:
            async for result in session.subscribe(GraphQLRequest(document, variable_values=variables)):
                events.append(result["chatStream"])
                if stop_after is not None and len(events) >= stop_after:
                    break

        await asyncio.wait_for(collect(), within)
    return events


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["__typename"] for e in events]


def streamed_text(events: list[dict[str, Any]]) -> str:
    """The answer as a client shows it: deltas since the last reset."""
    text: list[str] = []
    for event in events:
        if event["__typename"] == "ChatStreamReset":
            text.clear()
        elif event["__typename"] == "ChatStreamDelta":
            text.append(event["text"])
    return "".join(text)


# ---- more helpers for the end-to-end gateway modules ------------------------------------------------

GRAPHQL_TRANSPORT_WS = WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL  # "graphql-transport-ws"
LEGACY_GRAPHQL_WS = WebsocketsTransport.APOLLO_SUBPROTOCOL  # "graphql-ws"
SSE = "sse"
TRANSPORTS = (GRAPHQL_TRANSPORT_WS, LEGACY_GRAPHQL_WS, SSE)

HEALTH = "query($id: ID!) { model(id: $id) { health { state consecutiveFailures trippedUntil } } }"
NOTIFICATIONS = """query($id: ID!) { organization(id: $id) {
  notifications(first: 50) { nodes { kind recipients subject payload } } } }"""
ORGANIZATION_LIMITS = """mutation($input: OrganizationUpdateInput!) { organizationUpdate(input: $input) {
  organization { id monthlyCreditLimit maxConcurrentStreams autoMigrateEndOfLife }
  userErrors { code field message } } }"""
API_KEY_CREATE = """mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) {
  secret apiKey { id rateLimitPerMinute } userErrors { code field message } } }"""
USAGE_AMOUNTS = "requests errorCount inputTokens outputTokens totalTokens credits"
USAGE_REPORT = f"""query($filter: UsageFilter!) {{ usage(filter: $filter) {{
  totals {{ {USAGE_AMOUNTS} }} byModel {{ modelId {USAGE_AMOUNTS} }} byDay {{ day {USAGE_AMOUNTS} }} }} }}"""


def ws_url(base_url: str) -> str:
    return base_url.replace("http", "ws", 1) + "/graphql"


def stream_input(messages: list[dict[str, str]] | None = None, **fields: Any) -> dict[str, Any]:
    """chatStream variables: `messages` (default: the user says hi) and other ChatInput fields."""
    return {"input": {"messages": messages if messages is not None else user_says("Hi"), **fields}}


async def sse_events(
    session: aiohttp.ClientSession,
    base_url: str,
    key: str,
    variables: dict[str, Any],
    *,
    stop_after: int | None = None,
    within: float = 20,
) -> list[dict[str, Any]]:
    """chatStream events over GraphQL over SSE (distinct connections mode): POST /graphql with
    `Accept: text/event-stream`, reading `event: next` frames until `event: complete`. With
    `stop_after`, the client drops the connection after that many events. Top-level errors raise
    TransportQueryError, as over a WebSocket."""
    events: list[dict[str, Any]] = []

    async def collect() -> None:
        async with session.post(
            f"{base_url}/graphql",
            json={"query": CHAT_STREAM, "variables": variables},
            headers={"X-API-Key": key, "Accept": "text/event-stream"},
        ) as response:
            assert response.status == 200, await response.text()
            assert response.headers["content-type"].startswith("text/event-stream")
            name, data = None, []
            async for raw in response.content:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    name = line.removeprefix("event:").strip()
                elif line.startswith("data:"):
                    data.append(line.removeprefix("data:").strip())
                elif line == "" and name is not None:
                    if name == "complete":
                        await response.content.read()  # the end of the response, as a client would
                        return
                    assert name == "next", name
                    payload = json.loads("\n".join(data))
                    if payload.get("errors"):  # as gql reports them over a WebSocket
                        raise TransportQueryError(str(payload["errors"][0]), errors=payload["errors"])
                    events.append(payload["data"]["chatStream"])
                    if stop_after is not None and len(events) >= stop_after:
                        return
                    name, data = None, []
            raise AssertionError("the SSE stream ended without `event: complete`")

    await asyncio.wait_for(collect(), within)
    return events


async def stream_over(
    transport: str,
    session: aiohttp.ClientSession,
    base_url: str,
    key: str,
    variables: dict[str, Any],
    **options: Any,
) -> list[dict[str, Any]]:
    """chatStream events over one of TRANSPORTS."""
    if transport == SSE:
        return await sse_events(session, base_url, key, variables, **options)
    return await stream_events(ws_url(base_url), key, variables, subprotocol=transport, **options)


def warning_codes(payload: dict[str, Any]) -> list[str]:
    return [w["code"] for w in payload["warnings"]]


def error_event(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The ChatStreamError a stream ended with; it must have ended with one."""
    assert events, "no events"
    assert events[-1]["__typename"] == "ChatStreamError", events
    return events[-1]


async def usage_rows(services: Services, count: int | None = None, within: float = 5) -> list[dict[str, Any]]:
    """Every usage row, oldest first: once `count` rows are written, or (without `count`) once
    writing has settled. Each round flushes what is buffered; a batch the periodic flush (every
    `flush_interval`) is writing meanwhile shows up in a later round."""
    deadline = time.monotonic() + within
    seen, steady_since = -1, time.monotonic()
    while True:
        await services.flush()
        rows = [
            dict(r) for r in await services.db.fetch("SELECT * FROM usage_records ORDER BY created_at, id")
        ]
        now = time.monotonic()
        if len(rows) != seen:
            seen, steady_since = len(rows), now
        if count is not None and len(rows) >= count:
            return rows
        if count is None and now - steady_since >= services.settings.flush_interval + 0.05:
            return rows
        if now > deadline:
            return rows
        await asyncio.sleep(0.02)


async def api_key_id(services: Services, secret: str) -> UUID:
    """The id of the API key `secret` (mg_<prefix>_<secret>)."""
    prefix = secret.split("_")[1]
    found: UUID | None = await services.db.fetchval(
        "SELECT id FROM api_keys WHERE prefix = $1 OR prefix = $2", prefix, f"mg_{prefix}"
    )
    assert found is not None, "no such key"
    return found


async def create_key(client: GraphQLClient, organization_gid: str, **fields: Any) -> str:
    """A new API key of the organization (by `client`, an organization admin); its secret."""
    payload = await client.mutate(API_KEY_CREATE, {"organizationId": organization_gid, "name": "k", **fields})
    assert payload["userErrors"] == [], payload["userErrors"]
    secret: str = payload["secret"]
    return secret


async def update_organization(client: GraphQLClient, organization_gid: str, **fields: Any) -> dict[str, Any]:
    payload = await client.mutate(ORGANIZATION_LIMITS, {"id": organization_gid, **fields})
    assert payload["userErrors"] == [], payload["userErrors"]
    organization: dict[str, Any] = payload["organization"]
    return organization


async def model_health(client: GraphQLClient, model_gid: str) -> dict[str, Any]:
    data = await client.data(HEALTH, {"id": model_gid})
    health: dict[str, Any] = data["model"]["health"]
    return health


class Clock:
    """A clock a test moves by hand (for `services.health.clock` and the like)."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def credits(input_tokens: int, output_tokens: int, multiplier: str) -> Decimal:
    """DESIGN.md's formula: (input + output) / 1000 x the served model's credit multiplier."""
    return (Decimal(input_tokens + output_tokens) / 1000 * Decimal(multiplier)).quantize(Decimal("0.000001"))


class Elapsed:
    """`with Elapsed() as t:` … `t.seconds`."""

    def __enter__(self) -> Elapsed:
        self.started = time.monotonic()
        self.seconds = 0.0
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.monotonic() - self.started


class WsSubscription:
    """One chatStream over a raw WebSocket, driven message by message, for tests that need to
    complete (or drop) a subscription at a precise moment. `protocol`: GRAPHQL_TRANSPORT_WS or
    LEGACY_GRAPHQL_WS."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, protocol: str) -> None:
        self.ws = ws
        self.protocol = protocol

    @classmethod
    @asynccontextmanager
    async def open(
        cls, session: aiohttp.ClientSession, base_url: str, key: str, variables: dict[str, Any], protocol: str
    ) -> AsyncIterator[WsSubscription]:
        async with session.ws_connect(f"{base_url}/graphql", protocols=[protocol]) as ws:
            await ws.send_json({"type": "connection_init", "payload": {"apiKey": key}})
            while (message := await ws.receive_json(timeout=5))["type"] == "ka":
                pass
            assert message["type"] == "connection_ack", message
            start = "subscribe" if protocol == GRAPHQL_TRANSPORT_WS else "start"
            payload = {"query": CHAT_STREAM, "variables": variables}
            await ws.send_json({"id": "1", "type": start, "payload": payload})
            yield cls(ws, protocol)

    async def next_event(self, within: float = 5) -> dict[str, Any] | None:
        """The next chatStream event; None once the server completed the subscription."""
        while True:
            message = await self.ws.receive_json(timeout=within)
            kind = message["type"]
            if kind == "ping":
                await self.ws.send_json({"type": "pong"})
            elif kind in ("next", "data"):
                assert not message["payload"].get("errors"), message
                event: dict[str, Any] = message["payload"]["data"]["chatStream"]
                return event
            elif kind == "complete":
                return None
            elif kind != "ka":
                raise AssertionError(message)

    async def events(self, within: float = 5) -> AsyncIterator[dict[str, Any]]:
        """The remaining events, until the server completes the subscription."""
        while (event := await self.next_event(within)) is not None:
            yield event

    async def complete(self) -> None:
        """The client ends the subscription and keeps the socket open."""
        await self.ws.send_json(
            {"id": "1", "type": "complete" if self.protocol == GRAPHQL_TRANSPORT_WS else "stop"}
        )
