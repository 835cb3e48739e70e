"""Scenario 7: thousands of chatStreams held at once by one server process (10,000 in a full run),
over graphql-transport-ws, 100 subscriptions per connection, from an upstream writing a chunk every
two seconds (one Python client process could not read 10,000 streams at a faster rate). The load
comes from several client processes (bench.stream_load); the server's peak RSS is sampled
throughout. Every stream must end complete.

    python -m bench.stream_scale [--streams 10000] [--loaders 4] [--interval 2.0]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from bench.processes import RssSampler, python, run_on_uvloop
from bench.standalone import standalone

PER_SOCKET = 100
# The server holds an upstream connection per stream, and a client connection per 100 streams.
SERVER_ENV = {"MODELGATE_UPSTREAM_MAX_CONNECTIONS": "12000", "MODELGATE_MAX_CLIENT_CONNECTIONS": "2000"}


@dataclass(frozen=True, slots=True)
class ScaleResult:
    streams: int
    failures: int
    total_p50_ms: float
    peak_rss_mb: float
    errors: list[str]


def raise_file_limit() -> int:
    """The soft limit of open files up to the hard one, for this process and those it starts."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def many_streams(
    url: str, key: str, model_id: str, pid: int, streams: int, loaders: int
) -> ScaleResult:
    share = -(-streams // loaders)
    counts = [min(share, streams - i * share) for i in range(loaders) if streams - i * share > 0]
    sampler = RssSampler(pid, interval=0.25)
    with sampler.watching():
        processes = [
            await asyncio.create_subprocess_exec(
                python(),
                "-m",
                "bench.stream_load",
                url,
                key,
                model_id,
                "--streams",
                str(count),
                "--per-socket",
                str(PER_SOCKET),
                "--ramp",
                "5",
                stdout=asyncio.subprocess.PIPE,
            )
            for count in counts
        ]
        outputs = [(await process.communicate())[0] for process in processes]
    reports: list[dict[str, Any]] = []
    for out, count in zip(outputs, counts, strict=True):
        lines = out.decode().strip().splitlines()
        reports.append(
            orjson.loads(lines[-1]) if lines else {"ok": 0, "failures": count, "errors": ["no report"]}
        )
    failures = sum(count - r["ok"] for r, count in zip(reports, counts, strict=True))
    medians = [r["total_p50_ms"] for r in reports if r.get("ok")]
    return ScaleResult(
        streams=streams,
        failures=failures,
        total_p50_ms=statistics.median(medians) if medians else 0.0,
        peak_rss_mb=sampler.peak / 2**20,
        errors=sorted({e for r in reports for e in r.get("errors", [])})[:3],
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--loaders", type=int, default=4)
    parser.add_argument("--interval", type=float, default=2.0)
    args = parser.parse_args()
    print(f"open files allowed: {raise_file_limit()}", file=sys.stderr)

    async def run() -> ScaleResult:
        async with standalone(slow_interval=args.interval, env=SERVER_ENV) as bench:
            return await many_streams(
                bench.modelgate, bench.key, bench.slow_model, bench.modelgate_pid, args.streams, args.loaders
            )

    print(orjson.dumps(asdict(run_on_uvloop(run())), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
