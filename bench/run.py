"""`make bench`: Modelgate beside the fake upstream directly and the LiteLLM proxy, on loopback,
in one run. Prints one table and writes bench/results/latest.json.

    python -m bench.run [--quick]
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import secrets
import shutil
import statistics
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from app.config import Settings
from app.embedded_postgres import EmbeddedPostgres
from bench import persisted, query_analysis, stream_scale, workers
from bench.processes import (
    BENCH_DIR,
    Processes,
    ensure_litellm,
    ensure_wrk,
    free_port,
    python,
    run_on_uvloop,
    wait_for_port,
)
from bench.report import print_table
from bench.scenarios import (
    CONCURRENT_CHUNKS,
    CONCURRENT_INTERVAL,
    HttpResult,
    catalog_targets,
    concurrent_streams,
    generate_targets,
    sequential_streams,
    wrk,
)
from bench.setup import seed
from bench.upstream import command as upstream_command

RESULTS = BENCH_DIR / "results"
LITELLM_KEY = f"sk-bench-{secrets.token_hex(8)}"


@dataclasses.dataclass(frozen=True)
class Plan:
    rounds: int
    seconds: float
    streams: int
    concurrent: int
    many: int  # scenario 7: streams held at once, a chunk every SCALE_INTERVAL seconds

    @classmethod
    def of(cls, quick: bool) -> Plan:
        return cls(1, 4, 40, 1000, 2000) if quick else cls(3, 10, 150, 1000, 10_000)


SCALE_INTERVAL = 2.0


def median_http(results: list[HttpResult]) -> dict[str, Any]:
    return {
        "p50_ms": statistics.median(r.p50_ms for r in results),
        "p99_ms": statistics.median(r.p99_ms for r in results),
        "rps": statistics.median(r.rps for r in results),
        "requests": sum(r.requests for r in results),
        "failures": sum(r.failures for r in results),
    }


def litellm_config(path: Path, upstream: str, slow: str) -> None:
    entries = [("bench-gpt", upstream), ("bench-gpt-slow", slow)]
    lines = ["model_list:"]
    for name, url in entries:
        lines += [
            f"  - model_name: {name}",
            "    litellm_params:",
            f"      model: openai/{name}",
            f"      api_base: {url}/v1",
            "      api_key: sk-bench",
        ]
    path.write_text("\n".join(lines) + "\n")


async def run(plan: Plan) -> dict[str, Any]:
    wrk_binary = ensure_wrk()
    litellm = ensure_litellm()
    work = Path(tempfile.mkdtemp(prefix="modelgate-bench-"))
    (work / "logs").mkdir()
    processes = Processes(work / "logs")
    embedded = EmbeddedPostgres(work / "postgres")
    names = ("upstream", "slow", "scale", "modelgate", "modelgate-2-workers", "litellm", "baseline")
    ports = {name: free_port() for name in names}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    secret_keys = f"bench:{base64.b64encode(secrets.token_bytes(32)).decode()}"
    env = {
        "DATABASE_URL": embedded.dsn,
        "MODELGATE_SECRET_KEYS": secret_keys,
        "MODELGATE_ALLOW_PRIVATE_UPSTREAMS": "true",
        "MODELGATE_RATE_LIMIT_PER_MINUTE": "100000000",
        "MODELGATE_MAX_SUBSCRIPTIONS_PER_CONNECTION": "100",
        "MODELGATE_WORKERS": "1",  # every scenario but 6 measures one process
        **stream_scale.SERVER_ENV,
    }
    try:
        processes.start("upstream", upstream_command(ports["upstream"]))
        processes.start(
            "slow",
            upstream_command(ports["slow"], frame_interval=CONCURRENT_INTERVAL, chunks=CONCURRENT_CHUNKS),
        )
        processes.start("scale", upstream_command(ports["scale"], frame_interval=SCALE_INTERVAL))
        settings = Settings(
            database_url=embedded.dsn, secret_keys=secret_keys, allow_private_upstreams=True, data_dir=work
        )
        seeded = await seed(settings, url["upstream"], url["slow"], url["scale"])
        modelgate = processes.start(
            "modelgate", [python(), "-m", "app", "serve", "--port", str(ports["modelgate"])], env
        )
        # Scenario 6: the same server with two workers, once the first has seeded the demo.
        await wait_for_port(ports["modelgate"])
        two_workers = [python(), "-m", "app", "serve", "--port", str(ports["modelgate-2-workers"])]
        scaled = processes.start("modelgate-2-workers", two_workers, {**env, "MODELGATE_WORKERS": "2"})
        config = work / "litellm.yaml"
        litellm_config(config, url["upstream"], url["slow"])
        # One worker and no database: the configuration LiteLLM's own docs start from.
        processes.start(
            "litellm",
            [
                str(litellm),
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(ports["litellm"]),
                "--num_workers",
                "1",
            ],
            # A master key, like Modelgate's API key: both authenticate every request.
            {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MASTER_KEY": LITELLM_KEY},
            without=("DATABASE_URL",),
        )
        processes.start(
            "baseline",
            [
                python(),
                "-m",
                "bench.catalog_baseline",
                "--port",
                str(ports["baseline"]),
                "--dsn",
                embedded.dsn,
                "--organization",
                seeded.organization_id,
            ],
        )
        for port in ports.values():
            await wait_for_port(port)
        await workers.all_listening(work / "logs" / "modelgate-2-workers.log", 2)
        return await scenarios(plan, wrk_binary, url, seeded, modelgate.pid, scaled.pid)
    finally:
        processes.stop_all()
        embedded.stop()
        # The processes' logs outlive the run, to read when something did not start or failed.
        shutil.rmtree(RESULTS / "logs", ignore_errors=True)
        shutil.copytree(work / "logs", RESULTS / "logs")
        shutil.rmtree(work, ignore_errors=True)


async def scenarios(
    plan: Plan, wrk_binary: str, url: dict[str, str], seeded: Any, pid: int, scaled_pid: int
) -> dict[str, Any]:
    ws = url["modelgate"].replace("http", "ws") + "/graphql"
    targets = generate_targets(
        url["upstream"], url["modelgate"], url["litellm"], LITELLM_KEY, seeded.key, seeded.fast_model
    )
    # The same `generate` by its hash alone, beside the plain one (registered once, as a client does).
    await persisted.register(url["modelgate"], seeded.key, seeded.fast_model)
    targets.insert(2, persisted.persisted_target(url["modelgate"], seeded.key, seeded.fast_model))
    # Warm every path once (connection pools, caches) before measuring.
    for target in targets:
        wrk(wrk_binary, target, 1, 1)
    generate: dict[str, Any] = {}
    for connections in (1, 16):
        generate[f"c{connections}"] = {
            t.name: median_http([wrk(wrk_binary, t, connections, plan.seconds) for _ in range(plan.rounds)])
            for t in targets
        }
    catalog = {
        t.name: median_http([wrk(wrk_binary, t, 16, plan.seconds) for _ in range(plan.rounds)])
        for t in catalog_targets(url["modelgate"], url["baseline"], seeded.key)
    }
    streaming = await sequential_streams(
        url["upstream"], ws, url["litellm"], LITELLM_KEY, seeded.key, seeded.fast_model, plan.streams
    )
    # Ten streams per connection: 100 connections, which the 2 workers' shared port spreads.
    concurrent = await concurrent_streams(
        url["slow"], ws, seeded.key, seeded.slow_model, plan.concurrent, 10, pid
    )
    ws_2_workers = url["modelgate-2-workers"].replace("http", "ws") + "/graphql"
    concurrent_2_workers = await concurrent_streams(
        url["slow"], ws_2_workers, seeded.key, seeded.slow_model, plan.concurrent, 10, scaled_pid
    )
    by_workers = {1: (url["modelgate"], pid), 2: (url["modelgate-2-workers"], scaled_pid)}
    scaling = workers.measure(
        wrk_binary, by_workers, url["litellm"], LITELLM_KEY, seeded.key, seeded.fast_model,
        plan.rounds, plan.seconds, median_http,
    )  # fmt: skip
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "plan": dataclasses.asdict(plan),
        "generate": generate,
        "catalog": catalog,
        "streaming": {k: dataclasses.asdict(v) for k, v in streaming.items()},
        "concurrent": {k: dataclasses.asdict(v) for k, v in concurrent.items()},
        "concurrent_2_workers": {k: dataclasses.asdict(v) for k, v in concurrent_2_workers.items()},
        "many_streams": dataclasses.asdict(
            await stream_scale.many_streams(
                url["modelgate"], seeded.key, seeded.scale_model, pid, plan.many, loaders=4
            )
        ),
        "query_analysis": await query_analysis.measure(),
        "workers": scaling,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a short run (under two minutes)")
    args = parser.parse_args()
    stream_scale.raise_file_limit()  # before any process starts: they inherit it
    results = run_on_uvloop(run(Plan.of(args.quick)))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print_table(results)


if __name__ == "__main__":
    main()
