"""Scenario 6: one Modelgate with 1 worker and with 2 (MODELGATE_WORKERS) at 16 clients, GraphQL
`generate` and REST chat beside LiteLLM's identical request, in interleaved rounds so that each
ratio compares runs made under the same load from the rest of the machine."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from bench.scenarios import HttpResult, HttpTarget, generate_targets, wrk

CLIENTS = 16
PATHS = {"modelgate": "graphql", "modelgate-rest": "rest"}  # generate_targets' names: this table's


async def all_listening(log: Path, workers: int, within: float = 90.0) -> None:
    """Until every worker of the server writing `log` listens (its port answers once the first does)."""
    deadline = time.monotonic() + within
    while _listening(log) < workers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{workers} workers did not all listen within {within} s (see {log})")
        await asyncio.sleep(0.2)


def _listening(log: Path) -> int:
    return log.read_bytes().count(b'"worker listening"')


def _cpu_seconds(pid: int) -> float:
    """CPU time used so far by a process and its children (a supervisor's workers)."""
    tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return sum(t.user + t.system for t in (p.cpu_times() for p in tree))


def measure(
    wrk_binary: str,
    servers: dict[int, tuple[str, int]],
    litellm: str,
    litellm_key: str,
    key: str,
    model_id: str,
    rounds: int,
    seconds: float,
    median: Callable[[list[HttpResult]], dict[str, Any]],
) -> dict[str, Any]:
    """`servers`: Modelgate's URL and pid by worker count. Results by worker count and path (with the
    cores the server used meanwhile: what the rest of the machine left it), and LiteLLM's."""
    targets: dict[tuple[str, str], HttpTarget] = {}
    pids = {str(workers): pid for workers, (_, pid) in servers.items()}
    for workers, (url, _) in servers.items():
        for target in generate_targets(url, url, litellm, litellm_key, key, model_id):
            if target.name in PATHS:
                targets[(str(workers), PATHS[target.name])] = target
            elif target.name == "litellm":
                targets[("litellm", "rest")] = target
    for target in targets.values():  # warm every path (pools, caches, each worker's) first
        wrk(wrk_binary, target, CLIENTS, 1)
    runs: dict[tuple[str, str], list[HttpResult]] = {name: [] for name in targets}
    cores: dict[tuple[str, str], list[float]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, target in targets.items():
            pid = pids.get(name[0])
            before = _cpu_seconds(pid) if pid else 0.0
            runs[name].append(wrk(wrk_binary, target, CLIENTS, seconds))
            if pid:
                cores[name].append((_cpu_seconds(pid) - before) / seconds)
    results: dict[str, Any] = {}
    for (workers, path), results_of in runs.items():
        entry = median(results_of)
        if cores[(workers, path)]:
            entry["cores"] = statistics.median(cores[(workers, path)])
        results.setdefault(workers, {})[path] = entry
    return results


def ratios(results: dict[str, Any]) -> dict[str, float]:
    """2 workers against 1, and against LiteLLM, in requests per second."""
    one, two, litellm = results["1"], results["2"], results["litellm"]["rest"]["rps"]
    return {
        "graphql_2_vs_1": two["graphql"]["rps"] / one["graphql"]["rps"],
        "rest_2_vs_1": two["rest"]["rps"] / one["rest"]["rps"],
        "graphql_2_vs_litellm": two["graphql"]["rps"] / litellm,
        "rest_2_vs_litellm": two["rest"]["rps"] / litellm,
    }


def targets(results: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """(target, met, measured) for the workers scenario."""
    r = ratios(results)
    return [
        ("S6 2 workers >= 1.8x 1 worker req/s", r["graphql_2_vs_1"] >= 1.8, _pair(r, "2_vs_1")),
        ("S6 c=16 2 workers >= 10x LiteLLM req/s", r["graphql_2_vs_litellm"] >= 10, _pair(r, "2_vs_litellm")),
    ]


def _pair(r: dict[str, float], what: str) -> str:
    return f"GraphQL {r[f'graphql_{what}']:.2f}x, REST {r[f'rest_{what}']:.2f}x"


def print_rows(results: dict[str, Any]) -> None:
    print()
    print("| scenario | target | p50 ms | p99 ms | req/s | failures | cores used | req/s per core |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for workers in ("1", "2", "litellm"):
        for path, r in results[workers].items():
            name = "LiteLLM" if workers == "litellm" else f"{path}, {workers} worker{'s' * (workers != '1')}"
            cores = f"{r['cores']:.2f} | {r['rps'] / r['cores']:.0f}" if r.get("cores") else " | "
            print(
                f"| 6 workers c{CLIENTS} | {name} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                f"{r['rps']:.0f} | {r['failures']} | {cores} |"
            )
