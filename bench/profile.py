"""Where a request's time goes inside Modelgate: the server runs in this process under cProfile while
wrk (another process) sends one request at a time to the zero-latency fake upstream's model.

    python -m bench.profile [graphql|persisted|rest|ws-stream|ws-setup] [--seconds 10] [--top 40]

`ws-stream`: 200 chatStreams at once over graphql-transport-ws (bench.stream_load, another process)
from an upstream writing 100 chunks 10 ms apart, instead of wrk; `ws-setup`: 1,000 chatStreams
from the upstream that writes its 20 chunks at once (mostly what starting a stream costs).

A profile does not suffer from a shared noisy machine as timings do: it shows which functions the
server spends its CPU in, whatever else runs beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import pstats
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from aiohttp import web

from app.config import Settings
from app.embedded_postgres import EmbeddedPostgres
from app.server import create_app
from bench.persisted import persisted_target, register
from bench.processes import Processes, ensure_wrk, free_port, python, run_on_uvloop, wait_for_port
from bench.scenarios import HttpTarget, generate_targets, wrk_command
from bench.setup import seed
from bench.upstream import command as upstream_command


async def profile(target_name: str, seconds: float) -> cProfile.Profile:
    work = Path(tempfile.mkdtemp(prefix="modelgate-profile-"))
    (work / "logs").mkdir()
    processes = Processes(work / "logs")
    embedded = EmbeddedPostgres(work / "postgres")
    upstream_port, slow_port, port = free_port(), free_port(), free_port()
    upstream, slow = f"http://127.0.0.1:{upstream_port}", f"http://127.0.0.1:{slow_port}"
    secret_keys = f"bench:{base64.b64encode(secrets.token_bytes(32)).decode()}"
    settings = Settings(
        database_url=embedded.dsn,
        secret_keys=secret_keys,
        allow_private_upstreams=True,
        data_dir=work,
        rate_limit_per_minute=100_000_000,
    )
    runner: web.AppRunner | None = None
    try:
        processes.start("upstream", upstream_command(upstream_port))
        processes.start("slow", upstream_command(slow_port, frame_interval=0.01, chunks=100))
        await wait_for_port(upstream_port)
        await wait_for_port(slow_port)
        seeded = await seed(settings, upstream, slow)
        runner = web.AppRunner(create_app(settings), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        modelgate = f"http://127.0.0.1:{port}"
        targets = {
            t.name: t for t in generate_targets(upstream, modelgate, "", "", seeded.key, seeded.fast_model)
        }
        targets["persisted"] = persisted_target(modelgate, seeded.key, seeded.fast_model)
        await register(modelgate, seeded.key, seeded.fast_model)
        # CPU time, not wall time: a process preempted on a busy machine charges nothing.
        profiler = cProfile.Profile(time.process_time)
        if target_name in ("ws-stream", "ws-setup"):
            paced = target_name == "ws-stream"
            model, streams = (seeded.slow_model, 200) if paced else (seeded.fast_model, 1000)
            profiler.enable()
            await _streams(modelgate, seeded.key, model, streams)
            profiler.disable()
            return profiler
        target = targets[{"graphql": "modelgate", "rest": "modelgate-rest"}.get(target_name, target_name)]
        await _wrk(target, 2)  # warm: pools, caches
        profiler.enable()
        await _wrk(target, seconds)
        profiler.disable()
        return profiler
    finally:
        if runner is not None:
            await runner.cleanup()
        processes.stop_all()
        embedded.stop()
        shutil.rmtree(work, ignore_errors=True)


async def _wrk(target: HttpTarget, seconds: float) -> None:
    """wrk at one connection, as a subprocess, so that this process's loop keeps serving."""
    command, env = wrk_command(ensure_wrk(), target, 1, seconds)
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    print(out.decode().strip().splitlines()[-1])


async def _streams(modelgate: str, key: str, model_id: str, streams: int) -> None:
    command = [
        python(),
        "-m",
        "bench.stream_load",
        modelgate,
        key,
        model_id,
        "--streams",
        str(streams),
        "--per-socket",
        "10",  # the in-process server keeps the default of 10 operations per connection
        "--ramp",
        "1",
    ]
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    print(out.decode().strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "target",
        nargs="?",
        default="graphql",
        choices=("graphql", "persisted", "rest", "ws-stream", "ws-setup"),
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--output", help="also write the profile here (for snakeviz, pstats)")
    args = parser.parse_args()
    profiler = run_on_uvloop(profile(args.target, args.seconds))  # the server's loop
    stats = pstats.Stats(profiler)
    if args.output:
        profiler.dump_stats(args.output)
    stats.strip_dirs().sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
