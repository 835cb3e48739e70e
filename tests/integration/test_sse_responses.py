"""GraphQL over SSE responses (distinct connections mode), written by the operation's own task
(`EventStreamResponses`): every event in order and well framed, the heartbeat comment between them
without breaking an event, `complete` last."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from strawberry.http.streaming import SSETransport

from app.api.stream_transports import LineFeedSSETransport
from app.services.demo import seed_demo
from tests.conftest import LiveServer
from tests.integration.test_transports import sse_frames, streamed_text
from tests.support.gateway import CHAT_STREAM, stream_input


async def test_heartbeats_come_between_whole_events(
    http: aiohttp.ClientSession, server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LineFeedSSETransport, "__init__", lambda self: SSETransport.__init__(self, 0.001))
    keys = await seed_demo(server.services)
    assert keys is not None
    headers = {"X-API-Key": keys.demo_project, "Accept": "text/event-stream"}
    body = {"query": CHAT_STREAM, "variables": stream_input()}
    async with http.post(f"{server.url}/graphql", json=body, headers=headers) as response:
        assert response.content_type == "text/event-stream"
        text = await asyncio.wait_for(response.text(), 10)
    assert ": ping\n\n" in text
    assert "\r" not in text
    frames = sse_frames(text)  # each block a whole event or a comment
    assert frames[-1] == ("complete", None)
    events = [data["data"]["chatStream"] for event, data in frames if event == "next"]
    assert events[0]["__typename"] == "ChatStreamStart"
    assert events[-1]["__typename"] == "ChatStreamEnd"
    assert streamed_text(events) == "Echo: Hi"
