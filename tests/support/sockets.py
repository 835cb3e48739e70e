"""A GraphQL WebSocket that stays open across operations, driven message by message."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from tests.support.gateway import GRAPHQL_TRANSPORT_WS


class Socket:
    """A GraphQL WebSocket (either protocol) that stays open across operations."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, protocol: str) -> None:
        self.ws = ws
        self.protocol = protocol
        self._ids = itertools.count(1)

    @classmethod
    @asynccontextmanager
    async def open(
        cls, session: aiohttp.ClientSession, base_url: str, payload: dict[str, Any], protocol: str
    ) -> AsyncIterator[Socket]:
        async with session.ws_connect(f"{base_url}/graphql", protocols=[protocol]) as ws:
            await ws.send_json({"type": "connection_init", "payload": payload})
            while (message := await ws.receive_json(timeout=5))["type"] == "ka":
                pass
            assert message["type"] == "connection_ack", message
            yield cls(ws, protocol)

    async def receive(self, within: float = 5) -> dict[str, Any]:
        """The next message that is not a keep-alive."""
        async with asyncio.timeout(within):
            while (message := await self.ws.receive_json())["type"] == "ka":
                pass
        result: dict[str, Any] = message
        return result

    async def run(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """One operation to its end: {"data": [each result's data], "errors": [every error]}."""
        operation_id = str(next(self._ids))
        start = "subscribe" if self.protocol == GRAPHQL_TRANSPORT_WS else "start"
        payload = {"query": query, "variables": variables or {}}
        await self.ws.send_json({"id": operation_id, "type": start, "payload": payload})
        results: dict[str, Any] = {"data": [], "errors": []}
        while True:
            message = await self.receive(within=10)
            if message.get("id") != operation_id:
                continue
            if message["type"] in ("next", "data"):
                results["data"].append(message["payload"].get("data"))
                results["errors"] += message["payload"].get("errors", [])
            elif message["type"] == "error":
                errors = message["payload"]
                results["errors"] += errors if isinstance(errors, list) else [errors]
                return results
            elif message["type"] == "complete":
                return results


def codes(result: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in result["errors"]]
