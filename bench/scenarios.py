"""The four scenarios. HTTP load comes from wrk (a separate process); streams from an asyncio client.
Every run checks the answers: a response that is not 200 or lacks the expected text is a failure."""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import subprocess
from dataclasses import dataclass

import aiohttp
import orjson

from bench.processes import BENCH_DIR, RssSampler
from bench.streams import GraphQLSocket, StreamTiming, sse_chat
from bench.upstream import REPLY

MESSAGE = "Say the forty words."
CONCURRENT_INTERVAL = 0.1  # seconds between the chunks of scenario 4's upstream
CONCURRENT_CHUNKS = 80  # per answer: 8 s, so that 1,000 streams started together overlap for seconds
GENERATE = "mutation($i: GenerateInput!) { generate(input: $i) { text userErrors { code } } }"
MODELS = """query { models(first: 50, filter: {includeSystem: true}) { nodes {
  id name provider providerModelId contextWindow maxOutputTokens
  capabilities { streaming tools vision reasoning } creditMultiplier lifecycleState } } }"""
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")


@dataclass(frozen=True, slots=True)
class HttpResult:
    p50_ms: float
    p99_ms: float
    rps: float
    requests: int
    failures: int


@dataclass(frozen=True, slots=True)
class HttpTarget:
    name: str
    url: str
    body: str
    headers: dict[str, str]
    expect: str


def wrk_command(
    binary: str, target: HttpTarget, connections: int, seconds: float
) -> tuple[list[str], dict[str, str]]:
    """wrk's arguments and environment for one target."""
    threads = min(connections, 2)
    env = {
        **os.environ,
        "WRK_BODY": target.body,
        "WRK_HEADERS": "|".join(f"{k}: {v}" for k, v in target.headers.items()),
        "WRK_EXPECT": target.expect,
    }
    lua = str(BENCH_DIR / "wrk" / "post.lua")
    args = [
        binary,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        lua,
        target.url,
    ]
    return args, env


def wrk(binary: str, target: HttpTarget, connections: int, seconds: float) -> HttpResult:
    args, env = wrk_command(binary, target, connections, seconds)
    completed = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    out = completed.stdout
    values = dict(re.findall(r"^(BAD|P50US|P99US) (\d+)$", out, re.MULTILINE))
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failures = int(values["BAD"]) + (int(errors.group(1)) if errors else 0)
    if socket_errors:
        failures += sum(int(n) for n in socket_errors.groups())
    return HttpResult(
        p50_ms=int(values["P50US"]) / 1000,
        p99_ms=int(values["P99US"]) / 1000,
        rps=float(_RPS.search(out).group(1)),  # type: ignore[union-attr]
        requests=requests,
        failures=failures,
    )


def generate_targets(
    upstream: str, modelgate: str, litellm: str, litellm_key: str, key: str, model_id: str
) -> list[HttpTarget]:
    """The same chat request four ways: upstream directly, Modelgate's GraphQL `generate`,
    Modelgate's OpenAI-compatible REST API, LiteLLM."""
    chat = {"model": "bench-gpt", "messages": [{"role": "user", "content": MESSAGE}]}
    generate = {"query": GENERATE, "variables": {"i": {"model": model_id, "prompt": MESSAGE}}}
    targets = [
        HttpTarget("direct", f"{upstream}/v1/chat/completions", orjson.dumps(chat).decode(), {}, "w40"),
        HttpTarget(
            "modelgate",
            f"{modelgate}/graphql",
            orjson.dumps(generate).decode(),
            {"X-API-Key": key},
            "w40",
        ),
        HttpTarget(
            "litellm",
            f"{litellm}/v1/chat/completions",
            orjson.dumps(chat).decode(),
            {"Authorization": f"Bearer {litellm_key}"},
            "w40",
        ),
    ]
    rest_chat = {**chat, "model": model_id}
    targets.insert(
        2,
        HttpTarget(
            "modelgate-rest",
            f"{modelgate}/v1/chat/completions",
            orjson.dumps(rest_chat).decode(),
            {"Authorization": f"Bearer {key}"},
            "w40",
        ),
    )
    return targets


def catalog_targets(modelgate: str, baseline: str, key: str) -> list[HttpTarget]:
    query = orjson.dumps({"query": MODELS}).decode()
    return [
        HttpTarget("baseline", f"{baseline}/models", "{}", {}, '"nodes"'),
        HttpTarget("modelgate", f"{modelgate}/graphql", query, {"X-API-Key": key}, '"nodes"'),
    ]


@dataclass(frozen=True, slots=True)
class StreamResult:
    ttft_p50_ms: float
    ttft_p99_ms: float
    total_p50_ms: float
    streams: int
    failures: int


def summarise(timings: list[StreamTiming]) -> StreamResult:
    ok = [t for t in timings if t.ok]
    first = sorted(t.first_token for t in ok) or [0.0]
    totals = sorted(t.total for t in ok) or [0.0]
    return StreamResult(
        ttft_p50_ms=statistics.median(first) * 1000,
        ttft_p99_ms=first[min(len(first) - 1, int(len(first) * 0.99))] * 1000,
        total_p50_ms=statistics.median(totals) * 1000,
        streams=len(timings),
        failures=len(timings) - len(ok),
    )


async def sequential_streams(
    upstream: str, modelgate_ws: str, litellm: str, litellm_key: str, key: str, model_id: str, count: int
) -> dict[str, StreamResult]:
    """Scenario 2: one stream at a time, the same 20-chunk answer three ways."""
    results: dict[str, StreamResult] = {}
    async with aiohttp.ClientSession() as session:
        for name, url, headers in (
            ("direct", upstream, {}),
            ("litellm", litellm, {"Authorization": f"Bearer {litellm_key}"}),
        ):
            timings = [
                await sse_chat(session, f"{url}/v1/chat/completions", headers, "bench-gpt", MESSAGE, REPLY)
                for _ in range(count)
            ]
            results[name] = summarise(timings)
        socket = await GraphQLSocket.connect(session, modelgate_ws, key)
        try:
            results["modelgate"] = summarise(
                [await socket.chat(model_id, MESSAGE, REPLY) for _ in range(count)]
            )
        finally:
            await socket.close()
    return {name: results[name] for name in ("direct", "modelgate", "litellm")}


@dataclass(frozen=True, slots=True)
class ConcurrentResult:
    streams: int
    failures: int
    total_p50_ms: float
    peak_rss_mb: float | None
    ttft_p50_ms: float  # under the burst of `streams` requests at once: mostly the setups' queue
    chunk_lateness_p50_ms: float  # see chunk_lateness
    chunk_lateness_p99_ms: float
    steady_seconds: float  # how long every stream was running at once (the chunks measured)
    steady_chunks: int


def steady_window(timings: list[StreamTiming]) -> tuple[float, float]:
    """When every stream was running: from the last stream's first chunk to the first stream's
    last chunk (time.perf_counter())."""
    ok = [t for t in timings if t.ok and t.arrivals]
    return max(t.started + t.arrivals[0] for t in ok), min(t.started + t.arrivals[-1] for t in ok)


def chunk_lateness(timings: list[StreamTiming], interval: float, window: tuple[float, float]) -> list[float]:
    """How late each chunk arrives on its stream's own schedule, while every stream runs.

    The upstream writes chunk k at start + k * interval, so arrival_k - k * interval is the same
    for every chunk of a stream that nothing delays; a chunk's lateness is its excess over its
    stream's earliest. Counted are the chunks that arrive while all streams run at once (the
    steady window): what a chunk costs at that many streams. The burst of subscriptions started
    together queues their setups first, which the time to first chunk shows."""
    begin, end = window
    late: list[float] = []
    for timing in timings:
        if not timing.ok:
            continue
        offsets = [arrival - k * interval for k, arrival in enumerate(timing.arrivals)]
        best = min(offsets)
        late += [
            offset - best
            for offset, arrival in zip(offsets, timing.arrivals, strict=True)
            if begin <= timing.started + arrival <= end
        ]
    return sorted(late)


def _concurrent_result(timings: list[StreamTiming], interval: float, rss: float | None) -> ConcurrentResult:
    begin, end = steady_window(timings)
    late = chunk_lateness(timings, interval, (begin, end)) or [float("nan")]  # no window: no figure
    summary = summarise(timings)
    return ConcurrentResult(
        streams=len(timings),
        failures=sum(not t.ok for t in timings),
        total_p50_ms=summary.total_p50_ms,
        peak_rss_mb=rss,
        ttft_p50_ms=summary.ttft_p50_ms,
        chunk_lateness_p50_ms=statistics.median(late) * 1000,
        chunk_lateness_p99_ms=late[min(len(late) - 1, int(len(late) * 0.99))] * 1000,
        steady_seconds=max(end - begin, 0.0),
        steady_chunks=len(late) if end > begin else 0,
    )


async def concurrent_streams(
    slow_upstream: str, modelgate_ws: str, key: str, model_id: str, count: int, per_socket: int, pid: int
) -> dict[str, ConcurrentResult]:
    """Scenario 4: `count` streams started at once against an upstream writing a chunk every 100 ms
    (CONCURRENT_CHUNKS of them: long enough that all streams run together for seconds)."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        direct = await asyncio.gather(
            *(
                sse_chat(
                    session, f"{slow_upstream}/v1/chat/completions", {}, "bench-gpt-slow", MESSAGE, REPLY
                )
                for _ in range(count)
            )
        )
        sockets = [
            await GraphQLSocket.connect(session, modelgate_ws, key) for _ in range(-(-count // per_socket))
        ]
        sampler = RssSampler(pid)
        try:
            with sampler.watching():
                through = await asyncio.gather(
                    *(sockets[i // per_socket].chat(model_id, MESSAGE, REPLY) for i in range(count))
                )
        finally:
            for socket in sockets:
                await socket.close()
    errors = {t.error for t in through if t.error}
    if errors:
        print(f"scenario 4 errors through Modelgate: {sorted(errors)[:3]}")
    return {
        "direct": _concurrent_result(list(direct), CONCURRENT_INTERVAL, None),
        "modelgate": _concurrent_result(list(through), CONCURRENT_INTERVAL, sampler.peak / 2**20),
    }
