"""Stream clients for the benchmarks: chatStream over graphql-transport-ws (Modelgate) and OpenAI
SSE (the upstream directly, LiteLLM). Each returns timings and whether the answer was complete."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

import aiohttp
import orjson

CHAT_STREAM = """subscription($input: ChatInput!) { chatStream(input: $input) {
  __typename ... on ChatStreamDelta { text } ... on ChatStreamError { code message } } }"""


@dataclass
class StreamTiming:
    first_token: float = 0.0  # seconds from the request to the first text
    total: float = 0.0  # seconds from the request to the end
    chunks: int = 0
    text: str = ""
    ok: bool = False
    arrivals: list[float] = field(default_factory=list)  # seconds since the request, per chunk
    started: float = 0.0  # time.perf_counter() when the request was sent
    error: str | None = None


class GraphQLSocket:
    """One graphql-transport-ws connection carrying any number of chatStream subscriptions."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._queues: dict[str, asyncio.Queue[dict[str, object]]] = {}
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, session: aiohttp.ClientSession, url: str, key: str) -> GraphQLSocket:
        ws = await session.ws_connect(url, protocols=["graphql-transport-ws"], max_msg_size=0)
        await ws.send_json({"type": "connection_init", "payload": {"apiKey": key}})
        ack = await ws.receive_json(timeout=10)
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"not acknowledged: {ack}")
        return cls(ws)

    async def _read(self) -> None:
        async for message in self.ws:
            data = orjson.loads(message.data)
            kind = data.get("type")
            if kind == "ping":
                await self.ws.send_json({"type": "pong"})
            elif "id" in data and data["id"] in self._queues:
                await self._queues[data["id"]].put(data)

    async def chat(self, model_id: str, message: str, expected: str) -> StreamTiming:
        operation = str(next(self._ids))
        queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        self._queues[operation] = queue
        variables = {"input": {"model": model_id, "messages": [{"role": "USER", "content": message}]}}
        timing = StreamTiming()
        started = timing.started = time.perf_counter()
        await self.ws.send_json(
            {"id": operation, "type": "subscribe", "payload": {"query": CHAT_STREAM, "variables": variables}}
        )
        pieces: list[str] = []
        ended = False
        while True:
            data = await queue.get()
            if data["type"] == "complete":
                break
            payload = data.get("payload")
            if data["type"] != "next" or not isinstance(payload, dict) or payload.get("data") is None:
                timing.error = str(payload)[:500]
                del self._queues[operation]
                return timing
            event = payload["data"]["chatStream"]
            if event["__typename"] == "ChatStreamDelta":
                now = time.perf_counter() - started
                if not pieces:
                    timing.first_token = now
                pieces.append(event["text"])
                timing.arrivals.append(now)
            elif event["__typename"] == "ChatStreamEnd":
                ended = True
            elif event["__typename"] == "ChatStreamError":
                timing.error = f"{event['code']}: {event['message']}"
        del self._queues[operation]
        timing.total = time.perf_counter() - started
        timing.text = "".join(pieces)
        timing.chunks = len(pieces)
        timing.ok = ended and timing.text == expected
        return timing

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()


async def sse_chat(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], model: str, message: str, expected: str
) -> StreamTiming:
    """An OpenAI Chat Completions stream: the upstream directly, or LiteLLM."""
    body = {"model": model, "messages": [{"role": "user", "content": message}], "stream": True}
    timing = StreamTiming()
    started = timing.started = time.perf_counter()
    pieces: list[str] = []
    done = False
    async with session.post(url, json=body, headers=headers) as response:
        buffer = b""
        async for chunk in response.content.iter_any():
            buffer += chunk
            while b"\n\n" in buffer:
                frame, buffer = buffer.split(b"\n\n", 1)
                data = frame.removeprefix(b"data: ").strip()
                if data == b"[DONE]":
                    done = True
                    continue
                if not data:
                    continue
                for choice in orjson.loads(data).get("choices") or ():
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        now = time.perf_counter() - started
                        if not pieces:
                            timing.first_token = now
                        pieces.append(text)
                        timing.arrivals.append(now)
    timing.total = time.perf_counter() - started
    timing.text = "".join(pieces)
    timing.chunks = len(pieces)
    timing.ok = done and timing.text == expected
    return timing
