"""What one streamed chunk costs the server, per transport: the server process's CPU time (user +
system) over a batch of streams, divided by the chunks delivered. CPU time, unlike latency, hardly
depends on what else runs on the machine, so this is the figure to cut; the concurrent-stream
scenarios then show what it means for latency.

Transports: chatStream over graphql-transport-ws, chatStream over GraphQL over SSE, and the REST
door's OpenAI SSE (/v1/chat/completions with `stream: true`). Two fake upstreams give the same
answer, one in 20 chunks at once, the other in 100 chunks 5 ms apart: the difference is what the
extra chunks cost, without the stream's setup (authentication, parsing, the call's start and
end), which is shown apart.

    python -m bench.stream_cost [--streams 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import psutil

from bench.processes import run_on_uvloop
from bench.standalone import standalone
from bench.streams import CHAT_STREAM, GraphQLSocket, StreamTiming, sse_chat
from bench.upstream import REPLY

MESSAGE = "Say the forty words."
LONG = 100  # chunks per answer of the paced upstream; the other writes 20 at once
PACE = 0.005  # seconds between the paced upstream's chunks: each arrives on its own
Client = Callable[[aiohttp.ClientSession, str], Awaitable[StreamTiming]]


async def graphql_sse(session: aiohttp.ClientSession, url: str, key: str, model_id: str) -> StreamTiming:
    """chatStream over GraphQL over SSE (distinct connections mode)."""
    variables = {"input": {"model": model_id, "messages": [{"role": "USER", "content": MESSAGE}]}}
    headers = {"X-API-Key": key, "Accept": "text/event-stream"}
    timing = StreamTiming()
    started = time.perf_counter()
    pieces: list[str] = []
    ended = False
    body = {"query": CHAT_STREAM, "variables": variables}
    async with session.post(f"{url}/graphql", json=body, headers=headers) as response:
        buffer = b""
        async for chunk in response.content.iter_any():
            buffer += chunk
            while b"\n\n" in buffer:
                frame, buffer = buffer.split(b"\n\n", 1)
                data = next((line[6:] for line in frame.split(b"\n") if line.startswith(b"data: ")), None)
                if not frame.startswith(b"event: next") or data is None:
                    continue
                event = orjson.loads(data)["data"]["chatStream"]
                if event["__typename"] == "ChatStreamDelta":
                    pieces.append(event["text"])
                    timing.arrivals.append(time.perf_counter() - started)
                ended = ended or event["__typename"] == "ChatStreamEnd"
    timing.total = time.perf_counter() - started
    timing.text = "".join(pieces)
    timing.chunks = len(pieces)
    timing.ok = ended and timing.text == REPLY
    return timing


def clients(url: str, key: str, sockets: list[GraphQLSocket]) -> dict[str, Client]:
    rest_headers = {"Authorization": f"Bearer {key}"}
    return {
        "graphql-transport-ws": lambda _, model: sockets[0].chat(model, MESSAGE, REPLY),
        "graphql-sse": lambda session, model: graphql_sse(session, url, key, model),
        "rest-sse": lambda session, model: sse_chat(
            session, f"{url}/v1/chat/completions", rest_headers, model, MESSAGE, REPLY
        ),
    }


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def _per_stream(
    session: aiohttp.ClientSession, client: Client, model: str, server: psutil.Process, streams: int
) -> tuple[float, float, list[str]]:
    """Server CPU seconds and chunks delivered per stream of a batch of `streams` at once, and the
    errors of streams that failed."""
    before = _cpu(server)
    timings = await asyncio.gather(*(client(session, model) for _ in range(streams)))
    failed = [t.error or f"incomplete: {t.chunks} chunks" for t in timings if not t.ok]
    return (_cpu(server) - before) / streams, sum(t.chunks for t in timings) / streams, failed


async def measure(
    url: str, key: str, short_model: str, long_model: str, server_pid: int, streams: int, rounds: int
) -> dict[str, Any]:
    """Per transport: server CPU microseconds per chunk and per stream's setup (medians of rounds).
    Chunks are counted as delivered (a server may merge chunks that arrive together)."""
    server = psutil.Process(server_pid)
    ws_url = url.replace("http", "ws", 1) + "/graphql"
    results: dict[str, Any] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        socket = await GraphQLSocket.connect(session, ws_url, key)
        try:
            for name, client in clients(url, key, [socket]).items():
                await _per_stream(session, client, short_model, server, 10)  # warm
                per_chunk, setup, failed = [], [], []
                for _ in range(rounds):
                    short_cpu, short_chunks, short_failed = await _per_stream(
                        session, client, short_model, server, streams
                    )
                    long_cpu, long_chunks, long_failed = await _per_stream(
                        session, client, long_model, server, streams
                    )
                    chunk = (long_cpu - short_cpu) / (long_chunks - short_chunks)
                    per_chunk.append(chunk * 1e6)
                    setup.append((short_cpu - short_chunks * chunk) * 1e6)
                    failed += short_failed + long_failed
                if failed:
                    print(f"{name}: {len(failed)} failed, e.g. {failed[0]}")
                results[name] = {
                    "cpu_us_per_chunk": statistics.median(per_chunk),
                    "cpu_us_per_stream_setup": statistics.median(setup),
                    "streams": 2 * streams * rounds,
                    "failures": len(failed),
                }
        finally:
            await socket.close()
    return results


def print_rows(results: dict[str, Any]) -> None:
    print("| transport | server CPU per chunk (us) | per stream's setup (us) | streams | failures |")
    print("| --- | --- | --- | --- | --- |")
    for name, r in results.items():
        print(
            f"| {name} | {r['cpu_us_per_chunk']:.0f} | {r['cpu_us_per_stream_setup']:.0f} "
            f"| {r['streams']} | {r['failures']} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    async def run() -> dict[str, Any]:
        async with standalone(slow_interval=PACE, slow_chunks=LONG) as bench:
            return await measure(
                bench.modelgate,
                bench.key,
                bench.fast_model,
                bench.slow_model,
                bench.modelgate_pid,
                args.streams,
                args.rounds,
            )

    print_rows(run_on_uvloop(run()))


if __name__ == "__main__":
    main()
