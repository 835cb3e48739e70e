"""WebSocket authentication: the key or token comes in the connection_init payload."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport

from app.domain.auth import Role
from tests.conftest import LiveServer
from tests.support.factories import Tenant

VIEWER = "{ viewer { kind organization { name } } }"


async def transport_ws(
    http: aiohttp.ClientSession, server: LiveServer, payload: dict[str, Any]
) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any] | None]:
    ws = await http.ws_connect(f"{server.url}/graphql", protocols=["graphql-transport-ws"])
    await ws.send_json({"type": "connection_init", "payload": payload})
    message = await ws.receive(timeout=5)
    return ws, message.json() if message.type == aiohttp.WSMsgType.TEXT else None


@pytest.mark.parametrize("style", ["apiKey", "authorization"])
async def test_connection_init_key_authenticates_operations(
    http: aiohttp.ClientSession, server: LiveServer, tenant: Tenant, style: str
) -> None:
    key = tenant.keys[Role.DEVELOPER]
    payload = {"apiKey": key} if style == "apiKey" else {"authorization": f"Bearer {key}"}
    ws, ack = await transport_ws(http, server, payload)
    assert ack is not None
    assert ack["type"] == "connection_ack"
    await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": VIEWER}})
    result = await ws.receive_json(timeout=5)
    assert result["type"] == "next"
    assert result["payload"]["data"]["viewer"]["organization"]["name"] == "Acme"
    await ws.close()


@pytest.mark.parametrize("payload", [{}, {"apiKey": "mg_0000_wrong"}, {"authorization": "Bearer nonsense"}])
async def test_refused_sockets_close_with_4403(
    http: aiohttp.ClientSession, server: LiveServer, payload: dict[str, Any]
) -> None:
    ws, _ = await transport_ws(http, server, payload)
    while not ws.closed:
        message = await ws.receive(timeout=5)
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            break
    assert ws.close_code == 4403


async def test_gql_client_runs_queries_over_graphql_transport_ws(server: LiveServer, tenant: Tenant) -> None:
    transport = WebsocketsTransport(
        url=server.url.replace("http", "ws") + "/graphql",
        init_payload={"apiKey": tenant.keys[Role.VIEWER]},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        result = await session.execute(gql(VIEWER))
    assert result["viewer"]["organization"]["name"] == "Acme"


async def test_legacy_graphql_ws_refuses_a_bad_key(http: aiohttp.ClientSession, server: LiveServer) -> None:
    ws = await http.ws_connect(f"{server.url}/graphql", protocols=["graphql-ws"])
    await ws.send_json({"type": "connection_init", "payload": {"apiKey": "mg_0000_wrong"}})
    message = await ws.receive_json(timeout=5)
    assert message["type"] == "connection_error"
    await ws.receive(timeout=5)
    assert ws.closed


async def test_legacy_graphql_ws_acknowledges_a_good_key(
    http: aiohttp.ClientSession, server: LiveServer, tenant: Tenant
) -> None:
    ws = await http.ws_connect(f"{server.url}/graphql", protocols=["graphql-ws"])
    await ws.send_json({"type": "connection_init", "payload": {"apiKey": tenant.keys[Role.VIEWER]}})
    assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
    await ws.close()
