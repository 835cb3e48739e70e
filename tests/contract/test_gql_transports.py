"""Python's gql client (4.4) over every transport it has, against a live server: a query, the
`chat` mutation and a `chatStream` subscription on the offline ECHO model. gql has no SSE transport;
its HTTPX transports run no subscriptions (NotImplementedError), so only queries and mutations."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.aiohttp_websockets import AIOHTTPWebsocketsTransport
from gql.transport.httpx import HTTPXAsyncTransport, HTTPXTransport
from gql.transport.websockets import WebsocketsTransport

from tests.conftest import LiveServer

QUERY = "{ viewer { project { name } } }"
CHAT = "mutation($input: ChatInput!) { chat(input: $input) { message { content } userErrors { code } } }"
CHAT_STREAM = """subscription($input: ChatInput!) { chatStream(input: $input) {
  __typename ... on ChatStreamDelta { text } ... on ChatStreamEnd { finishReason } } }"""
GRAPHQL_TRANSPORT_WS = WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL
LEGACY_GRAPHQL_WS = WebsocketsTransport.APOLLO_SUBPROTOCOL


def says(content: str) -> dict[str, Any]:
    return {"input": {"messages": [{"role": "USER", "content": content}]}}


def http_url(server: LiveServer) -> str:
    return f"{server.url}/graphql"


def ws_url(server: LiveServer) -> str:
    return http_url(server).replace("http", "ws", 1)


TRANSPORTS: dict[str, Callable[[LiveServer, str], Any]] = {
    "aiohttp": lambda server, key: AIOHTTPTransport(url=http_url(server), headers={"X-API-Key": key}),
    "httpx-async": lambda server, key: HTTPXAsyncTransport(url=http_url(server), headers={"X-API-Key": key}),
    "websockets-graphql-transport-ws": lambda server, key: WebsocketsTransport(
        url=ws_url(server), init_payload={"apiKey": key}, subprotocols=[GRAPHQL_TRANSPORT_WS]
    ),
    "websockets-graphql-ws": lambda server, key: WebsocketsTransport(
        url=ws_url(server), init_payload={"apiKey": key}, subprotocols=[LEGACY_GRAPHQL_WS]
    ),
    "aiohttp-websockets-graphql-transport-ws": lambda server, key: AIOHTTPWebsocketsTransport(
        url=ws_url(server), init_payload={"apiKey": key}, subprotocols=[GRAPHQL_TRANSPORT_WS]
    ),
    "aiohttp-websockets-graphql-ws": lambda server, key: AIOHTTPWebsocketsTransport(
        url=ws_url(server), init_payload={"apiKey": key}, subprotocols=[LEGACY_GRAPHQL_WS]
    ),
}
NO_SUBSCRIPTIONS = {"httpx-async"}


@pytest.mark.slow
@pytest.mark.parametrize("name", TRANSPORTS)
async def test_gql_runs_a_query_a_mutation_and_a_subscription(
    server: LiveServer, demo_key: str, name: str
) -> None:
    transport = TRANSPORTS[name](server, demo_key)
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        query = await session.execute(GraphQLRequest(QUERY))
        chat = await session.execute(GraphQLRequest(CHAT, variable_values=says(f"Hello from {name}")))
        events = []
        if name not in NO_SUBSCRIPTIONS:

            async def collect() -> None:
                request = GraphQLRequest(CHAT_STREAM, variable_values=says(f"Stream to {name}"))
                async for result in session.subscribe(request):
                    events.append(result["chatStream"])

            await asyncio.wait_for(collect(), 20)
    assert query["viewer"]["project"]["name"] == "Demo project"
    assert chat["chat"] == {"message": {"content": f"Echo: Hello from {name}"}, "userErrors": []}
    if name not in NO_SUBSCRIPTIONS:
        assert [e["__typename"] for e in events][:: len(events) - 1] == ["ChatStreamStart", "ChatStreamEnd"]
        assert "".join(e.get("text", "") for e in events) == f"Echo: Stream to {name}"


@pytest.mark.slow
async def test_gql_sync_httpx_transport_runs_a_query_and_a_mutation(
    server: LiveServer, demo_key: str
) -> None:
    def run() -> tuple[dict[str, Any], dict[str, Any]]:
        transport = HTTPXTransport(url=http_url(server), headers={"X-API-Key": demo_key})
        with Client(transport=transport, fetch_schema_from_transport=False) as session:
            query = session.execute(GraphQLRequest(QUERY))
            chat = session.execute(GraphQLRequest(CHAT, variable_values=says("Hello from httpx")))
        return query, chat

    query, chat = await asyncio.to_thread(run)
    assert query["viewer"]["project"]["name"] == "Demo project"
    assert chat["chat"]["message"]["content"] == "Echo: Hello from httpx"
