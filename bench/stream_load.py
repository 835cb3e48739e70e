"""A load client process: `--streams` chatStreams at once over graphql-transport-ws, `--per-socket`
subscriptions per connection, started over `--ramp` seconds. Prints one JSON line: how many streams
ended complete, the failures (with a few of their errors), and the median stream duration. Several
of these run beside each other when one Python process cannot drive the load alone.

    python -m bench.stream_load URL KEY MODEL_ID --streams 5000 --per-socket 100 --ramp 5
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import statistics

import aiohttp
import orjson

from bench.processes import run_on_uvloop
from bench.streams import GraphQLSocket, StreamTiming
from bench.upstream import REPLY

MESSAGE = "Say the forty words."


async def run(
    url: str, key: str, model_id: str, streams: int, per_socket: int, ramp: float
) -> dict[str, object]:
    ws_url = url.replace("http", "ws", 1) + "/graphql"
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        sockets = [
            await GraphQLSocket.connect(session, ws_url, key) for _ in range(-(-streams // per_socket))
        ]

        async def one(index: int) -> StreamTiming:
            await asyncio.sleep(random.uniform(0, ramp))  # spreading the start
            try:
                return await sockets[index // per_socket].chat(model_id, MESSAGE, REPLY)
            except Exception as exc:  # a failed stream is a result here
                return StreamTiming(error=f"{type(exc).__name__}: {exc}")

        try:
            timings = await asyncio.gather(*(one(i) for i in range(streams)))
        finally:
            for socket in sockets:
                await socket.close()
    failed = [t for t in timings if not t.ok]
    totals = [t.total for t in timings if t.ok] or [0.0]
    return {
        "streams": streams,
        "ok": streams - len(failed),
        "failures": len(failed),
        "errors": sorted({t.error or f"incomplete: {t.chunks} chunks" for t in failed})[:3],
        "total_p50_ms": statistics.median(totals) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("key")
    parser.add_argument("model_id")
    parser.add_argument("--streams", type=int, required=True)
    parser.add_argument("--per-socket", type=int, default=100)
    parser.add_argument("--ramp", type=float, default=0.0)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    result = run_on_uvloop(run(args.url, args.key, args.model_id, args.streams, args.per_socket, args.ramp))
    print(orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    main()
