"""Transport negotiation that every client survives: SSE only when the client prefers it (LF framed),
subscriptions over plain HTTP as multipart or SSE streams or a clear 406 (never a 500), graphql-sse's
single connection mode, HEAD, and the legacy graphql-ws protocol (queries and mutations, 4403 on
refusal, a request id per operation)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
import pytest

from app.services.demo import seed_demo
from tests.conftest import LiveServer
from tests.support.gateway import CHAT_STREAM, stream_input

URQL_ACCEPT = (
    "application/graphql-response+json, application/graphql+json, application/json, "
    "text/event-stream, multipart/mixed"
)
APOLLO_MULTIPART_ACCEPT = 'multipart/mixed;boundary="graphql";subscriptionSpec="1.0",application/json'
CHAT = "mutation($input: ChatInput!) { chat(input: $input) { message { content } requestId } }"
TOKEN_HEADER = "X-GraphQL-Event-Stream-Token"


@pytest.fixture
async def key(server: LiveServer) -> str:
    """A key of the demo project, whose default model is the offline ECHO demo model."""
    keys = await seed_demo(server.services)
    assert keys is not None
    return keys.demo_project


def sse_frames(text: str) -> list[tuple[str, Any]]:
    """(event, data) of an LF-framed event stream; comments skipped."""
    frames = []
    for block in text.split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        fields = dict(line.split(": ", 1) if ": " in line else (line.rstrip(":"), "") for line in lines)
        frames.append((fields["event"], json.loads(fields["data"]) if fields.get("data") else None))
    return frames


def streamed_text(events: list[dict[str, Any]]) -> str:
    return "".join(e.get("text", "") for e in events)


# ---- HTTP: which transport answers ---------------------------------------------------------------


@pytest.mark.parametrize(
    "accept",
    [URQL_ACCEPT, "application/json, text/event-stream", "text/event-stream;q=0.5, application/json"],
)
async def test_a_query_is_json_unless_the_client_prefers_sse(
    http: aiohttp.ClientSession, server: LiveServer, accept: str
) -> None:
    async with http.post(
        f"{server.url}/graphql", json={"query": "{ __typename }"}, headers={"Accept": accept}
    ) as response:
        assert response.status == 200
        assert response.content_type in ("application/json", "application/graphql-response+json")
        assert await response.json(content_type=None) == {"data": {"__typename": "Query"}}


async def test_sse_events_are_framed_with_line_feeds(http: aiohttp.ClientSession, server: LiveServer) -> None:
    headers = {"Accept": "text/event-stream"}
    async with http.post(
        f"{server.url}/graphql", json={"query": "{ __typename }"}, headers=headers
    ) as response:
        assert response.content_type == "text/event-stream"
        raw = await response.text()
    assert "\r" not in raw
    assert sse_frames(raw) == [("next", {"data": {"__typename": "Query"}}), ("complete", None)]


@pytest.mark.parametrize("accept", [None, "application/json", "application/graphql-response+json"])
async def test_a_subscription_without_a_stream_type_is_refused_with_406(
    http: aiohttp.ClientSession, server: LiveServer, key: str, accept: str | None
) -> None:
    headers = {"X-API-Key": key, **({"Accept": accept} if accept else {})}
    body = {"query": CHAT_STREAM, "variables": stream_input()}
    async with http.post(f"{server.url}/graphql", json=body, headers=headers) as response:
        assert response.status == 406
        answer = await response.json(content_type=None)
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "text/event-stream" in error["message"]
    assert "multipart/mixed" in error["message"]


async def test_a_subscription_is_streamed_as_apollo_multipart(
    http: aiohttp.ClientSession, server: LiveServer, key: str
) -> None:
    """What Apollo Client's HttpLink sends for a subscription."""
    headers = {"X-API-Key": key, "Accept": APOLLO_MULTIPART_ACCEPT}
    body = {"query": CHAT_STREAM, "variables": stream_input()}
    async with http.post(f"{server.url}/graphql", json=body, headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith(
            "multipart/mixed;boundary=graphql;subscriptionSpec=1.0"
        )
        raw = await asyncio.wait_for(response.text(), 10)
    assert raw.endswith("}\r\n--graphql--\r\n")  # the last part, then the close delimiter
    parts = [json.loads(part.split("\r\n\r\n", 1)[1]) for part in raw.split("\r\n--graphql")[:-1]]
    events = [p["payload"]["data"]["chatStream"] for p in parts if p]  # `{}` is a heartbeat
    assert [e["__typename"] for e in events][:: len(events) - 1] == ["ChatStreamStart", "ChatStreamEnd"]
    assert streamed_text(events) == "Echo: Hi"


async def test_a_subscription_with_urqls_accept_is_streamed_as_sse(
    http: aiohttp.ClientSession, server: LiveServer, key: str
) -> None:
    """urql lists JSON first: a query gets JSON, a subscription the best stream it accepts."""
    headers = {"X-API-Key": key, "Accept": URQL_ACCEPT}
    body = {"query": CHAT_STREAM, "variables": stream_input()}
    async with http.post(f"{server.url}/graphql", json=body, headers=headers) as response:
        assert response.content_type == "text/event-stream"
        frames = sse_frames(await asyncio.wait_for(response.text(), 10))
    assert frames[-1] == ("complete", None)
    assert (
        streamed_text([data["data"]["chatStream"] for event, data in frames if event == "next"]) == "Echo: Hi"
    )


@pytest.mark.parametrize(
    ("accept", "media"), [("text/html", "text/html"), ("application/json", "application/json")]
)
async def test_head_is_answered(
    http: aiohttp.ClientSession, server: LiveServer, accept: str, media: str
) -> None:
    async with http.head(f"{server.url}/graphql", headers={"Accept": accept}) as response:
        assert (response.status, response.content_type) == (200, media)


# ---- graphql-sse's single connection mode ---------------------------------------------------------


async def test_single_connection_mode_runs_operations_on_one_stream(
    http: aiohttp.ClientSession, server: LiveServer, key: str
) -> None:
    url = f"{server.url}/graphql"
    async with http.put(url, headers={"X-API-Key": key}) as response:
        assert (response.status, response.content_type) == (201, "text/plain")
        token = await response.text()
    auth = {"X-API-Key": key, TOKEN_HEADER: token}
    async with http.get(url, headers={**auth, "Accept": "text/event-stream"}) as stream:
        assert (stream.status, stream.content_type) == (200, "text/event-stream")
        async with http.get(url, headers={**auth, "Accept": "text/event-stream"}) as second:
            assert second.status == 409

        requests = {
            "q": {"query": "{ viewer { project { name } } }"},
            "m": {"query": CHAT, "variables": {"input": {"messages": [{"role": "USER", "content": "One"}]}}},
            "s": {"query": CHAT_STREAM, "variables": stream_input()},
            "bad": {"query": "{ nope }"},
        }
        for operation_id, request in requests.items():
            body = {**request, "extensions": {"operationId": operation_id}}
            async with http.post(url, json=body, headers=auth) as response:
                assert response.status == 202, await response.text()
        async with http.post(url, json=requests["q"], headers=auth) as response:
            assert response.status == 400  # no operation id

        results: dict[str, list[Any]] = {operation_id: [] for operation_id in requests}
        buffer = ""
        while any(not r or r[-1] != "complete" for r in results.values()):
            buffer += (await asyncio.wait_for(stream.content.readany(), 10)).decode()
            complete_frames, _, buffer = buffer.rpartition("\n\n")
            for event, data in sse_frames(complete_frames):
                results[data["id"]].append(data["payload"] if event == "next" else event)
    assert "\r" not in buffer
    assert results["q"] == [{"data": {"viewer": {"project": {"name": "Demo project"}}}}, "complete"]
    assert results["m"][0]["data"]["chat"]["message"]["content"] == "Echo: One"
    assert streamed_text([r["data"]["chatStream"] for r in results["s"][:-1]]) == "Echo: Hi"
    assert results["bad"][0]["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # The client closed the stream: its reservation goes too, once the server notices (within a second).
    late = {**requests["q"], "extensions": {"operationId": "late"}}
    for _ in range(30):
        async with http.post(url, json=late, headers=auth) as gone:
            if gone.status == 404:
                break
        await asyncio.sleep(0.1)
    assert gone.status == 404


async def test_single_connection_mode_needs_the_reservations_caller(
    http: aiohttp.ClientSession, server: LiveServer, key: str
) -> None:
    url = f"{server.url}/graphql"
    async with http.put(url) as response:
        assert response.status == 401
    async with http.put(url, headers={"X-API-Key": key}) as response:
        token = await response.text()
    body = {"query": "{ __typename }", "extensions": {"operationId": "1"}}
    async with http.post(url, json=body, headers={TOKEN_HEADER: token}) as response:
        assert response.status == 401
    keys = await server.services.api_keys.create_unchecked(
        name="other", organization_id=None, platform_admin=True
    )
    async with http.post(url, json=body, headers={TOKEN_HEADER: token, "X-API-Key": keys[1]}) as response:
        assert response.status == 404
    async with http.delete(
        url, params={"operationId": "1"}, headers={TOKEN_HEADER: "nope", "X-API-Key": key}
    ) as response:
        assert response.status == 404


# ---- WebSockets ----------------------------------------------------------------------------------


async def legacy_socket(
    http: aiohttp.ClientSession, server: LiveServer, key: str
) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(f"{server.url}/graphql", protocols=["graphql-ws"])
    await ws.send_json({"type": "connection_init", "payload": {"apiKey": key}})
    assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
    return ws


async def legacy_messages(ws: aiohttp.ClientWebSocketResponse, operation_id: str) -> list[dict[str, Any]]:
    """The messages of one operation up to its `complete` (keep-alives skipped)."""
    messages = []
    while True:
        message = await ws.receive_json(timeout=10)
        if message.get("id") != operation_id:
            continue
        messages.append(message)
        if message["type"] in ("complete", "error"):
            return messages


async def test_legacy_graphql_ws_runs_queries_and_mutations(
    http: aiohttp.ClientSession, server: LiveServer, key: str
) -> None:
    ws = await legacy_socket(http, server, key)
    await ws.send_json({"id": "q", "type": "start", "payload": {"query": "{ viewer { project { name } } }"}})
    messages = await legacy_messages(ws, "q")
    assert [m["type"] for m in messages] == ["data", "complete"]
    assert messages[0]["payload"] == {"data": {"viewer": {"project": {"name": "Demo project"}}}}

    variables = {"input": {"messages": [{"role": "USER", "content": "Over legacy"}]}}
    await ws.send_json({"id": "m", "type": "start", "payload": {"query": CHAT, "variables": variables}})
    messages = await legacy_messages(ws, "m")
    assert [m["type"] for m in messages] == ["data", "complete"]
    assert messages[0]["payload"]["data"]["chat"]["message"]["content"] == "Echo: Over legacy"
    await ws.close()


@pytest.mark.parametrize("payload", [{}, {"apiKey": "mg_0000_wrong"}])
async def test_refused_legacy_sockets_close_with_4403(
    http: aiohttp.ClientSession, server: LiveServer, payload: dict[str, Any]
) -> None:
    ws = await http.ws_connect(f"{server.url}/graphql", protocols=["graphql-ws"])
    await ws.send_json({"type": "connection_init", "payload": payload})
    assert (await ws.receive_json(timeout=5))["type"] == "connection_error"
    closing = await ws.receive(timeout=5)
    assert closing.type == aiohttp.WSMsgType.CLOSE
    assert (ws.close_code, closing.extra) == (4403, "Forbidden")


async def transport_ws_chat(ws: aiohttp.ClientWebSocketResponse, operation_id: str) -> dict[str, Any]:
    variables = {"input": {"messages": [{"role": "USER", "content": "Hi"}]}}
    await ws.send_json(
        {"id": operation_id, "type": "subscribe", "payload": {"query": CHAT, "variables": variables}}
    )
    message = await ws.receive_json(timeout=10)
    assert (message["type"], message["id"]) == ("next", operation_id), message
    assert (await ws.receive_json(timeout=5))["type"] == "complete"
    chat: dict[str, Any] = message["payload"]["data"]["chat"]
    return chat


@pytest.mark.parametrize("protocol", ["graphql-ws", "graphql-transport-ws"])
async def test_each_operation_on_a_socket_has_its_own_request_id(
    http: aiohttp.ClientSession, server: LiveServer, key: str, protocol: str
) -> None:
    if protocol == "graphql-ws":
        ws = await legacy_socket(http, server, key)
        request_ids = []
        for operation_id in ("1", "2"):
            variables = {"input": {"messages": [{"role": "USER", "content": "Hi"}]}}
            await ws.send_json(
                {"id": operation_id, "type": "start", "payload": {"query": CHAT, "variables": variables}}
            )
            request_ids.append(
                (await legacy_messages(ws, operation_id))[0]["payload"]["data"]["chat"]["requestId"]
            )
        await ws.send_json({"id": "3", "type": "start", "payload": {"query": "{ nope }"}})
        error = (await legacy_messages(ws, "3"))[0]["payload"]
    else:
        ws = await http.ws_connect(f"{server.url}/graphql", protocols=["graphql-transport-ws"])
        await ws.send_json({"type": "connection_init", "payload": {"apiKey": key}})
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        request_ids = [
            (await transport_ws_chat(ws, operation_id))["requestId"] for operation_id in ("1", "2")
        ]
        await ws.send_json({"id": "3", "type": "subscribe", "payload": {"query": "{ nope }"}})
        error = (await ws.receive_json(timeout=5))["payload"][0]
    await ws.close()
    assert all(re.fullmatch(r"[0-9a-f]{32}", r) for r in request_ids)
    assert len({*request_ids, error["extensions"]["requestId"]}) == 3
